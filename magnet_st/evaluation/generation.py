"""Repetition of left-to-right generation: rep-2/3/4 and rep-sen of continuations of held-out prefixes.

Prefixes: the first `prefix_tokens` tokens of held-out Wikipedia sentences (`magnet_st.data.wikipedia`, as in
the infilling evaluation) that are longer than the prefix. rep-n is counted on the model's tokens of each
continuation; rep-sen on its sentences (see `magnet_st.evaluation.repetition`). Each score carries a 95%
bootstrap interval over the prefixes (`intervals`).
"""

from __future__ import annotations

import time
from typing import Any

from magnet_st.data.wikipedia import held_out_prefixes
from magnet_st.evaluation.bootstrap import per_example_record, record_interval
from magnet_st.evaluation.repetition import rep_n, rep_sen
from magnet_st.generation import generate
from magnet_st.generation.lengths import split_sentences
from magnet_st.validation import check_positive_int


def evaluate_repetition(
    model,
    data_dir=None,
    *,
    limit: int = 100,
    max_new_tokens: int = 128,
    sampling: bool = False,
    seed: int = 0,
    prefix_tokens: int = 16,
    top_p: float = 0.9,
    batch_size: int = 8,
) -> dict[str, Any]:
    """rep-2/3/4 and rep-sen of continuations (greedy, or nucleus sampling with `top_p`), settings included."""
    check_positive_int(limit, "limit")
    decoder = getattr(model, "decoder", model)
    tokenizer = decoder.tokenizer
    prefixes = held_out_prefixes(tokenizer, data_dir, limit, prefix_tokens)
    options: dict[str, Any] = {"do_sample": sampling}
    if sampling:
        options.update(top_p=top_p, top_k=0)
    began = time.perf_counter()
    continuations = generate(
        model, prefixes, max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size, **options
    )
    tokens = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in continuations]
    records = repetition_records(prefixes, tokens, continuations)
    return {
        "prefixes": len(prefixes),
        "prefix_tokens": prefix_tokens,
        "max_new_tokens": max_new_tokens,
        "decoding": f"nucleus sampling top_p={top_p}" if sampling else "greedy",
        "seed": seed,
        "rep-2": rep_n(tokens, 2),
        "rep-3": rep_n(tokens, 3),
        "rep-4": rep_n(tokens, 4),
        "rep-sen": rep_sen(continuations),
        "mean_new_tokens": sum(map(len, tokens)) / len(tokens),
        "seconds": round(time.perf_counter() - began, 1),
        "example": prefixes[0] + continuations[0],
        "intervals": {name: record_interval(record) for name, record in records.items()},
        "per_example": records,
    }


def repetition_records(prefixes: list[str], tokens: list[list[int]], continuations: list[str]) -> dict[str, dict]:
    """Per-continuation rep-n and rep-sen; NaN where a continuation has no n-gram (no sentence), as `rep_n`
    and `rep_sen` leave such continuations out of their mean."""
    nan = float("nan")
    values = {f"rep-{n}": [rep_n([ids], n) if len(ids) >= n else nan for ids in tokens] for n in (2, 3, 4)}
    values["rep-sen"] = [rep_sen([text]) if split_sentences(text) else nan for text in continuations]
    return {name: per_example_record("nanmean", prefixes, value=value) for name, value in values.items()}
