"""Infilling evaluation: perplexity of a missing span given both contexts (MAGNET) or the left one only.

Data (held out from training, read by `magnet_st.data`):
- "rocstories": ROCStories test part; the missing span is the middle sentence of each story.
- "story_cloze_val": the Story Cloze validation stories (with their right ending), blanked the same way: a
  set the report does not score, for choosing among checkpoints.
- "wikipedia": held-out Wikipedia sentences with a random span of 8-32 tokens removed; with
  `spans_per_sentence` > 1 each sentence gives that many examples (spans drawn with different seeds).

The perplexity's 95% interval resamples the examples (`magnet_st.evaluation.bootstrap`); the spans of one
Wikipedia sentence are resampled together, as one example of the per-example statistics.

The auto-length check fills the first `auto_length_limit` examples with an automatic length
(`magnet_st.generation.lengths`) and compares the chosen length with the reference span's, against the best
constant guess: the median reference length of those very examples (an oracle no method is given). ROCStories
blanks stand between sentences; the Wikipedia spans are cut inside a sentence at a random length.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Literal

from magnet_st.data.rocstories import rocstories_examples, story_cloze_examples
from magnet_st.data.wikipedia import wikipedia_examples
from magnet_st.evaluation.bootstrap import per_example_record, record_interval
from magnet_st.generation.infill import DEFAULT_MAX_AUTO_LENGTH, infill
from magnet_st.generation.scoring import span_log_likelihoods
from magnet_st.validation import check_positive_int

INFILL_DATASETS = ("rocstories", "wikipedia", "story_cloze_val")
INFILL_CONTEXTS = ("both", "left")
STORY_SETS = {"rocstories": rocstories_examples, "story_cloze_val": story_cloze_examples}  # one blank per story


def evaluate_infilling(
    model,
    data_dir=None,
    *,
    dataset: Literal["rocstories", "wikipedia", "story_cloze_val"] = "rocstories",
    limit: int | None = 200,
    spans_per_sentence: int = 1,
    seed: int = 0,
    context: Literal["both", "left"] = "both",
    batch_size: int = 16,
    auto_length_limit: int = 50,
    max_auto_length: int = DEFAULT_MAX_AUTO_LENGTH,
) -> dict[str, Any]:
    """Span perplexity on held-out data, plus (for context="both") how well the automatic length works.

    Returns a dict with the perplexity, its 95% bootstrap `interval`, the token and example counts, the
    settings, and `per_example` (log-probability and token count per text, for paired comparisons).
    `spans_per_sentence` applies to "wikipedia" only (a story has one middle sentence).
    """
    if dataset not in INFILL_DATASETS:
        raise ValueError(f"`dataset` must be one of {INFILL_DATASETS}, got {dataset!r}.")
    if context not in INFILL_CONTEXTS:
        raise ValueError(f"`context` must be one of {INFILL_CONTEXTS}, got {context!r}.")
    check_positive_int(limit, "limit", allow_none=True)
    check_positive_int(spans_per_sentence, "spans_per_sentence")
    decoder = getattr(model, "decoder", model)
    if dataset in STORY_SETS:
        groups = [[example] for example in STORY_SETS[dataset](data_dir, limit)]
    else:
        groups = wikipedia_groups(decoder.tokenizer, data_dir, limit, seed, spans_per_sentence)
    examples = [example for group in groups for example in group]
    texts = [text for text, _ in examples]
    references = [reference for _, reference in examples]
    began = time.perf_counter()
    scores = span_log_likelihoods(model, texts, references, context=context, batch_size=batch_size)
    total = sum(logprob for logprob, _ in scores)
    tokens = sum(count for _, count in scores)
    record = _per_text_record(groups, scores)
    result: dict[str, Any] = {
        "dataset": dataset,
        "context": context,
        "attention": "hybrid (span sees both contexts)" if context == "both" else "causal (left context only)",
        "examples": len(examples),
        "span_tokens": tokens,
        "perplexity": math.exp(-total / tokens),
        "interval": record_interval(record),
        "seed": seed,
        "seconds": round(time.perf_counter() - began, 1),
        "per_example": {"perplexity": record},
    }
    if dataset == "wikipedia":
        result["spans_per_sentence"] = spans_per_sentence
    if context == "both" and auto_length_limit:
        result["auto_length"] = auto_length_check(
            model, examples[:auto_length_limit], max_auto_length=max_auto_length, batch_size=batch_size
        )
    return result


def wikipedia_groups(
    tokenizer, data_dir, limit: int | None, seed: int, spans_per_sentence: int
) -> list[list[tuple[str, str]]]:
    """`spans_per_sentence` (text with a blank, span) examples per held-out sentence, up to `limit` examples.

    Draw k uses seed `seed + k`: draw 0 is `wikipedia_examples(..., seed)`, and every draw keeps the same
    sentences (the ones long enough) in the same order.
    """
    draws = [wikipedia_examples(tokenizer, data_dir, None, seed + k) for k in range(spans_per_sentence)]
    groups = [list(group) for group in zip(*draws)]
    if limit is None:
        return groups
    kept, count = [], 0
    for group in groups:
        if count >= limit:
            break
        kept.append(group[: limit - count])
        count += len(kept[-1])
    return kept


def _per_text_record(groups: list[list[tuple[str, str]]], scores: list[tuple[float, int]]) -> dict:
    """Summed log-probability and span tokens per text (the spans of one sentence together)."""
    logprobs, tokens, position = [], [], 0
    for group in groups:
        chunk = scores[position : position + len(group)]
        position += len(group)
        logprobs.append(sum(logprob for logprob, _ in chunk))
        tokens.append(sum(count for _, count in chunk))
    return per_example_record("perplexity", groups, logprob=logprobs, tokens=tokens)


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
