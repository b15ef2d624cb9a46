"""Sentence-level evaluation: STS readers, mteb tasks on local data, hand-checked metrics."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from magnet_st.data.classification import read_sst2
from magnet_st.data.sts import read_sick, read_sts_file, read_stsb
from magnet_st.encoding_variants import encoding_variant
from magnet_st.evaluation.bootstrap import record_score
from magnet_st.evaluation.mteb_tasks import local_sts_task, run_mteb
from magnet_st.evaluation.sentence import evaluate_sentence, sts_pairs_record, subsample

PAIRS = {
    "sentence1": ["A man plays a guitar.", "A dog runs.", "The sky is blue.", "Kids eat lunch.", "A cat sleeps."],
    "sentence2": ["A man plays music.", "A car drives.", "It is raining.", "Children have lunch.", "A kitten naps."],
    "score": [4.0, 0.5, 1.0, 4.8, 4.5],
}


@pytest.fixture(autouse=True)
def _scratch_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def test_stsb_reader_takes_columns_5_to_7_and_keeps_rows_with_extra_columns(tmp_path):
    path = tmp_path / "sts-test.csv"
    path.write_text(
        'main-captions\tMSRvid\t2012test\t0001\t5.000\tA "girl" is styling her hair.\tA girl is brushing her hair.\n'
        "main-news\theadlines\t2016\t0002\t0.500\tOne.\tTwo.\textra source\tmore\n",
        encoding="utf-8",
    )
    pairs = read_stsb(path)
    assert pairs["sentence1"] == ['A "girl" is styling her hair.', "One."]  # QUOTE_NONE keeps the quotes
    assert pairs["sentence2"] == ["A girl is brushing her hair.", "Two."]
    assert pairs["score"] == [5.0, 0.5]


def test_sick_reader_keeps_only_test_rows_when_the_set_column_exists(tmp_path):
    path = tmp_path / "SICK.txt"
    path.write_text(
        "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\tSemEval_set\n"
        "1\tA boy runs.\tA kid runs.\tENTAILMENT\t4.5\tTRAIN\n"
        "2\tA man cooks.\tA woman sings.\tNEUTRAL\t1.2\tTEST\n",
        encoding="utf-8",
    )
    assert read_sick(path) == {"sentence1": ["A man cooks."], "sentence2": ["A woman sings."], "score": [1.2]}
    assert read_sts_file(path)["score"] == [1.2]  # layout recognised from the header


def test_senteval_reader_pairs_input_with_gold_and_skips_empty_scores(tmp_path):
    (tmp_path / "STS.input.MSRpar.txt").write_text("a b\tc d\ne f\tg h\ni j\tk l\n", encoding="utf-8")
    (tmp_path / "STS.gs.MSRpar.txt").write_text("3.2\n\n1.0\n", encoding="utf-8")
    pairs = read_sts_file(tmp_path / "STS.input.MSRpar.txt")
    assert pairs == {"sentence1": ["a b", "i j"], "sentence2": ["c d", "k l"], "score": [3.2, 1.0]}


def test_senteval_reader_names_a_missing_gold_file(tmp_path):
    (tmp_path / "STS.input.OnWN.txt").write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="STS.gs.OnWN.txt"):
        read_sts_file(tmp_path / "STS.input.OnWN.txt")


def test_plain_tsv_and_jsonl_readers(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("sentence1\tsentence2\tscore\nx y\tz w\t0.25\n", encoding="utf-8")
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"sentence1": "x y", "sentence2": "z w", "score": 0.25}\n', encoding="utf-8")
    expected = {"sentence1": ["x y"], "sentence2": ["z w"], "score": [0.25]}
    assert read_sts_file(tsv) == expected
    assert read_sts_file(jsonl) == expected


def test_unknown_layout_and_bad_score_give_clear_errors(tmp_path):
    odd = tmp_path / "odd.tsv"
    odd.write_text("only\ttwo\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Cannot tell the layout"):
        read_sts_file(odd)
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence1\tsentence2\tscore\na\tb\thigh\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'high' is not a number"):
        read_sts_file(bad)


def test_subsample_is_seeded_and_ordered():
    columns = {"x": list(range(100))}
    first, again = subsample(columns, 10, seed=3), subsample(columns, 10, seed=3)
    assert first == again and first["x"] == sorted(first["x"]) and len(first["x"]) == 10
    assert subsample(columns, 10, seed=4) != first
    assert subsample(columns, None, seed=0) is columns


def test_mteb_sts_score_matches_hand_computed_spearman(tiny_model, tmp_path):
    # mteb's main score is the Spearman of cosine similarities against the gold scores; the prompt the
    # model applies by default must be the one used.
    scored = run_mteb(tiny_model, [local_sts_task("HandSTS", PAIRS)], output_folder=tmp_path / "mteb")
    first = tiny_model.encode(PAIRS["sentence1"], convert_to_numpy=True)
    second = tiny_model.encode(PAIRS["sentence2"], convert_to_numpy=True)
    cosine = (first * second).sum(1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1))
    expected = spearmanr(PAIRS["score"], cosine)[0]
    assert scored["HandSTS"].get_score() == pytest.approx(expected, abs=1e-6)
    assert (tmp_path / "mteb" / "HandSTS.json").is_file()  # mteb's own result file


def test_encoding_variant_changes_embeddings_and_restores_the_model(tiny_model):
    before = tiny_model.encode(["A short sentence."], convert_to_numpy=True)
    with encoding_variant(tiny_model, "causal", "mean") as model:
        assert model.decoder.attention_mode == "causal"
        assert model[1].pooling_mode == "mean"
        during = model.encode(["A short sentence."], convert_to_numpy=True)
    after = tiny_model.encode(["A short sentence."], convert_to_numpy=True)
    assert not np.allclose(before, during)
    np.testing.assert_allclose(before, after, atol=1e-6)
    assert tiny_model.decoder.attention_mode == "bidirectional" and tiny_model[1].pooling_mode == "lasttoken"


def test_evaluate_sentence_on_local_data_and_extra_files(tiny_model, tmp_path):
    extra = tmp_path / "mine.tsv"
    extra.write_text(
        "sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in zip(*PAIRS.values())),
        encoding="utf-8",
    )
    results = evaluate_sentence(
        tiny_model,
        sts_files=[extra],
        sts_limit=20,
        classification=("sst2",),
        classification_test_limit=20,
        samples_per_label=4,
        n_experiments=1,
        variants=[("causal", "mean")],
    )
    assert results["sts"]["stsb"]["pairs"] == 20 and results["sts"]["mine"]["pairs"] == 5
    assert -100 <= results["sts"]["stsb"]["spearman"] <= 100
    average = (results["sts"]["stsb"]["spearman"] + results["sts"]["mine"]["spearman"]) / 2
    assert results["sts_average"] == pytest.approx(average)
    assert 0 <= results["classification"]["sst2"]["accuracy"] <= 100
    assert set(results["variants"]["causal/mean"]) == {"stsb", "mine"}
    assert results["encoding"]["prompt"] == "Given the sentence, find its representation: "


def test_missing_data_file_is_named(tiny_model, tmp_path):
    (tmp_path / "stsbenchmark").mkdir()
    with pytest.raises(FileNotFoundError, match="sts-test.csv"):
        evaluate_sentence(tiny_model, tmp_path, classification=())
    with pytest.raises(FileNotFoundError, match="sentiment-train"):
        read_sst2(tmp_path, "train")


def test_unknown_task_names_are_rejected(tiny_model):
    with pytest.raises(ValueError, match="`classification` names"):
        evaluate_sentence(tiny_model, sts=(), classification=("imdb",))


def test_encoding_variant_refuses_hybrid_and_leaves_the_model_as_it_was(tiny_model):
    with pytest.raises(ValueError, match="`attention_mode` .*got 'hybrid'"):
        with encoding_variant(tiny_model, "hybrid", "mean"):
            pass
    assert tiny_model.decoder.attention_mode == "bidirectional" and tiny_model[1].pooling_mode == "lasttoken"


def test_sts_pairs_record_scores_the_spearman_of_cosine_similarities(tiny_model):
    pairs = {
        "sentence1": ["a cat sat", "the sun is hot", "dogs bark loudly", "rain falls", "I like tea"],
        "sentence2": ["a cat sits", "it is cold", "a dog barks", "the sky is blue", "tea is nice"],
        "score": [4.8, 0.5, 4.0, 1.0, 3.0],
    }
    record = sts_pairs_record(tiny_model, pairs)
    first, second = (tiny_model.encode(pairs[key]) for key in ("sentence1", "sentence2"))
    cosine = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    assert record["examples"] == 5
    assert record_score(record) == pytest.approx(100 * spearmanr(cosine, pairs["score"]).statistic)
    np.testing.assert_allclose(record["values"]["predicted"], cosine, rtol=1e-5, atol=1e-6)
