"""results.json -> one bar chart per claim of the paper, bars named by data set, each model in a fixed colour.

Figures are built as matplotlib objects (`claim_figures`) and written as PNGs (`write_plots`). A result cell
(the dict holding a score) may carry `interval`: [low, high], a 95% bootstrap interval, and a result holding
several scores `intervals`: {score name: [low, high]}; either is drawn as an error bar, and a bar without one
has none. A model without a number in a figure gets no bar and no legend entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magnet_st.base_models import EMBEDDED_MODELS

# The paper's infilling claim (Llama-2-7B, ROCStories): MAGNET with both contexts 9.52 against the base's
# left-only 13.93 perplexity.
PAPER_BOTH_OVER_BASE_LEFT = 9.52 / 13.93
STS_NAMES = {"stsb": "STS-B", "sickr": "SICK-R", "sick-r": "SICK-R"}
INFILL_SETS = {"rocstories": "ROCStories", "wikipedia": "Wikipedia"}
LAMA_SETS = {"google_re": "Google-RE", "trex": "T-REx", "squad": "SQuAD"}
CONTEXTS = ("both", "left")
REFERENCE = "paper: both contexts = 9.52 / 13.93 = 0.68 x base left-only"

Cell = tuple[float, list[float] | None]  # a score and its 95% interval, if any
Reader = Callable[[dict[str, Any]], Cell | None]  # a model's results.json entry -> one bar, or None


def result_of(model: dict[str, Any], part: str) -> dict[str, Any] | None:
    """The raw result of a part that finished ("ok"), else None."""
    entry = model["parts"].get(part) or {}
    return entry.get("result") if entry.get("status") == "ok" else None


def interval_of(enclosing: list[dict[str, Any]], name: str, own: bool) -> list[float] | None:
    """A score's 95% interval: the `interval` of a cell holding it alone (`own`), else `intervals[name]` of the
    nearest enclosing dict that names it (a result holding several scores: word probes, LAMA, repetition)."""
    if own and enclosing[-1].get("interval"):
        return list(enclosing[-1]["interval"])
    for node in reversed(enclosing):
        intervals = node.get("intervals")
        if isinstance(intervals, dict) and name in intervals:
            return list(intervals[name]) if intervals[name] else None
    return None


def cell(part: str, *path: str, value: str | None = None) -> Reader:
    """Reads result[path...]: a number, or a dict holding the number under `value`, and its interval if any."""

    def read(model: dict[str, Any]) -> Cell | None:
        node: Any = result_of(model, part)
        enclosing, name = [], ""  # the dicts walked through, from the result inward; the score's key
        for key in path:
            if not isinstance(node, dict):
                return None
            enclosing.append(node)
            node, name = node.get(key), key
        own = isinstance(node, dict) and value is not None
        if own:
            enclosing.append(node)
            node, name = node.get(value), value
        if not isinstance(node, (int, float)) or isinstance(node, bool) or node != node:  # missing or NaN
            return None
        return float(node), interval_of(enclosing, name, own)

    return read


@dataclass(frozen=True)
class Claim:
    """One figure: a claim of the paper and its bars (data set name -> reader)."""

    name: str
    title: str
    ylabel: str
    bars: Callable[[list[dict[str, Any]]], dict[str, Reader]]


def _sts_bars(models: list[dict[str, Any]]) -> dict[str, Reader]:
    sets = sorted({name for m in models for name in ((result_of(m, "sentence") or {}).get("sts") or {})})
    bars = {STS_NAMES.get(name, name.upper()): cell("sentence", "sts", name, value="spearman") for name in sets}
    if len(sets) > 1:
        bars["average"] = cell("sentence", "sts_average")
    return bars


CLAIMS = (
    Claim(
        "word_probes",
        "Token representations: CoNLL-2003 linear probes",
        "F1 (chunking, NER) / accuracy (POS) x100",
        lambda _: {
            "CoNLL-2003 chunking": cell("word", "chunk", value="score"),
            "CoNLL-2003 NER": cell("word", "ner", value="score"),
            "CoNLL-2003 POS": cell("word", "pos", value="score"),
        },
    ),
    Claim("sts", "Sentence embeddings: semantic textual similarity", "Spearman x100", _sts_bars),
    Claim(
        "classification",
        "Sentence embeddings: classification",
        "accuracy x100",
        lambda _: {
            "Banking77": cell("sentence", "classification", "banking77", value="accuracy"),
            "SST-2": cell("sentence", "classification", "sst2", value="accuracy"),
        },
    ),
    Claim(
        "infill_length",
        "Automatic infill length: mean error against the best constant",
        "mean absolute error (tokens)",
        lambda _: {
            f"{label} ({kind})": cell("infilling", f"{key}/both", "auto_length", value=field)
            for key, label in INFILL_SETS.items()
            for kind, field in (
                ("automatic", "mean_abs_error"),
                ("best constant", "constant_median_guess_mean_abs_error"),
            )
        },
    ),
    Claim(
        "repetition",
        "Generation: repetition of Wikipedia continuations (lower is better)",
        "repetition rate",
        lambda _: {
            f"{metric} ({decoding})": cell("generation", decoding, value=field)
            for decoding in ("greedy", "nucleus")
            for metric, field in (("sentences", "rep-sen"), ("4-grams", "rep-4"))
        },
    ),
    Claim(
        "knowledge",
        "Knowledge retention: LAMA precision at 1",
        "P@1 x100",
        lambda _: {label: cell("knowledge", "precision_at_1", key) for key, label in LAMA_SETS.items()},
    ),
)


def model_colours(models: list[dict[str, Any]]) -> dict[str, Any]:
    """One colour per model label, by its place in results.json, the same in every figure."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"].colors
    return {model["label"]: palette[index % len(palette)] for index, model in enumerate(models)}


def _error(value: float, interval: list[float] | None) -> list[list[float]]:
    low, high = interval if interval else (value, value)
    return [[max(0.0, value - low)], [max(0.0, high - value)]]


def grouped_bars(axis, models: list[dict[str, Any]], bars: dict[str, Reader], colours: dict[str, Any]) -> int:
    """Bars grouped by data set (x ticks), one per model with a number there; returns the bars drawn."""
    cells = {model["label"]: [read(model) for read in bars.values()] for model in models}
    shown = [label for label, values in cells.items() if any(values)]
    width = 0.8 / max(1, len(shown))
    for slot, label in enumerate(shown):
        for index, found in enumerate(cells[label]):
            if found is None:
                continue
            value, interval = found
            axis.bar(
                index - 0.4 + width * (slot + 0.5),
                value,
                width,
                color=colours[label],
                yerr=_error(value, interval) if interval else None,
                capsize=3,
                label=label if index == next(k for k, v in enumerate(cells[label]) if v) else None,
            )
    axis.set_xticks(range(len(bars)))
    axis.set_xticklabels(list(bars), fontsize=8)
    return sum(value is not None for label in shown for value in cells[label])


def infilling_figure(models: list[dict[str, Any]], colours: dict[str, Any]):
    """Span perplexity with both contexts beside left context only, per model, one panel per data set.

    A dashed line marks the paper's claim: MAGNET with both contexts at 9.52 / 13.93 of the base's
    left-only perplexity (the base: an embedded base model among the results, else each model's own).
    """
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(INFILL_SETS), figsize=(5.2 * len(INFILL_SETS), 4.2), squeeze=False)
    base = next((m for m in models if m.get("source") in EMBEDDED_MODELS), None)
    drawn = 0
    for axis, (key, label) in zip(axes[0], INFILL_SETS.items()):
        readers = {context: cell("infilling", f"{key}/{context}", value="perplexity") for context in CONTEXTS}
        rows = [(m, {c: read(m) for c, read in readers.items()}) for m in models]
        rows = [(m, found) for m, found in rows if any(found.values())]
        base_left = readers["left"](base) if base is not None else None
        if base_left is not None:  # one line at the base's level
            axis.axhline(base_left[0] * PAPER_BOTH_OVER_BASE_LEFT, color="black", linestyle="--", label=REFERENCE)
        for group, (model, found) in enumerate(rows):
            for offset, context, hatch in ((-0.2, "both", ""), (0.2, "left", "//")):
                if found[context] is None:
                    continue
                value, interval = found[context]
                axis.bar(
                    group + offset, value, 0.38, color=colours[model["label"]], hatch=hatch, edgecolor="white",
                    yerr=_error(value, interval) if interval else None, capsize=3,
                )  # fmt: skip
                drawn += 1
            if base_left is None and found["left"] is not None:  # no base among the models: each its own level
                level = found["left"][0] * PAPER_BOTH_OVER_BASE_LEFT
                axis.hlines(level, group - 0.45, group + 0.45, colors="black", linestyles="--",
                            label=REFERENCE if group == 0 else None)  # fmt: skip
        axis.set_xticks(range(len(rows)))
        axis.set_xticklabels([f"{model['label']}\nboth | left" for model, _ in rows], fontsize=7)
        axis.set_title(label, fontsize=9)
        axis.set_ylabel("span perplexity (lower is better)")
        if rows:
            axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    figure.suptitle("Infilling: both contexts (plain) vs left context only (hatched)", fontsize=10)
    figure.tight_layout()
    return figure, drawn


def claim_figures(results: dict[str, Any]) -> dict[str, Any]:
    """name -> matplotlib Figure, for every claim with at least one number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = results["models"]
    colours = model_colours(models)
    figures = {}
    for claim in CLAIMS:
        bars = claim.bars(models)
        figure, axis = plt.subplots(figsize=(4.2 + 1.3 * max(1, len(bars)), 3.4))
        if not bars or grouped_bars(axis, models, bars, colours) == 0:
            plt.close(figure)
            continue
        axis.set_title(claim.title, fontsize=10)
        axis.set_ylabel(claim.ylabel, fontsize=8)
        axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
        figure.tight_layout()
        figures[claim.name] = figure
    figure, drawn = infilling_figure(models, colours)
    if drawn:
        figures["infilling"] = figure
    else:
        plt.close(figure)
    return figures


def write_plots(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write `plot_<claim>.png` for every claim with numbers (earlier plots removed); returns the paths."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    for stale in out_dir.glob("plot_*.png"):  # an earlier run may have plotted other claims
        stale.unlink()
    written = []
    for name, figure in claim_figures(results).items():
        path = out_dir / f"plot_{name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
