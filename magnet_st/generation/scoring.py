"""Span likelihoods: how probable a reference span is at its blank, teacher-forced.

context="both": the span in place between its left and right context, hybrid MAGNET attention (one
forward). context="left": ordinary causal LM scoring of the span after the left text only (the
unadapted causal baseline). Both use the same left tokens. Span perplexity is exp of the mean negative
log-likelihood per reference span token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from magnet_st.generation.infill import BLANK, build_layout
from magnet_st.validation import check_texts


@torch.no_grad()
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
    tokenizer = decoder.tokenizer
    device = next(decoder.parameters()).device
    sequences = []
    for index, (text, reference) in enumerate(zip(texts, references)):
        if text.count(blank) != 1:
            raise ValueError(f"`texts[{index}]` must hold exactly one {blank}, got {text.count(blank)}.")
        span = tokenizer(reference, add_special_tokens=False)["input_ids"]
        layout = build_layout(decoder, text, [len(span)], blank=blank, text_index=index)
        start, before = layout.gap_starts[0], layout.predictor_index[0] + 1
        left = layout.context_ids[:before]
        if context == "both":
            ids = left + span + layout.context_ids[before:]
        else:
            ids = left + span
        span_mask = [False] * len(left) + [True] * len(span) + [False] * (len(ids) - len(left) - len(span))
        assert start == len(left)
        sequences.append((ids, span_mask, start, span))
    was_training = decoder.training
    decoder.eval()
    results = []
    try:
        for begin in range(0, len(sequences), batch_size):
            chunk = sequences[begin : begin + batch_size]
            width = max(len(ids) for ids, *_ in chunk)
            input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
            span_mask = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, (ids, spans, _, _) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention_mask[row, : len(ids)] = 1
                span_mask[row, : len(ids)] = torch.tensor(spans)
            features = {
                "input_ids": input_ids.to(device),
                "attention_mask": attention_mask.to(device),
                "span_mask": span_mask.to(device),
            }
            mode = "hybrid" if context == "both" else "causal"
            hidden = decoder(features, attention_mode=mode)["token_embeddings"]
            for row, (_, _, start, span) in enumerate(chunk):
                # The state at p-1 predicts the token at p.
                logits = decoder.lm_logits(hidden[row, start - 1 : start - 1 + len(span)]).float()
                logp = torch.log_softmax(logits, dim=-1)
                target = torch.tensor(span, device=logp.device)
                results.append((float(logp.gather(1, target[:, None]).sum()), len(span)))
    finally:
        decoder.train(was_training)
    return results


def span_perplexity(
    model,
    texts: Sequence[str],
    references: Sequence[str],
    *,
    context: Literal["both", "left"] = "both",
    blank: str = BLANK,
    batch_size: int = 16,
) -> float:
    """Perplexity of the reference spans (per token, over all spans) given both contexts or the left one."""
    scores = span_log_likelihoods(model, texts, references, context=context, blank=blank, batch_size=batch_size)
    total = sum(logprob for logprob, _ in scores)
    count = sum(tokens for _, tokens in scores)
    return math.exp(-total / count)
