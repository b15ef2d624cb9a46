"""Repetition of left-to-right generation: rep-2/3/4 and rep-sen of continuations of held-out prefixes.

Prefixes: the first `prefix_tokens` tokens of held-out Wikipedia sentences (the last 1000 complete lines of
wiki1m_for_simcse_head, as in the infilling evaluation) that are longer than the prefix. rep-n is counted
on the model's tokens of each continuation; rep-sen on its sentences (see `magnet_st.evaluation.repetition`).
"""

from __future__ import annotations

import time
from typing import Any

from magnet_st.evaluation.data import dataset_file
from magnet_st.evaluation.infilling import WIKI_HELD_OUT_LINES
from magnet_st.generation.generate import generate
from magnet_st.evaluation.repetition import rep_n, rep_sen


def held_out_prefixes(tokenizer, data_dir=None, limit: int | None = 100, prefix_tokens: int = 16) -> list[str]:
    path = dataset_file(data_dir, "wiki1m_for_simcse_head", "wiki1m_for_simcse.txt")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").split("\n")[:-1]]  # last line is cut
    prefixes = []
    for line in lines[-WIKI_HELD_OUT_LINES:]:
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        if len(ids) > prefix_tokens:
            prefixes.append(tokenizer.decode(ids[:prefix_tokens]))
        if limit is not None and len(prefixes) >= limit:
            break
    return prefixes


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
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"`limit` must be a positive integer, got {limit!r}.")
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
