"""Typed part results: today's results.json reads and writes back unchanged, and renders the committed table."""

import json
from pathlib import Path

import pytest

from magnet_st.evaluation import suite as suite_module
from magnet_st.evaluation.parts import EVALUATION_PARTS, PARTS, check_data_files
from magnet_st.evaluation.report import part_result, write_markdown
from magnet_st.evaluation.results import GenerationResult, InfillingResult, PartOutcome, SentenceResult
from magnet_st.evaluation.suite import SuiteConfig, run_suite

PAPER = Path(__file__).resolve().parents[1] / "evaluation" / "results" / "paper"


@pytest.fixture(scope="module")
def paper_results():
    return json.loads((PAPER / "results.json").read_text(encoding="utf-8"))


def test_paper_results_round_trip_through_the_typed_results(paper_results):
    types = {part.name: part.result_type for part in EVALUATION_PARTS}
    for model in paper_results["models"]:
        for name, entry in model["parts"].items():
            assert PartOutcome.from_dict(entry, types[name]).to_dict() == entry


def test_paper_results_fields_hold_the_stored_numbers(paper_results):
    magnet = paper_results["models"][0]
    sentence = part_result(magnet, "sentence")
    assert isinstance(sentence, SentenceResult)
    assert sentence.sts["stsb"].spearman == magnet["parts"]["sentence"]["result"]["sts"]["stsb"]["spearman"]
    generation = part_result(magnet, "generation")
    assert isinstance(generation, GenerationResult)
    assert generation.nucleus.rep_4 == magnet["parts"]["generation"]["result"]["nucleus"]["rep-4"]
    infilling = part_result(magnet, "infilling")
    assert isinstance(infilling, InfillingResult)
    stored = magnet["parts"]["infilling"]["result"]["wikipedia/both"]["auto_length"]["mean_abs_error"]
    assert infilling.score("wikipedia", "both").auto_length.mean_abs_error == stored
    assert infilling.score("wikipedia", "left").auto_length is None
    assert part_result(paper_results["models"][3], "word") is None  # MiniLM: n/a


def test_paper_results_render_the_committed_table(paper_results, tmp_path):
    written = write_markdown(paper_results, tmp_path / "results.md").read_text(encoding="utf-8")
    assert written == (PAPER / "results.md").read_text(encoding="utf-8")


def test_registry_declares_every_part_with_its_data_files(tmp_path):
    assert PARTS == ("sentence", "word", "infilling", "generation", "knowledge")
    for part in EVALUATION_PARTS:
        assert part.data_files, part.name
        assert part.load_function() is not None, part.name
    (tmp_path / "lama").mkdir()
    with pytest.raises(FileNotFoundError, match="relations.jsonl"):
        check_data_files(["knowledge"], tmp_path)
    with pytest.raises(FileNotFoundError, match="rocstories_sample_11k"):
        check_data_files(["infilling"], tmp_path)


def test_suite_checks_every_data_file_before_the_first_part_runs(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "stsbenchmark").mkdir(parents=True)
    (data / "stsbenchmark" / "sts-test.csv").write_text("", encoding="utf-8")

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the data files were checked")

    monkeypatch.setattr(suite_module, "load_spec", no_model)
    config = SuiteConfig(models=["tiny"], parts=["sentence", "knowledge"], data_dir=str(data), out_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="banking77"):
        run_suite(config)
    # A plain encoder runs no LM part, so the LAMA files are not checked for it.
    config = SuiteConfig(models=["minilm"], parts=["knowledge"], data_dir=str(data), out_dir=str(tmp_path))
    with pytest.raises(AssertionError, match="a model was loaded"):
        run_suite(config)
