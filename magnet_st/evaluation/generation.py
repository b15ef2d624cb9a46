"""Repetition of left-to-right generation: rep-2/3/4 and rep-sen of continuations of held-out prefixes.

Prefixes: the first `prefix_tokens` tokens of held-out Wikipedia sentences (`magnet_st.data.wikipedia`, as in
the infilling evaluation) that are longer than the prefix. rep-n is counted on the model's tokens of each
continuation; rep-sen on its sentences (see `magnet_st.evaluation.repetition`).
"""

from __future__ import annotations

import time
from typing import Any

from magnet_st.data.wikipedia import held_out_prefixes
from magnet_st.evaluation.repetition import rep_n, rep_sen
from magnet_st.generation import generate
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
    }
