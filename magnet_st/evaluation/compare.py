"""Paired comparisons of evaluated models on the same examples: which differences are significant.

The suite keeps each model's per-example statistics in per_example.json beside results.json (keyed by model
label, then "part/run/score", see `magnet_st.evaluation.bootstrap`). For two models evaluated on the same
examples, a score's difference gets a 95% paired-bootstrap interval (both models' statistics resampled with
the same example indices) and is `significant` when the interval excludes 0. The infilling claim is checked
as ratios: a model's both-context perplexity over the reference's left-only one, and over its own left-only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from magnet_st.evaluation.bootstrap import paired_interval
from magnet_st.folders import results_folder

PER_EXAMPLE_FILE = "per_example.json"
INFILL_SETS = ("rocstories", "wikipedia")


def save_per_example(folder: str | os.PathLike, label: str, records: dict[str, dict[str, Any]]) -> None:
    """Add (or replace) one model's records in the folder's per_example.json, keeping the other models'."""
    path = Path(folder) / PER_EXAMPLE_FILE
    stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    stored.setdefault(label, {}).update(records)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(stored) + "\n", encoding="utf-8")
    temporary.replace(path)


def load_per_example(folders: list[str | os.PathLike]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every model's records from the folders' per_example.json (a later folder wins for the same score)."""
    models: dict[str, dict[str, dict[str, Any]]] = {}
    for folder in folders:
        path = Path(folder) / PER_EXAMPLE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"Missing {str(path)!r}: evaluate with `magnet-st eval ... --out {folder}` first.")
        for label, records in json.loads(path.read_text(encoding="utf-8")).items():
            models.setdefault(label, {}).update(records)
    return models


def compare_models(
    models: dict[str, dict[str, dict[str, Any]]], reference: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every other model against `reference` (default: the first model), on each score both models have.

    Returns `{"differences": [...], "infilling": [...]}`: one row per (model, score) with both scores, the
    difference (model - reference) or ratio, its 95% paired interval and `significant`. Raises a ValueError
    when a shared score was computed on different examples.
    """
    if len(models) < 2:
        raise ValueError(f"Comparing needs at least two models, got {list(models)}.")
    reference = reference if reference is not None else next(iter(models))
    if reference not in models:
        raise ValueError(f"`reference` must be one of {list(models)}, got {reference!r}.")
    base = models[reference]
    differences, infilling = [], []
    for label, records in models.items():
        infilling += infill_ratios(label, records, reference, base)
        if label == reference:
            continue
        for key in records:
            reference_key = word_headline(key)  # a model's every reading against the reference's headline
            if reference_key not in base:
                continue
            row = paired_interval(records[key], base[reference_key], "difference")
            differences.append(
                {"model": label, "reference": reference, "score": key, "reference_score": reference_key, **row}
            )
    return {"differences": differences, "infilling": infilling}


def word_headline(key: str) -> str:
    """A word probe's other reading ("word/ner/own") -> the headline score it is compared with ("word/ner").

    Each model's word probes are scored in both alignments, the headline in the one better on validation, so
    a model's other reading is also set against the reference's headline: the reference at its best reading
    against each reading of the model.
    """
    part, *rest = key.split("/")
    return f"{part}/{rest[0]}" if part == "word" and len(rest) == 2 else key


def infill_ratios(
    label: str, records: dict[str, dict[str, Any]], reference: str, base: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Both-context perplexity over the reference's left-only perplexity, and over the model's own left-only."""
    rows = []
    for dataset in INFILL_SETS:
        both, left = (f"infilling/{dataset}/{context}/perplexity" for context in ("both", "left"))
        denominators = {f"{reference} left": base.get(left), f"{label} left": records.get(left)}  # one when equal
        for over, denominator in denominators.items():
            if both in records and denominator is not None:
                row = paired_interval(records[both], denominator, "ratio")
                rows.append({"model": label, "dataset": dataset, "numerator": f"{label} both", "over": over, **row})
    return rows


def comparison_markdown(comparison: dict[str, list[dict[str, Any]]]) -> str:
    """Markdown tables: each difference with its 95% paired interval, and the infilling ratios."""
    lines = [
        "| model | reference | score | model's | reference's | difference [95% CI] | significant |",
        "| --- | --- | --- | ---: | ---: | ---: | :---: |",
    ]
    for row in comparison["differences"]:
        lines.append(
            f"| {row['model']} | {row['reference']} | {_score(row)} | {row['first']:.2f} | {row['second']:.2f} "
            f"| {row['difference']:+.2f} {_interval(row['interval'])} | {'yes' if row['significant'] else 'no'} |"
        )
    if comparison["infilling"]:
        lines += [
            "",
            "| model | data set | both-context perplexity over | ratio [95% CI] | significant (excludes 1) |",
            "| --- | --- | --- | ---: | :---: |",
        ]
        for row in comparison["infilling"]:
            lines.append(
                f"| {row['model']} | {row['dataset']} | {row['over']} ({row['second']:.2f}) "
                f"| {row['ratio']:.3f} {_interval(row['interval'], 3)} | {'yes' if row['significant'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def _score(row: dict[str, Any]) -> str:
    reference_score = row.get("reference_score", row["score"])
    return row["score"] if reference_score == row["score"] else f"{row['score']} vs {reference_score}"


def _interval(interval: list[float] | None, digits: int = 2) -> str:
    return "[n/a]" if interval is None else f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def write_comparison(
    folders: list[str | os.PathLike], out_dir: str | os.PathLike, reference: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Compare the models of the folders' per_example.json; write comparison.json and comparison.md to `out_dir`."""
    out = results_folder(out_dir, "out_dir (--out)")
    comparison = compare_models(load_per_example(folders), reference)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(comparison, indent=1) + "\n", encoding="utf-8")
    (out / "comparison.md").write_text(comparison_markdown(comparison), encoding="utf-8")
    return comparison
