"""Infilling evaluation: perplexity of a missing span given both contexts (MAGNET) or the left one only.

Data (held out from training):
- "rocstories": ROCStories test part (rocstories_sample_11k/ROCstory_test_1k.csv, no header: storyid, title,
  s1..s5); the missing span is the middle sentence s3, with s1 s2 on the left and s4 s5 on the right.
- "wikipedia": the last 1000 complete lines of wiki1m_for_simcse_head (the cut last line dropped; training
  recipes read the head of the file); in each sentence of at least 24 tokens a span of 8-32 tokens (at most
  half the sentence) is removed at a random place with at least 4 context tokens on each side.

The auto-length check fills the first `auto_length_limit` examples with an automatic length
(`magnet_st.generation.lengths`) and compares the chosen length with the reference span's, against the best
constant guess: the median reference length of those very examples (an oracle no method is given). ROCStories
blanks stand between sentences; the Wikipedia spans are cut inside a sentence at a random length.
"""

from __future__ import annotations

import csv
import math
import random
import statistics
import time
from typing import Any, Literal

from magnet_st.evaluation.data import dataset_file
from magnet_st.generation.infill import BLANK, DEFAULT_MAX_AUTO_LENGTH, infill
from magnet_st.generation.scoring import span_log_likelihoods

WIKI_HELD_OUT_LINES = 1000


def rocstories_examples(data_dir=None, limit: int | None = None) -> list[tuple[str, str]]:
    """(text with one blank, reference middle sentence) pairs from the ROCStories test part."""
    path = dataset_file(data_dir, "rocstories_sample_11k", "ROCstory_test_1k.csv")
    examples = []
    with open(path, encoding="utf-8", newline="") as file:
        for row in csv.reader(file):
            if len(row) < 7:
                continue
            sentences = [sentence.strip() for sentence in row[2:7]]
            text = f"{sentences[0]} {sentences[1]} {BLANK} {sentences[3]} {sentences[4]}"
            examples.append((text, " " + sentences[2]))
            if limit is not None and len(examples) >= limit:
                break
    return examples


def wikipedia_examples(
    tokenizer, data_dir=None, limit: int | None = None, seed: int = 0, min_tokens: int = 24
) -> list[tuple[str, str]]:
    """(text with one blank, reference span) pairs: held-out Wikipedia sentences with 8-32 tokens removed."""
    path = dataset_file(data_dir, "wiki1m_for_simcse_head", "wiki1m_for_simcse.txt")
    lines = path.read_text(encoding="utf-8").split("\n")
    lines = [line.strip() for line in lines[:-1]]  # the file's last line is cut mid-sentence
    held_out = [line for line in lines[-WIKI_HELD_OUT_LINES:] if line]
    rng = random.Random(seed)
    examples = []
    for line in held_out:
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


def evaluate_infilling(
    model,
    data_dir=None,
    *,
    dataset: Literal["rocstories", "wikipedia"] = "rocstories",
    limit: int | None = 200,
    seed: int = 0,
    context: Literal["both", "left"] = "both",
    batch_size: int = 16,
    auto_length_limit: int = 50,
    max_auto_length: int = DEFAULT_MAX_AUTO_LENGTH,
) -> dict[str, Any]:
    """Span perplexity on held-out data, plus (for context="both") how well the automatic length works.

    Returns a dict with the perplexity, the token and example counts, and the settings.
    """
    if dataset not in ("rocstories", "wikipedia"):
        raise ValueError(f"`dataset` must be 'rocstories' or 'wikipedia', got {dataset!r}.")
    if context not in ("both", "left"):
        raise ValueError(f"`context` must be 'both' or 'left', got {context!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be a positive integer or None, got {limit!r}.")
    decoder = getattr(model, "decoder", model)
    if dataset == "rocstories":
        examples = rocstories_examples(data_dir, limit)
    else:
        examples = wikipedia_examples(decoder.tokenizer, data_dir, limit, seed)
    texts = [text for text, _ in examples]
    references = [reference for _, reference in examples]
    began = time.perf_counter()
    scores = span_log_likelihoods(model, texts, references, context=context, batch_size=batch_size)
    total = sum(logprob for logprob, _ in scores)
    tokens = sum(count for _, count in scores)
    result: dict[str, Any] = {
        "dataset": dataset,
        "context": context,
        "attention": "hybrid (span sees both contexts)" if context == "both" else "causal (left context only)",
        "examples": len(examples),
        "span_tokens": tokens,
        "perplexity": math.exp(-total / tokens),
        "seed": seed,
        "seconds": round(time.perf_counter() - began, 1),
    }
    if context == "both" and auto_length_limit:
        result["auto_length"] = auto_length_check(
            model, examples[:auto_length_limit], max_auto_length=max_auto_length, batch_size=batch_size
        )
    return result


def auto_length_check(
    model, examples: list[tuple[str, str]], *, max_auto_length: int = DEFAULT_MAX_AUTO_LENGTH, batch_size: int = 8
) -> dict[str, Any]:
    """Chosen automatic lengths against the reference lengths (greedy fills)."""
    decoder = getattr(model, "decoder", model)
    true_lengths = [
        len(decoder.tokenizer(reference, add_special_tokens=False)["input_ids"]) for _, reference in examples
    ]
    results = infill(model, [text for text, _ in examples], max_auto_length=max_auto_length, batch_size=batch_size)
    chosen = [result.fills[0].length for result in results]
    errors = [abs(a - b) for a, b in zip(chosen, true_lengths)]
    median = statistics.median(true_lengths)
    constant_errors = [abs(median - length) for length in true_lengths]
    correlation = statistics.correlation(chosen, true_lengths) if len(set(chosen)) > 1 else 0.0
    return {
        "examples": len(examples),
        "max_auto_length": max_auto_length,
        "mean_abs_error": statistics.mean(errors),
        "within_3_tokens": sum(error <= 3 for error in errors) / len(errors),
        "constant_median_guess_mean_abs_error": statistics.mean(constant_errors),
        "pearson_chosen_vs_true": correlation,
        "mean_chosen_length": statistics.mean(chosen),
        "mean_true_length": statistics.mean(true_lengths),
    }
