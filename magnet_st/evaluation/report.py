"""results.json -> a Markdown table laid out like the paper's (one column per model) and bar charts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

NOT_AVAILABLE = "-"


def _key(text: str) -> str:
    return "".join(character for character in str(text).lower() if character.isalnum())


def find_number(tree: Any, *paths: Sequence[str]) -> float | None:
    """The first number found along one of `paths` (keys compared without case, '-' or '_').

    A path may end on a dict that holds the number under a usual metric name (f1, accuracy, perplexity...).
    """
    for path in paths:
        node = tree
        for name in path:
            if not isinstance(node, dict):
                node = None
                break
            node = next((value for key, value in node.items() if _key(key) == _key(name)), None)
        if isinstance(node, dict):
            node = next(
                (
                    node[key]
                    for metric in ("main", "f1", "accuracy", "perplexity", "value", "score")
                    for key in node
                    if _key(key) == metric
                ),
                None,
            )
        if isinstance(node, (int, float)) and not isinstance(node, bool) and math.isfinite(node):
            return float(node)
    return None


def _result(model: dict[str, Any], part: str) -> Any:
    entry = model["parts"].get(part, {})
    return entry.get("result") if entry.get("status") == "ok" else None


# Rows of the table: (claim, part, getters); a row's cell joins its getters' values with " / ".
Getter = Callable[[Any], float | None]
ROWS: list[tuple[str, str, list[Getter]]] = [
    (
        "CoNLL-2003 linear probe: chunk / NER / POS",
        "word",
        [
            lambda r, t=t: find_number(r, (t,), ("tasks", t), (t, "f1"), (t, "accuracy"))
            for t in ("chunk", "ner", "pos")
        ],
    ),
    ("STS avg, Spearman x100", "sentence", [lambda r: find_number(r, ("sts_average",))]),
    ("STS-B alone, Spearman x100", "sentence", [lambda r: find_number(r, ("sts", "stsb", "spearman"))]),
    (
        "Banking77 / SST-2 accuracy x100",
        "sentence",
        [lambda r, t=t: find_number(r, ("classification", t, "accuracy")) for t in ("banking77", "sst2")],
    ),
    (
        "Infill perplexity ROCStories / Wikipedia (both contexts)",
        "infilling",
        [
            lambda r, d=d: find_number(r, (f"{d}/both", "perplexity"), (f"{d}/both",))
            for d in ("rocstories", "wikipedia")
        ],
    ),
    (
        "Infill perplexity ROCStories / Wikipedia (left context only)",
        "infilling",
        [
            lambda r, d=d: find_number(r, (f"{d}/left", "perplexity"), (f"{d}/left",))
            for d in ("rocstories", "wikipedia")
        ],
    ),
    (
        "Automatic infill length, mean error in tokens: ROCStories / best constant / Wikipedia / best constant",
        "infilling",
        [
            lambda r, d=d, m=m: find_number(r, (f"{d}/both", "auto_length", m))
            for d in ("rocstories", "wikipedia")
            for m in ("mean_abs_error", "constant_median_guess_mean_abs_error")
        ],
    ),
    (
        "Sentence repetition / 4-gram repetition (greedy)",
        "generation",
        [lambda r, m=m: find_number(r, ("greedy", m)) for m in ("rep_sen", "rep_4")],
    ),
    (
        "Sentence repetition / 4-gram repetition (nucleus)",
        "generation",
        [lambda r, m=m: find_number(r, ("nucleus", m)) for m in ("rep_sen", "rep_4")],
    ),
    (
        "LAMA P@1 x100: Google-RE / T-REx / SQuAD",
        "knowledge",
        [lambda r, s=s: find_number(r, ("precision_at_1", s)) for s in ("google_re", "trex", "squad")],
    ),
]


def _format(value: float | None, fractions: bool) -> str:
    if value is None:
        return NOT_AVAILABLE
    return f"{value:.4f}" if fractions else f"{value:.2f}"


def table_rows(results: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(claim, one cell per model) for every row with at least one number."""
    rows = []
    for claim, part, getters in ROWS:
        cells = []
        for model in results["models"]:
            result = _result(model, part)
            values = [getter(result) if result is not None else None for getter in getters]
            fractions = all(abs(v) < 1 for v in values if v is not None)  # rep-n rows: 4 decimals
            cells.append(
                NOT_AVAILABLE if all(v is None for v in values) else " / ".join(_format(v, fractions) for v in values)
            )
        if any(cell != NOT_AVAILABLE for cell in cells):
            rows.append((claim, cells))
    return rows


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
        variants = (_result(model, "sentence") or {}).get("variants") or {}
        for key, scores in variants.items():
            lines.append(f"  - STS variant {key}: " + ", ".join(f"{n} {v:.2f}" for n, v in scores.items()))
    lines += ["", f"Sizes, seeds and versions are in results.json. Command: `{results.get('command') or 'n/a'}`", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_plots(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """One grouped bar chart per claim row (bars = models); returns the PNG paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    for stale in out_dir.glob("plot_*.png"):  # an earlier run's plots may be numbered differently
        stale.unlink()
    labels = [model["label"] for model in results["models"]]
    written = []
    for index, (claim, cells) in enumerate(table_rows(results)):
        parts = [cell.split(" / ") for cell in cells]
        metric_names = claim.split(": ")[-1].split(" / ") if ":" in claim else [claim]
        if len(metric_names) != max(len(p) for p in parts):
            metric_names = [f"value {i + 1}" for i in range(max(len(p) for p in parts))]
        figure, axis = plt.subplots(figsize=(1.8 + 1.4 * len(metric_names) * max(1, len(labels)) / 2, 3.2))
        width = 0.8 / max(1, len(labels))
        for m, (label, values) in enumerate(zip(labels, parts)):
            numbers = [float(v) if v != NOT_AVAILABLE else 0.0 for v in values]
            numbers += [0.0] * (len(metric_names) - len(numbers))
            axis.bar([i + m * width for i in range(len(metric_names))], numbers, width, label=label)
        axis.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(metric_names))])
        axis.set_xticklabels(metric_names, fontsize=8)
        axis.set_title(claim, fontsize=9)
        axis.legend(fontsize=7)
        figure.tight_layout()
        path = out_dir / f"plot_{index:02d}_{''.join(c if c.isalnum() else '_' for c in claim.lower())[:40]}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
