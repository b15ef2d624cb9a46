"""results.json -> a Markdown table laid out like the paper's (one column per model); charts: `plots`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magnet_st.data.lama import SOURCES
from magnet_st.evaluation.parts import get_part
from magnet_st.evaluation.plots import write_plots
from magnet_st.evaluation.results import (
    GenerationResult,
    InfillingResult,
    KnowledgeResult,
    PartOutcome,
    Record,
    RepetitionScore,
    SentenceResult,
    WordProbeResult,
)

__all__ = ["markdown_table", "table_rows", "write_markdown", "write_plots"]

NOT_AVAILABLE = "-"
INFILL_SETS = ("rocstories", "wikipedia")


def part_result(model: dict[str, Any], part: str) -> Record | None:
    """A model's typed result for `part`, or None when the part did not run or did not finish ("n/a" ...)."""
    entry = model["parts"].get(part)
    if entry is None:
        return None
    outcome = PartOutcome.from_dict(entry, get_part(part).result_type)
    return outcome.result if outcome.status == "ok" else None


@dataclass(frozen=True)
class Row:
    """One claim of the table: `values` reads its numbers from the part's typed result."""

    claim: str
    part: str
    values: Callable[[Any], list[float | None]]


def _word(result: WordProbeResult) -> list[float | None]:
    return [result.scores.get(task) for task in ("chunk", "ner", "pos")]


def _sts_b(result: SentenceResult) -> list[float | None]:
    return [result.sts["stsb"].spearman if "stsb" in result.sts else None]


def _classification(result: SentenceResult) -> list[float | None]:
    scores = result.classification
    return [scores[name].accuracy if name in scores else None for name in ("banking77", "sst2")]


def _perplexity(context: str) -> Callable[[InfillingResult], list[float | None]]:
    def values(result: InfillingResult) -> list[float | None]:
        scores = [result.score(dataset, context) for dataset in INFILL_SETS]
        return [score.perplexity if score else None for score in scores]

    return values


def _auto_length(result: InfillingResult) -> list[float | None]:
    values: list[float | None] = []
    for dataset in INFILL_SETS:
        score = result.score(dataset, "both")
        check = score.auto_length if score else None
        values += [check.mean_abs_error, check.constant_median_guess_mean_abs_error] if check else [None, None]
    return values


def _repetition(decoding: str) -> Callable[[GenerationResult], list[float | None]]:
    def values(result: GenerationResult) -> list[float | None]:
        score: RepetitionScore | None = getattr(result, decoding)
        return [score.rep_sen, score.rep_4] if score else [None, None]

    return values


def _lama(result: KnowledgeResult) -> list[float | None]:
    return [result.precision_at_1.get(source) for source in SOURCES]


ROWS = (
    Row("CoNLL-2003 linear probe: chunk / NER / POS", "word", _word),
    Row("STS avg, Spearman x100", "sentence", lambda result: [result.sts_average]),
    Row("STS-B alone, Spearman x100", "sentence", _sts_b),
    Row("Banking77 / SST-2 accuracy x100", "sentence", _classification),
    Row("Infill perplexity ROCStories / Wikipedia (both contexts)", "infilling", _perplexity("both")),
    Row("Infill perplexity ROCStories / Wikipedia (left context only)", "infilling", _perplexity("left")),
    Row(
        "Automatic infill length, mean error in tokens: ROCStories / best constant / Wikipedia / best constant",
        "infilling",
        _auto_length,
    ),
    Row("Sentence repetition / 4-gram repetition (greedy)", "generation", _repetition("greedy")),
    Row("Sentence repetition / 4-gram repetition (nucleus)", "generation", _repetition("nucleus")),
    Row("LAMA P@1 x100: Google-RE / T-REx / SQuAD", "knowledge", _lama),
)


def _number(value: Any) -> float | None:
    """A finite number as float; anything else (missing, NaN) is a gap in the table."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _format(value: float | None, fractions: bool) -> str:
    if value is None:
        return NOT_AVAILABLE
    return f"{value:.4f}" if fractions else f"{value:.2f}"


def table_rows(results: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(claim, one cell per model) for every row with at least one number."""
    rows = []
    for row in ROWS:
        cells = []
        for model in results["models"]:
            result = part_result(model, row.part)
            values = [_number(value) for value in row.values(result)] if result is not None else [None]
            fractions = all(abs(v) < 1 for v in values if v is not None)  # rep-n rows: 4 decimals
            cells.append(
                NOT_AVAILABLE if all(v is None for v in values) else " / ".join(_format(v, fractions) for v in values)
            )
        if any(cell != NOT_AVAILABLE for cell in cells):
            rows.append((row.claim, cells))
    return rows


def word_readings(result: WordProbeResult) -> str:
    """Chunk / NER / POS x100 per alignment, e.g. "own 63.65 / 60.03 / 82.93; ...", and each task's headline."""
    metric, readings = result.settings.get("metric", {}), []
    for alignment, tasks in result.details.items():
        scores = [tasks[task][metric[task]] * 100 if task in tasks else None for task in ("chunk", "ner", "pos")]
        readings.append(f"{alignment} " + " / ".join(_format(score, False) for score in scores))
    text = "; ".join(readings) + " (chunk / NER / POS)"
    chosen = result.settings.get("headline_alignments")
    if chosen and result.settings.get("headline") == "validation":
        text += "; headline chosen on CoNLL validation: " + ", ".join(f"{task} {chosen[task]}" for task in chosen)
    return text


def markdown_table(results: dict[str, Any]) -> str:
    labels = [model["label"] for model in results["models"]]
    lines = ["| claim | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
    lines += [f"| {claim} | " + " | ".join(cells) + " |" for claim, cells in table_rows(results)]
    return "\n".join(lines)


def write_markdown(results: dict[str, Any], path: str | Path) -> Path:
    """results.md: the table, then how each model encoded, which parts were skipped, and the command."""
    path = Path(path)
    lines = [f"# magnet-st evaluation ({results['suite']} suite)", "", markdown_table(results), ""]
    lines.append("Encoding per model (sentence level):")
    lines.append("")
    for model in results["models"]:
        encoding = model.get("encoding", {})
        lines.append(
            f"- {model['label']}: attention {encoding.get('attention_mode')}, pooling {encoding.get('pooling')}, "
            f"prompt {encoding.get('prompt')!r}"
        )
        for part, entry in model["parts"].items():
            if entry.get("status") != "ok":
                lines.append(f"  - {part}: {entry.get('status')} ({entry.get('reason')})")
        sentence = part_result(model, "sentence")
        variants = sentence.variants if sentence is not None else {}
        for key, scores in variants.items():
            lines.append(f"  - STS variant {key}: " + ", ".join(f"{n} {v:.2f}" for n, v in scores.items()))
        word = part_result(model, "word")
        if word is not None:
            lines.append(f"  - words read {word.settings.get('attention_mode')}: " + word_readings(word))
    lines += ["", f"Sizes, seeds and versions are in results.json. Command: `{results.get('command') or 'n/a'}`", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
