"""Automatic blank lengths: a blank without a given length gets one before its span is decoded.

MAGNET decodes a span in place, between its left and right context, so the span's length must be fixed
before decoding. Training never shows the model where a span ends (the first context token after a span is
not a target, MAGNET.md), and ranking candidate lengths by the model's own likelihood does not recover the
true length (evaluation/README.md). So a blank's length comes from one of two rules:

- Sentence blank: the blank stands between sentences (the text before it is empty or ends with . ! or ?,
  the text after it is empty or starts with a capital letter or a quote). Its length is the mean length,
  in tokens, of the text's complete sentences (ROCStories middle sentences: off by 2.03 tokens on average
  over 200 stories, against 2.27 for the best constant guess).
- Any other blank (a word or phrase inside a sentence): the blank is filled greedily (hybrid mask) with
  the longest of `phrase_lengths`, and each candidate length L keeps the first L tokens of that fill. The
  candidate whose completed text is most probable under the same model with causal attention wins:
  log p(fill + the text after it | the text before it). That is the ordinary language-model probability
  of the completed text, unnormalised, so a longer fill must earn each extra token. The fill is decoded
  from `LENGTH_WINDOW` tokens on each side of the blank (the text up to the neighbouring blanks) and scored
  with the first `SCORED_AFTER` tokens after it, so the cost does not grow with the text: one short hybrid
  pass, the decode of the longest candidate, and two short causal passes that all candidates share. The
  blank is then decoded in place with the chosen length like a given one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from transformers import DynamicCache

from magnet_st.attention import AttentionMode
from magnet_st.decoding import run_decoder
from magnet_st.generation.decode import decode_blanks, make_sampler
from magnet_st.generation.layout import BlankText, start_token

DEFAULT_PHRASE_LENGTHS = (1, 2, 3, 4, 5, 6, 8)
LENGTH_WINDOW = 32  # context tokens on each side that the choice for a blank inside a sentence looks at
# Tokens after the blank that score each candidate: the ones further on barely move the choice (same mean
# error on held-out Wikipedia blanks, evaluation/README.md) and cost a pass per candidate.
SCORED_AFTER = 8
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")
ENDS_SENTENCE = re.compile(r"[.!?][\"'”’)\]]*$")
STARTS_SENTENCE = re.compile(r"^[\"'“‘(\[]*[A-Z0-9]")


def split_sentences(text: str) -> list[str]:
    """Sentences of a text: split after . ! ? followed by whitespace (and at line breaks)."""
    parts = []
    for line in text.splitlines():
        parts.extend(part.strip() for part in SENTENCE_BREAK.split(line))
    return [part for part in parts if part]


def is_sentence_blank(before: str, after: str) -> bool:
    """Whether a blank with this text before and after it stands for whole sentences."""
    before, after = before.rstrip(), after.lstrip()
    if not before and not after:
        return False  # nothing to measure sentences on
    return (not before or bool(ENDS_SENTENCE.search(before))) and (not after or bool(STARTS_SENTENCE.match(after)))


def sentence_blank_length(tokenizer, pieces: Sequence[str], sentence_blanks: Sequence[bool]) -> int | None:
    """Mean token count of the complete sentences in the text around the blanks (None if there are none).

    `pieces` is the text split at its blanks; `sentence_blanks[i]` says whether blank i stands between
    sentences. A piece's first (last) sentence is a fragment when an in-sentence blank precedes (follows) it.
    """
    counts = []
    for index, piece in enumerate(pieces):
        sentences = split_sentences(piece)
        if index > 0 and not sentence_blanks[index - 1]:
            sentences = sentences[1:]
        if index < len(pieces) - 1 and not sentence_blanks[index]:
            sentences = sentences[:-1]
        counts += [
            len(tokenizer(" " + sentence, add_special_tokens=False, verbose=False)["input_ids"])
            for sentence in sentences
        ]
    if not counts:
        return None
    return max(1, round(sum(counts) / len(counts)))


def target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] per row, without keeping the full log-softmax: (..., V), (...) -> (...)."""
    logits = logits.float()
    return logits.gather(-1, targets[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)


@torch.no_grad()
def completion_scores(
    decoder, before: Sequence[int], fill: Sequence[int], after: Sequence[int], lengths: Sequence[int]
) -> list[float]:
    """log p(fill[:L] + after | before) for each L in `lengths`, under causal attention.

    One pass over before + fill gives every fill prefix's score and the first `after` token's; one more
    pass, a row per length over the shared cache, scores the rest of `after` after each prefix. Logits are
    computed only where a score needs them.
    """
    device = next(decoder.parameters()).device
    ids = [*before, *fill]
    size, start = len(ids), len(before)
    cache = DynamicCache(config=decoder.config)
    hidden = run_decoder(
        decoder.backbone,
        torch.tensor([ids], device=device),
        mode=AttentionMode.CAUSAL,
        position_ids=torch.arange(size, device=device)[None],
        cache=cache,
    )  # (1, size, D)
    # The state at p-1 predicts the token at p: the states of before[-1] and of every fill token are used.
    logits = decoder.lm_logits(hidden[0, start - 1 :])  # (F + 1, V)
    fill_logps = target_logprobs(logits[:-1], torch.tensor(fill, device=device))  # (F,)
    fill_sums = torch.cumsum(fill_logps, 0).tolist()
    scores = [fill_sums[length - 1] for length in lengths]
    if after:
        prefix_ends = torch.tensor(lengths, device=device)  # row L of `logits` is the state of fill[L - 1]
        first = target_logprobs(logits[prefix_ends], torch.full_like(prefix_ends, after[0])).tolist()
        scores = [score + extra for score, extra in zip(scores, first)]
    if len(after) > 1:
        rows, queries = len(lengths), len(after) - 1
        cache.batch_repeat_interleave(rows)
        visible = torch.tensor([start + length for length in lengths], device=device)  # (rows,)
        steps = torch.arange(queries, device=device)  # (queries,)
        # Row L sees before + fill[:L] in the cache, and its own `after` tokens causally.
        cached_keys = torch.arange(size, device=device)[None, :] < visible[:, None]  # (rows, size)
        key_mask = torch.cat([cached_keys, torch.ones((rows, queries), dtype=torch.bool, device=device)], dim=1)
        hidden = run_decoder(
            decoder.backbone,
            torch.tensor([list(after[:-1])] * rows, device=device),
            mode=AttentionMode.CAUSAL,
            key_mask=key_mask,
            position_ids=visible[:, None] + steps[None, :],
            cache=cache,
        )  # (rows, queries, D)
        targets = torch.tensor(list(after[1:]), device=device).expand(rows, -1)  # (rows, queries)
        rest = target_logprobs(decoder.lm_logits(hidden), targets).sum(dim=1).tolist()
        scores = [score + extra for score, extra in zip(scores, rest)]
    return scores


def choose_lengths(
    decoder,
    texts: Sequence[BlankText],
    lengths: Sequence[Sequence[int | None]],
    *,
    max_auto_length: int,
    phrase_lengths: Sequence[int],
    batch_size: int,
    device: torch.device,
) -> list[list[int]]:
    """Replace every automatic (None) length by a chosen one (the module docstring explains how)."""
    chosen = [list(per_text) for per_text in lengths]
    windows = []  # (text index, blank index, window layout) of each blank inside a sentence
    candidates = [length for length in phrase_lengths if length <= max_auto_length] or [max_auto_length]
    for text_index, blank_text in enumerate(texts):
        if None not in chosen[text_index]:
            continue
        pieces, segments = blank_text.pieces, blank_text.segments
        sentence_blanks = [is_sentence_blank(pieces[i], pieces[i + 1]) for i in range(len(pieces) - 1)]
        sentence_length = sentence_blank_length(decoder.tokenizer, pieces, sentence_blanks)
        for index, value in enumerate(chosen[text_index]):
            if value is not None:
                continue
            if sentence_blanks[index] and sentence_length is not None:
                chosen[text_index][index] = min(sentence_length, max_auto_length)
                continue
            if len(candidates) == 1:  # nothing to rank
                chosen[text_index][index] = candidates[0]
                continue
            # The text between this blank and its neighbours, cut to LENGTH_WINDOW tokens on each side.
            left = segments[index][-LENGTH_WINDOW:]
            right = segments[index + 1][:LENGTH_WINDOW]
            ends = index + 1 == len(segments) - 1 and len(segments[index + 1]) <= LENGTH_WINDOW
            head = blank_text.start if len(left) == len(segments[index]) and index == 0 else []
            if not head and not left:  # a blank right after the window's cut
                head = [start_token(decoder.tokenizer)]
            window = BlankText(["", ""], head, [left, right]).layout(decoder, [max(candidates)], ends=ends)
            windows.append((text_index, index, window))
    greedy = make_sampler(device=device)
    for begin in range(0, len(windows), batch_size):
        chunk = windows[begin : begin + batch_size]
        states = decode_blanks(
            decoder,
            [window for *_, window in chunk],
            num_candidates=1,
            choose=greedy,
            output_logits=False,
            device=device,
        )
        for (text_index, index, window), state in zip(chunk, states):
            before = window.context_ids[: window.predictor_index[0] + 1]
            after = window.context_ids[len(before) :][:SCORED_AFTER]
            scores = completion_scores(decoder, before, state.fills[0][0], after, candidates)
            chosen[text_index][index] = candidates[max(range(len(scores)), key=scores.__getitem__)]  # ties: shorter
    return chosen
