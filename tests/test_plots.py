"""The result plots, checked through matplotlib objects: labels, colours, legends, reference line, error bars."""

import copy
import json
from pathlib import Path

import matplotlib
import pytest
from matplotlib.container import BarContainer

from magnet_st.evaluation.plots import PAPER_BOTH_OVER_BASE_LEFT, REFERENCE, claim_figures, write_plots
from magnet_st.training.train import plot_loss_curves, smoothed

matplotlib.use("Agg")
PAPER = Path(__file__).resolve().parents[1] / "evaluation" / "results" / "paper" / "results.json"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def results():
    return json.loads(PAPER.read_text())


def ticks(axis):
    return [label.get_text() for label in axis.get_xticklabels()]


def legend(axis):
    return [text.get_text() for text in axis.get_legend().get_texts()] if axis.get_legend() else []


def test_bars_are_named_by_data_set_never_value_n(results):
    figures = claim_figures(results)
    assert set(figures) >= {"word_probes", "sts", "classification", "infilling", "repetition", "knowledge"}
    assert ticks(figures["classification"].axes[0]) == ["Banking77", "SST-2"]
    assert ticks(figures["knowledge"].axes[0]) == ["Google-RE", "T-REx", "SQuAD"]
    assert ticks(figures["word_probes"].axes[0]) == ["CoNLL-2003 chunking", "CoNLL-2003 NER", "CoNLL-2003 POS"]
    for figure in figures.values():
        for axis in figure.axes:
            assert not any(label.startswith("value") for label in ticks(axis))


def test_bar_heights_are_the_results(results):
    axis = claim_figures(results)["classification"].axes[0]
    heights = sorted(round(patch.get_height(), 4) for patch in axis.patches)
    expected = sorted(
        round(m["parts"]["sentence"]["result"]["classification"][name]["accuracy"], 4)
        for m in results["models"]
        for name in ("banking77", "sst2")
    )
    assert heights == expected


def test_models_without_numbers_get_no_legend_entry_and_keep_their_colour(results):
    figures = claim_figures(results)
    labels = [m["label"] for m in results["models"]]
    assert legend(figures["sts"].axes[0]) == labels  # all four embed sentences
    assert "all-MiniLM-L6-v2" not in legend(figures["knowledge"].axes[0])  # an encoder: no LAMA bars
    colour = {}
    for name in ("sts", "knowledge", "word_probes"):
        axis = figures[name].axes[0]
        for handle, text in zip(axis.get_legend().legend_handles, legend(axis)):
            colour.setdefault(text, handle.get_facecolor())
            assert handle.get_facecolor() == colour[text]


def test_infilling_puts_both_beside_left_with_the_papers_ratio(results):
    figure = claim_figures(results)["infilling"]
    rocstories = figure.axes[0]
    assert rocstories.get_title() == "ROCStories"
    lm_models = [m for m in results["models"] if m["parts"]["infilling"]["status"] == "ok"]
    assert len(rocstories.patches) == 2 * len(lm_models)  # both and left, side by side, per model
    assert REFERENCE in legend(rocstories)
    base_left = next(m for m in lm_models if m["source"] == "smollm2-135m")["parts"]["infilling"]["result"]
    level = base_left["rocstories/left"]["perplexity"] * PAPER_BOTH_OVER_BASE_LEFT
    lines = [line for line in rocstories.get_lines() if line.get_label() == REFERENCE]
    assert lines and lines[0].get_ydata()[0] == pytest.approx(level)
    assert abs(PAPER_BOTH_OVER_BASE_LEFT - 0.68) < 0.005


def test_intervals_become_error_bars(results):
    results = copy.deepcopy(results)
    cell = results["models"][0]["parts"]["sentence"]["result"]["classification"]["banking77"]
    cell["interval"] = [cell["accuracy"] - 2.0, cell["accuracy"] + 3.0]
    axis = claim_figures(results)["classification"].axes[0]
    bars = [c for c in axis.containers if isinstance(c, BarContainer) and c.errorbar is not None]
    assert len(bars) == 1  # only the cell with an interval
    segment = bars[0].errorbar.lines[2][0].get_segments()[0]
    assert [round(y, 6) for _, y in segment] == [round(cell["interval"][0], 6), round(cell["interval"][1], 6)]


def error_bars(axis):
    """(bar height, error-bar low, error-bar high) of every bar drawn with an error bar, read from the artists."""
    found = []
    for container in axis.containers:
        if isinstance(container, BarContainer) and container.errorbar is not None:
            (_, low), (_, high) = container.errorbar.lines[2][0].get_segments()[0]
            found.append((round(container.patches[0].get_height(), 6), round(low, 6), round(high, 6)))
    return sorted(found)


def test_intervals_maps_of_multi_score_results_become_error_bars(results):
    results = copy.deepcopy(results)
    parts = next(m for m in results["models"] if m["parts"]["knowledge"]["status"] == "ok")["parts"]
    word, lama = parts["word"]["result"], parts["knowledge"]["result"]
    greedy = parts["generation"]["result"]["greedy"]
    word["intervals"] = {"ner": [word["ner"] - 1.5, word["ner"] + 2.5], "pos": None}  # None: no bar drawn
    lama["intervals"] = {"trex": [lama["precision_at_1"]["trex"] - 4.0, lama["precision_at_1"]["trex"] + 1.0]}
    greedy["intervals"] = {"rep-4": [greedy["rep-4"] - 0.01, greedy["rep-4"] + 0.02], "rep-2": [0.0, 1.0]}
    figures = claim_figures(results)

    def expected(value, interval):
        return [(round(value, 6), round(interval[0], 6), round(interval[1], 6))]

    assert error_bars(figures["word_probes"].axes[0]) == expected(word["ner"], word["intervals"]["ner"])
    knowledge = expected(lama["precision_at_1"]["trex"], lama["intervals"]["trex"])
    assert error_bars(figures["knowledge"].axes[0]) == knowledge
    repetition = expected(greedy["rep-4"], greedy["intervals"]["rep-4"])  # rep-2 has no bar in this figure
    assert error_bars(figures["repetition"].axes[0]) == repetition


def test_write_plots_replaces_stale_files(results, tmp_path):
    (tmp_path / "plot_00_old.png").write_bytes(b"x")
    written = write_plots(results, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("plot_*.png")) == sorted(p.name for p in written)
    assert tmp_path / "plot_infilling.png" in written


def test_loss_curves_draw_a_smoothed_line_over_the_raw_points(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    assert smoothed([4.0]) == [4.0]  # bias-corrected: starts at the data
    values = [4.0, 2.0, 3.0]
    manual, average = [], 0.0  # independent EMA with TensorBoard's debiasing, weight 0.6
    for count, value in enumerate(values, start=1):
        average = 0.6 * average + 0.4 * value
        manual.append(average / (1 - 0.6**count))
    assert smoothed(values) == pytest.approx(manual)
    captured = []
    monkeypatch.setattr(plt, "close", lambda figure: captured.append(figure))
    history = [{"step": s, "mntp": v, "msg": v / 2} for s, v in zip((1, 2, 3), values)]
    plot_loss_curves(history, tmp_path / "curves.png")
    axis = captured[0].axes[0]
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["MNTP (smoothed)", "MSG (smoothed)"]
    raw = [line for line in axis.get_lines() if line.get_linestyle() == "None"]
    assert [list(line.get_ydata()) for line in raw] == [values, [v / 2 for v in values]]
    assert all(line.get_alpha() < 1 for line in raw)
