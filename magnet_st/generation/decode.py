"""Decoding the blanks of laid-out texts: context prefill into a KV cache, lockstep span decoding, the sampler.

Context attends to all context and never to the span, so the context's keys and values do not depend on
the span: they are prefilled once per text into a `DynamicCache` (bidirectional among context, position
ids that leave the gaps). Then the span tokens are decoded one by one at their gap positions, each seeing
every context key plus the earlier span tokens (causal across spans too): a causal step over the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache, LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from magnet_st.attention import AttentionMode
from magnet_st.decoding import pad_sequences, run_decoder
from magnet_st.generation.layout import BlankLayout
from magnet_st.seeding import example_generator

# (R, V) logits and each row's example key (text x candidate, across batches) -> (R,) chosen token ids
Sampler = Callable[[torch.Tensor, Sequence[int]], torch.Tensor]


def make_sampler(
    *,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    device: torch.device | str = "cpu",
) -> Sampler:
    """Greedy choice, or sampling after temperature / top-k / top-p (seeded for reproducible samples)."""
    processors = LogitsProcessorList()
    if do_sample:
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(float(temperature)))
        if top_k:
            processors.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            processors.append(TopPLogitsWarper(float(top_p)))
    # One generator per example (text x candidate), so a seeded sample does not depend on the batch size.
    generators: dict[int, torch.Generator] = {}

    def generator_for(key: int) -> torch.Generator:
        if key not in generators:
            generators[key] = example_generator(seed, key, device)
        return generators[key]

    def choose(logits: torch.Tensor, row_keys: Sequence[int]) -> torch.Tensor:
        if not do_sample:
            return logits.argmax(dim=-1)
        probs = torch.softmax(processors(None, logits.float()), dim=-1)  # (R, V)
        if seed is None:
            return torch.multinomial(probs, 1).squeeze(-1)
        picks = [torch.multinomial(probs[row], 1, generator=generator_for(key)) for row, key in enumerate(row_keys)]
        return torch.cat(picks)  # (R,)

    return choose


def prefill_context(
    decoder, layouts: list[BlankLayout], device: torch.device
) -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
    """Encode the context tokens of a batch of layouts once (bidirectional among context, gapped positions).

    Returns (cache, key validity (B, Tc) bool, hidden states (B, Tc, D)).
    """
    input_ids, key_mask = pad_sequences([layout.context_ids for layout in layouts], decoder.tokenizer.pad_token_id)
    positions, _ = pad_sequences([layout.context_positions for layout in layouts], 0)  # (B, Tc)
    cache = DynamicCache(config=decoder.config)
    hidden = run_decoder(
        decoder.backbone,
        input_ids.to(device),
        mode=AttentionMode.BIDIRECTIONAL,
        key_mask=key_mask.to(device),
        position_ids=positions.to(device),
        cache=cache,
    )
    return cache, key_mask.to(device=device, dtype=torch.bool), hidden


@dataclass
class RowState:
    """Decoding progress of one row (a text, or one candidate of it)."""

    layout: BlankLayout
    blank: int = 0
    done: bool = False
    tokens: list[int] = field(default_factory=list)
    logps: list[float] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)
    fills: list[tuple[list[int], list[float], list[torch.Tensor]]] = field(default_factory=list)


@torch.no_grad()
def decode_blanks(
    decoder,
    layouts: list[BlankLayout],
    *,
    num_candidates: int,
    choose: Sampler,
    output_logits: bool,
    device: torch.device,
    first_text: int = 0,
) -> list[RowState]:
    """Prefill the contexts once, then decode every blank of every row (text x candidate) in lockstep.

    `first_text` is the index of `layouts[0]` among all texts of the call; it keys each row's sampler.
    """
    cache, key_valid, hidden = prefill_context(decoder, layouts, device)
    # The state before each gap predicts its first span token: only those logits are needed.
    blank_logits = [
        decoder.lm_logits(hidden[row, layout.predictor_index]).float() for row, layout in enumerate(layouts)
    ]  # per layout: (blanks, V)
    if num_candidates > 1:
        cache.batch_repeat_interleave(num_candidates)
        key_valid = key_valid.repeat_interleave(num_candidates, dim=0)
    rows = [RowState(layout) for layout in layouts for _ in range(num_candidates)]
    row_keys = range(first_text * num_candidates, (first_text + len(layouts)) * num_candidates)
    starting = [blank_logits[index // num_candidates] for index in range(len(rows))]
    next_logits = torch.stack([logits[0] for logits in starting])  # (R, V)
    pad = decoder.tokenizer.pad_token_id

    def finish_blank(index: int, state: RowState) -> None:
        state.fills.append((state.tokens, state.logps, state.logits))
        state.tokens, state.logps, state.logits = [], [], []
        state.blank += 1
        if state.blank == len(state.layout.gap_starts):
            state.done = True
        else:
            next_logits[index] = starting[index][state.blank]

    special = torch.tensor(sorted(decoder.tokenizer.all_special_ids), device=next_logits.device)
    while not all(state.done for state in rows):
        # A blank with text after it never picks a special token (EOS would end the text mid-way); the
        # scores stay the model's own probabilities.
        candidates = next_logits.clone()
        for index, state in enumerate(rows):
            if not state.done and not state.layout.at_end[state.blank]:
                candidates[index, special] = float("-inf")
        chosen = choose(candidates, row_keys)  # (R,)
        raw_logp = torch.log_softmax(next_logits, dim=-1)  # (R, V)
        feed = torch.full((len(rows),), pad, dtype=torch.long, device=device)  # (R,)
        feed_positions = torch.zeros((len(rows),), dtype=torch.long, device=device)  # (R,)
        feeding = torch.zeros((len(rows),), dtype=torch.bool, device=device)  # (R,)
        for index, state in enumerate(rows):
            if state.done:
                continue
            token = int(chosen[index])
            layout, blank = state.layout, state.blank
            state.tokens.append(token)
            state.logps.append(float(raw_logp[index, token]))
            if output_logits:
                state.logits.append(next_logits[index].clone())
            if len(state.tokens) == layout.lengths[blank] and blank == len(layout.gap_starts) - 1:
                finish_blank(index, state)  # nothing later attends to this token
                continue
            feed[index], feeding[index] = token, True
            feed_positions[index] = layout.gap_starts[blank] + len(state.tokens) - 1
        if not bool(feeding.any()):
            break
        # A causal step sees every valid cached key (context, and earlier span tokens); an idle row's dummy
        # query sees itself too, so no row of the mask is empty.
        step_keys = torch.cat([key_valid, torch.ones_like(feeding)[:, None]], dim=1)  # (R, K + 1)
        key_valid = torch.cat([key_valid, feeding[:, None]], dim=1)  # idle rows' dummy keys stay invisible
        step = run_decoder(
            decoder.backbone,
            feed[:, None],
            mode=AttentionMode.CAUSAL,
            key_mask=step_keys,
            position_ids=feed_positions[:, None],
            cache=cache,
        )  # (R, 1, D)
        out_logits = decoder.lm_logits(step[:, -1]).float()  # (R, V)
        for index, state in enumerate(rows):
            if not bool(feeding[index]) or state.done:
                continue
            if len(state.tokens) == state.layout.lengths[state.blank]:
                finish_blank(index, state)
            else:
                next_logits[index] = out_logits[index]
    return rows
