"""Paired comparisons of models on the same examples (per_example.json), with synthetic models."""

import json

import numpy as np
import pytest

from magnet_st.evaluation.bootstrap import paired_interval, per_example_record
from magnet_st.evaluation.compare import (
    compare_models,
    comparison_markdown,
    load_per_example,
    save_per_example,
    write_comparison,
)

FACTS = [f"fact {i}" for i in range(600)]


def _hits(rate: float, seed: int) -> dict:
    hits = np.random.default_rng(seed).random(len(FACTS)) < rate
    return per_example_record("mean", FACTS, scale=100, value=hits)


def _perplexity(logprob_per_token: float, seed: int, keys=tuple(range(400))) -> dict:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(5, 20, len(keys))
    logprob = tokens * (logprob_per_token + rng.normal(0, 0.3, len(keys)))
    return per_example_record("perplexity", list(keys), logprob=logprob, tokens=tokens)


def test_a_model_compared_with_itself_differs_by_zero_and_not_significantly():
    record = _hits(0.3, seed=0)
    row = paired_interval(record, record)
    assert row["difference"] == 0.0 and row["interval"] == [0.0, 0.0]
    assert not row["significant"]


def test_a_clearly_better_model_is_significant_and_a_tiny_change_is_not():
    base = _hits(0.3, seed=0)
    better = paired_interval(_hits(0.6, seed=1), base)
    assert better["significant"] and better["interval"][0] > 0
    assert better["difference"] == pytest.approx(better["first"] - better["second"])
    values = list(base["values"]["value"])
    values[0] = 1.0 - values[0]  # one fact flipped
    nudged = per_example_record("mean", FACTS, scale=100, value=values)
    assert not paired_interval(nudged, base)["significant"]


def test_pairing_makes_a_small_consistent_gain_significant():
    rng = np.random.default_rng(0)
    gold = rng.normal(size=800)
    noise = rng.normal(size=800)
    worse = per_example_record("spearman", list(range(800)), scale=100, predicted=gold + noise, gold=gold)
    better = per_example_record("spearman", list(range(800)), scale=100, predicted=gold + 0.9 * noise, gold=gold)
    row = paired_interval(better, worse)
    assert row["significant"] and 0 < row["interval"][0] < row["difference"]


def test_comparing_models_evaluated_on_different_examples_is_refused():
    other = per_example_record("mean", [f"other {i}" for i in range(600)], scale=100, value=[1.0] * 600)
    with pytest.raises(ValueError, match="different examples"):
        paired_interval(_hits(0.3, seed=0), other)
    models = {"base": {"knowledge/micro": _hits(0.3, 0)}, "magnet": {"knowledge/micro": other}}
    with pytest.raises(ValueError, match="different examples"):
        compare_models(models)


def test_infilling_ratios_over_the_reference_and_the_model_own_left_context():
    key = "infilling/rocstories/{}/perplexity"
    base = {key.format("both"): _perplexity(-3.0, 0), key.format("left"): _perplexity(-3.0, 1)}
    magnet = {key.format("both"): _perplexity(-2.4, 2), key.format("left"): _perplexity(-3.1, 3)}
    comparison = compare_models({"base": base, "magnet": magnet}, reference="base")
    rows = {(row["model"], row["over"]): row for row in comparison["infilling"]}
    over_base = rows[("magnet", "base left")]
    assert over_base["ratio"] == pytest.approx(over_base["first"] / over_base["second"])
    assert over_base["ratio"] < 0.68 and over_base["significant"] and over_base["interval"][1] < 1
    assert rows[("magnet", "magnet left")]["ratio"] < 1
    assert ("base", "base left") in rows  # the reference's own ratio too
    differences = {row["score"]: row for row in comparison["differences"]}
    assert differences[key.format("both")]["difference"] < 0  # lower perplexity


def test_per_example_files_round_trip_and_the_markdown_says_which_differences_are_significant(tmp_path):
    (tmp_path / "run").mkdir()
    save_per_example(tmp_path / "run", "base", {"knowledge/micro": _hits(0.3, 0)})
    save_per_example(tmp_path / "run", "magnet", {"knowledge/micro": _hits(0.6, 1)})
    save_per_example(
        tmp_path / "run", "base", {"word/ner": per_example_record("f1", [1, 2], tp=[1, 2], fp=[0, 1], fn=[1, 0])}
    )
    models = load_per_example([tmp_path / "run"])
    assert sorted(models["base"]) == ["knowledge/micro", "word/ner"]  # a later save keeps earlier scores
    comparison = write_comparison([tmp_path / "run"], tmp_path / "out", reference="base")
    assert json.loads((tmp_path / "out" / "comparison.json").read_text()) == comparison
    markdown = (tmp_path / "out" / "comparison.md").read_text()
    assert markdown == comparison_markdown(comparison)
    assert "| magnet | base | knowledge/micro |" in markdown and "| yes |" in markdown
    with pytest.raises(FileNotFoundError, match="per_example.json"):
        load_per_example([tmp_path / "missing"])
    with pytest.raises(ValueError, match="`reference` must be one of"):
        compare_models(models, reference="nobody")


@pytest.mark.parametrize("other", ["own", "previous"])
def test_a_models_other_word_reading_is_set_against_the_reference_headline(other):
    # The base's headline "word/ner" is its best reading, and its weak one is kept as "word/ner/previous".
    # The model's other reading is compared with the base's headline: with "own" it has no twin in the base;
    # with "previous" (both chose their own tokens on validation) it has one, the base's weak reading, which
    # must not be used.
    base_ner, model_headline, model_other = _hits(0.3, seed=0), _hits(0.3, seed=1), _hits(0.6, seed=2)
    models = {
        "base": {"word/ner": base_ner, "word/ner/previous": _hits(0.1, seed=3)},
        "magnet": {"word/ner": model_headline, f"word/ner/{other}": model_other},
    }
    rows = {row["score"]: row for row in compare_models(models, "base")["differences"]}
    key = f"word/ner/{other}"
    assert set(rows) == {"word/ner", key}
    assert rows[key]["reference_score"] == "word/ner"
    assert rows[key]["second"] == pytest.approx(paired_interval(model_other, base_ner)["second"])
    assert rows[key]["significant"] and rows[key]["difference"] > 20
    assert f"| {key} vs word/ner |" in comparison_markdown(compare_models(models, "base"))
