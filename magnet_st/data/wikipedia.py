"""Held-out Wikipedia sentences (the tail of wiki1m_for_simcse_head): infilling spans and generation prefixes.

Training recipes read the head of the file, so its last `WIKI_HELD_OUT_LINES` complete lines are held out
(the file's very last line is cut mid-sentence and dropped).
"""

from __future__ import annotations

import os
import random

from magnet_st.data.paths import dataset_file

WIKI_FILE = ("wiki1m_for_simcse_head", "wiki1m_for_simcse.txt")
WIKI_HELD_OUT_LINES = 1000


def held_out_lines(data_dir: str | os.PathLike | None = None) -> list[str]:
    """The last `WIKI_HELD_OUT_LINES` complete lines of the file, stripped, empty ones left out."""
    lines = dataset_file(data_dir, *WIKI_FILE).read_text(encoding="utf-8").split("\n")
    lines = [line.strip() for line in lines[:-1]]  # the file's last line is cut mid-sentence
    return [line for line in lines[-WIKI_HELD_OUT_LINES:] if line]


def wikipedia_examples(
    tokenizer, data_dir: str | os.PathLike | None = None, limit: int | None = None, seed: int = 0, min_tokens: int = 24
) -> list[tuple[str, str]]:
    """(text with one blank, reference span) pairs: held-out sentences with 8-32 tokens removed.

    In each sentence of at least `min_tokens` tokens a span of 8-32 tokens (at most half the sentence) is
    removed at a seeded random place, with at least 4 context tokens on each side.
    """
    from magnet_st.generation import BLANK  # here: this module's file names must load without torch

    rng = random.Random(seed)
    examples = []
    for line in held_out_lines(data_dir):
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        if len(ids) < min_tokens:
            continue
        length = rng.randint(8, min(32, len(ids) // 2))
        start = rng.randint(4, len(ids) - length - 4)
        left, span, right = (
            tokenizer.decode(part) for part in (ids[:start], ids[start : start + length], ids[start + length :])
        )
        examples.append((f"{left}{BLANK}{right}", span))
        if limit is not None and len(examples) >= limit:
            break
    return examples


def held_out_prefixes(
    tokenizer, data_dir: str | os.PathLike | None = None, limit: int | None = 100, prefix_tokens: int = 16
) -> list[str]:
    """The first `prefix_tokens` tokens (decoded) of each held-out sentence longer than that."""
    prefixes = []
    for line in held_out_lines(data_dir):
        ids = tokenizer(line, add_special_tokens=False)["input_ids"]
        if len(ids) > prefix_tokens:
            prefixes.append(tokenizer.decode(ids[:prefix_tokens]))
        if limit is not None and len(prefixes) >= limit:
            break
    return prefixes
