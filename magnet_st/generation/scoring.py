"""Span likelihoods: how probable a reference span is at its blank, teacher-forced.

context="both": the span in place between its left and right context, hybrid MAGNET attention (one
forward). context="left": ordinary causal LM scoring of the span after the left text only (the
unadapted causal baseline). Both use the same left tokens. Span perplexity is exp of the mean negative
log-likelihood per reference span token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch

from magnet_st.attention import AttentionMode
from magnet_st.decoding import eval_mode, pad_sequences, run_decoder
from magnet_st.generation.layout import BLANK, build_layout
from magnet_st.validation import check_positive_int, check_texts


def span_log_likelihoods(
    model,
    texts: Sequence[str],
    references: Sequence[str],
    *,
    context: Literal["both", "left"] = "both",
    blank: str = BLANK,
    batch_size: int = 16,
) -> list[tuple[float, int]]:
    """(sum of log-probabilities, token count) of each reference span at the blank of its text.

    Each text holds exactly one `blank`; its reference is the span text (with its leading space, as it would
    follow the left context). The span tokens are the reference tokenized on its own.
    """
    if context not in ("both", "left"):
        raise ValueError(f"`context` must be 'both' or 'left', got {context!r}.")
    decoder = getattr(model, "decoder", model)
    texts = check_texts(texts, "texts")
    references = check_texts(references, "references")
    if len(texts) != len(references):
        raise ValueError(f"`texts` ({len(texts)}) and `references` ({len(references)}) differ in length.")
    check_positive_int(batch_size, "batch_size")
    tokenizer = decoder.tokenizer
    device = next(decoder.parameters()).device
    mode = AttentionMode.HYBRID if context == "both" else AttentionMode.CAUSAL
    sequences = []
    for index, (text, reference) in enumerate(zip(texts, references)):
        if text.count(blank) != 1:
            raise ValueError(f"`texts[{index}]` must hold exactly one {blank}, got {text.count(blank)}.")
        span = tokenizer(reference, add_special_tokens=False)["input_ids"]
        layout = build_layout(decoder, text, [len(span)], blank=blank, text_index=index)
        left = layout.context_ids[: layout.predictor_index[0] + 1]  # the span starts right after it (in place)
        right = layout.context_ids[len(left) :] if context == "both" else []
        sequences.append((left, span, right))
    results = []
    with eval_mode(decoder):
        for begin in range(0, len(sequences), batch_size):
            chunk = sequences[begin : begin + batch_size]
            input_ids, key_mask = pad_sequences(
                [left + span + right for left, span, right in chunk], tokenizer.pad_token_id
            )
            roles = [[0] * len(left) + [1] * len(span) + [0] * len(right) for left, span, right in chunk]
            span_mask = pad_sequences(roles, 0)[0].bool()  # (B, T)
            hidden = run_decoder(
                decoder.backbone,
                input_ids.to(device),
                mode=mode,
                span_mask=span_mask.to(device) if mode is AttentionMode.HYBRID else None,
                key_mask=key_mask.to(device),
            )  # (B, T, D)
            for row, (left, span, _) in enumerate(chunk):
                # The state at p-1 predicts the token at p.
                start = len(left)
                logits = decoder.lm_logits(hidden[row, start - 1 : start - 1 + len(span)]).float()  # (S, V)
                logp = torch.log_softmax(logits, dim=-1)
                target = torch.tensor(span, device=logp.device)
                results.append((float(logp.gather(1, target[:, None]).sum()), len(span)))
    return results


def span_perplexity(model, texts: Sequence[str], references: Sequence[str], **options: Any) -> float:
    """Perplexity of the reference spans (per token, over all spans) given both contexts or the left one.

    `options` are those of `span_log_likelihoods` (`context`, `blank`, `batch_size`).
    """
    scores = span_log_likelihoods(model, texts, references, **options)
    total = sum(logprob for logprob, _ in scores)
    count = sum(tokens for _, tokens in scores)
    return math.exp(-total / count)
