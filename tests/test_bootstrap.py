"""Bootstrap intervals and per-example statistics, against independent references (scipy, seqeval, hand sums)."""

import math

import numpy as np
import pytest
from scipy.stats import norm, spearmanr
from seqeval.metrics import accuracy_score, f1_score

from magnet_st.evaluation.bootstrap import (
    METRICS,
    bootstrap_interval,
    per_example_record,
    record_interval,
    record_score,
)
from magnet_st.evaluation.generation import repetition_records
from magnet_st.evaluation.knowledge import lama_records, lama_scores
from magnet_st.evaluation.repetition import rep_n, rep_sen
from magnet_st.evaluation.word_level import sentence_record


def test_interval_of_a_mean_of_normal_samples_matches_the_analytic_interval():
    values = np.random.default_rng(3).normal(10.0, 2.0, size=2000)
    half_width = norm.ppf(0.975) * values.std(ddof=1) / math.sqrt(len(values))
    low, high = bootstrap_interval(METRICS["mean"].statistic, values)
    assert low == pytest.approx(values.mean() - half_width, abs=0.15 * half_width)
    assert high == pytest.approx(values.mean() + half_width, abs=0.15 * half_width)


def test_interval_is_reproducible_and_none_under_two_examples():
    values = np.random.default_rng(0).normal(size=50)
    assert bootstrap_interval(METRICS["mean"].statistic, values) == bootstrap_interval(
        METRICS["mean"].statistic, values
    )
    assert bootstrap_interval(METRICS["mean"].statistic, [1.0]) is None


def _sts_record(pairs: int, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.normal(size=pairs)
    predicted = gold + rng.normal(size=pairs)
    return (
        per_example_record("spearman", list(range(pairs)), scale=100, predicted=predicted, gold=gold),
        predicted,
        gold,
    )


def test_spearman_score_matches_scipy_and_its_interval_narrows_with_more_pairs():
    small, predicted, gold = _sts_record(150)
    assert record_score(small) == pytest.approx(100 * spearmanr(predicted, gold).statistic)
    large, _, _ = _sts_record(3000)
    small_interval, large_interval = record_interval(small), record_interval(large)
    assert small_interval[0] < record_score(small) < small_interval[1]
    assert large_interval[1] - large_interval[0] < 0.5 * (small_interval[1] - small_interval[0])


def test_perplexity_statistic_on_a_resample_equals_a_hand_computation():
    logprob, tokens = np.array([-10.0, -3.0, -7.5, -20.0]), np.array([4.0, 2.0, 3.0, 5.0])
    resample = [2, 0, 2, 3]
    expected = math.exp(-(-7.5 - 10.0 - 7.5 - 20.0) / (3 + 4 + 3 + 5))
    assert METRICS["perplexity"].statistic(logprob[resample], tokens[resample]) == pytest.approx(expected)
    batch = METRICS["perplexity"].statistic(
        np.stack([logprob, logprob[resample]]), np.stack([tokens, tokens[resample]])
    )
    assert batch[1] == pytest.approx(expected)  # vectorised over resamples


def test_per_sentence_entity_counts_give_seqeval_f1_and_word_accuracy():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O"], ["B-MISC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "I-ORG"], ["O", "O"]]
    keys = [" ".join(tags) for tags in gold]
    assert record_score(sentence_record(gold, predicted, "IOB2", keys)) == pytest.approx(
        100 * f1_score(gold, predicted)
    )
    accuracy = sentence_record(gold, predicted, "none", keys)
    assert record_score(accuracy) == pytest.approx(100 * accuracy_score(gold, predicted))


def test_lama_records_reproduce_micro_and_macro_precision():
    facts = [
        {"source": "trex", "relation": relation, "prompt": f"p{i}", "label": "Paris"}
        for i, relation in enumerate(["P19"] * 3 + ["P20"] * 5)
    ] + [{"source": "squad", "relation": "squad", "prompt": "q", "label": "x"}]
    continuations = ["Paris", "Rome", "Paris", "Paris", "Paris", "Paris", "Lyon", "Lyon", "x y"]
    scores, records = lama_scores(facts, continuations), lama_records(facts, continuations)
    assert record_score(records["micro"]) == pytest.approx(scores["micro_precision_at_1"])
    assert record_score(records["trex"]) == pytest.approx(scores["precision_at_1"]["trex"])  # macro over relations
    assert record_score(records["trex"]) != pytest.approx(100 * 5 / 8)  # not the micro share


def test_repetition_records_average_like_rep_n_and_rep_sen():
    tokens = [[1, 2, 1, 2, 1, 2], [5], [3, 4, 5, 6, 3, 4, 5, 6]]
    texts = ["A b. A b. C d.", "", "One. Two."]
    records = repetition_records(["p1", "p2", "p3"], tokens, texts)
    for n in (2, 3, 4):
        assert record_score(records[f"rep-{n}"]) == pytest.approx(rep_n(tokens, n))
    assert record_score(records["rep-sen"]) == pytest.approx(rep_sen(texts))


def test_a_record_refuses_missing_fields_and_ragged_columns():
    with pytest.raises(ValueError, match="needs the fields"):
        per_example_record("perplexity", [1, 2], logprob=[-1.0, -2.0])
    with pytest.raises(ValueError, match="one entry per example"):
        per_example_record("mean", [1, 2, 3], value=[1.0, 0.0])
    with pytest.raises(ValueError, match="`metric` must be one of"):
        per_example_record("median", [1], value=[1.0])


def test_infilling_keeps_per_sentence_statistics_that_give_its_perplexity(tiny_model):
    from magnet_st.data.wikipedia import wikipedia_examples
    from magnet_st.evaluation.infilling import evaluate_infilling, wikipedia_groups

    tokenizer = tiny_model.decoder.tokenizer
    groups = wikipedia_groups(tokenizer, None, 6, 0, 2)
    assert [group[0] for group in groups] == wikipedia_examples(tokenizer, None, 3, 0)
    assert [group[1] for group in groups] == wikipedia_examples(tokenizer, None, 3, 1)
    result = evaluate_infilling(tiny_model, dataset="wikipedia", limit=6, spans_per_sentence=2, auto_length_limit=0)
    record = result["per_example"]["perplexity"]
    assert result["examples"] == 6 and record["examples"] == 3  # two spans per sentence, resampled together
    assert record_score(record) == pytest.approx(result["perplexity"], rel=1e-9)
    assert sum(record["values"]["tokens"]) == result["span_tokens"]
    assert result["interval"][0] <= result["perplexity"] <= result["interval"][1]


def test_sts_interval_comes_from_mteb_per_pair_similarities(tiny_model, tmp_path, monkeypatch):
    from magnet_st.evaluation.sentence import evaluate_sentence

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = evaluate_sentence(tiny_model, sts_limit=40, classification=())
    record = result["per_example"]["stsb"]
    assert record["examples"] == 40
    assert record_score(record) == pytest.approx(result["sts"]["stsb"]["spearman"], abs=1e-6)
    low, high = result["sts"]["stsb"]["interval"]
    assert low < result["sts"]["stsb"]["spearman"] < high
