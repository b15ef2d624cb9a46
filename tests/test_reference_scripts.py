"""The reference run's scripts (evaluation/reference): the checkpoint choice and the run's overrides."""

import math

import pytest

pytestmark = pytest.mark.usefixtures("reference_scripts_on_path")


@pytest.fixture
def reference_scripts_on_path(monkeypatch, request):
    monkeypatch.syspath_prepend(str(request.config.rootpath / "evaluation" / "reference"))


def row(sts: float, both: float) -> dict:
    return {"stsb_dev": sts, "cloze_both_ppl": both}


def test_selection_takes_the_best_infiller_among_the_steps_near_the_best_embedder():
    from selection import choose

    rows = {"40": row(70.0, 30.0), "80": row(80.0, 25.0), "160": row(79.5, 22.0), "320": row(78.0, 20.0)}
    assert choose(rows, sts_margin=1.0) == "160"  # 320 infills best but gives up 2 STS points
    assert choose(rows, sts_margin=3.0) == "320"
    assert choose(rows, sts_margin=0.0) == "80"


def test_run_refuses_a_learning_rate_that_is_not_positive(capsys, tmp_path, monkeypatch):
    from run import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--learning-rate", "0"])
    assert "`learning_rate` must be > 0, got 0.0" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before the work folder or its corpus is made


def test_run_refuses_a_sentence_span_rate_that_is_no_probability(capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--sentence-span-rate", "1.5"])
    assert "`sentence_span_rate` must be a probability in [0, 1], got 1.5" in capsys.readouterr().err


def test_run_refuses_a_time_budget_that_is_not_positive(capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--time-budget", "-1"])
    assert "--time-budget must be a positive number of minutes, got -1.0" in capsys.readouterr().err


def test_versus_pairs_every_metric_both_runs_measured():
    from curve import versus

    from magnet_st.evaluation.bootstrap import per_example_record

    keys = [f"k{i}" for i in range(6)]
    mine = {
        "lama_p1": per_example_record("mean", keys, value=[1, 1, 1, 0, 1, 1]),
        "wiki_left_ppl": per_example_record("perplexity", keys, logprob=[-2.0] * 6, tokens=[1] * 6),
    }
    theirs = {
        "lama_p1": per_example_record("mean", keys, value=[1, 0, 1, 0, 0, 1]),
        "wiki_left_ppl": per_example_record("perplexity", keys, logprob=[-1.0] * 6, tokens=[1] * 6),
        "only_there": per_example_record("mean", keys, value=[0] * 6),
    }
    rows = versus({"300": mine}, "300", {"160": theirs}, "160", "gpu vs cpu")
    # A metric one run lacks is skipped; perplexities compare as a ratio, scores as a difference.
    assert [row["claim"] for row in rows] == ["lama_p1: gpu vs cpu", "wiki_left_ppl: gpu vs cpu"]
    assert rows[0]["difference"] == pytest.approx(5 / 6 - 3 / 6)
    assert rows[1]["ratio"] == pytest.approx(math.exp(2.0) / math.exp(1.0))


def test_run_refuses_snapshot_steps_that_are_no_checkpoint(capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(["--profile", "gpu", "--snapshot-steps", "100", "150"])
    assert "--snapshot-steps [150] are not checkpoint steps: the gpu profile saves every 100 steps" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("profile", ["gpu", "cpu", "tiny"])
def test_every_profile_makes_a_training_config_and_keeps_checkpointed_snapshots(profile, tmp_path):
    import json

    from run import CONFIG, training_config

    settings = json.loads(CONFIG.read_text())
    config = training_config(settings, profile, tmp_path)  # run-only keys (budget, snapshots) stay out
    assert config.max_steps == settings["profiles"][profile]["max_steps"]
    assert all(step % config.save_steps == 0 for step in settings["profiles"][profile]["snapshot_steps"])
    assert (config.sentence_span_rate, config.dropout_scope) == (None, "contrastive")  # the recipe's own
    assert not config.return_freed_memory
    arm = {**settings, "sentence_span_rate": 0.0, "dropout_scope": "all", "return_freed_memory": True}
    arm = training_config(arm, profile, tmp_path)
    assert (arm.sentence_span_rate, arm.dropout_scope, arm.return_freed_memory) == (0.0, "all", True)


def test_curve_versus_names_a_missing_file_or_step_before_measuring(tmp_path, capsys):
    import json

    from curve import main

    out = ["--no-base", "--out", str(tmp_path / "c.json"), "--examples", str(tmp_path / "e.json")]
    with pytest.raises(SystemExit):
        main([*out, "--versus", "300", str(tmp_path / "missing.json"), "160"])
    assert "--versus: no examples file" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"0": {}, "160": {}}))
    with pytest.raises(SystemExit):
        main([*out, "--versus", "300", str(other), "320"])
    assert "has no step '320' (it has ['0', '160'])" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*out, "--versus", "300", str(other), "160"])  # nothing measured here: no step 300
    assert "--versus: step '300' is not measured here (measured: [])" in capsys.readouterr().err


def test_run_refuses_a_step_count_that_is_not_positive_and_an_unknown_recipe(capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--max-steps", "0"])
    assert "`max_steps` must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--recipe", "simcse"])
    assert "invalid choice: 'simcse'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--profile", "tiny", "--seed", "-3"])
    assert "`seed` must be an integer in [0, 2**32), got -3" in capsys.readouterr().err


def test_run_trains_a_baseline_recipe_arm_for_the_steps_asked(tiny_decoder_dir, tmp_path):
    import json

    from run import main

    from magnet_st.pretrained import model_from_adapter

    work = tmp_path / "llm2vec"
    work.mkdir()
    sentences = [f"Sentence number {i} talks about the river, the town and the old bridge." for i in range(40)]
    (work / "corpus.txt").write_text("\n".join(sentences) + "\n")  # present: the corpus builder is not run
    arguments = ["--profile", "tiny", "--base", tiny_decoder_dir, "--work", str(work), "--recipe", "llm2vec"]
    assert main([*arguments, "--max-steps", "4", "--snapshot-steps", "2", "--seed", "7"]) == 0
    log = json.loads((work / "adapters" / "final" / "training_log.json").read_text())
    assert log["config"]["recipe"] == "llm2vec" and log["config"]["max_steps"] == 4
    assert log["config"]["seed"] == 7  # a second draw of a run differs only by its seed
    # Step 4 is no snapshot step; as the run's last step it is kept for the curve all the same.
    assert sorted(p.name for p in (work / "adapters").iterdir()) == ["final", "step-2", "step-4"]
    # Each kept adapter says what trained it, so that one picked from a curve ships with its config.
    for name, step in (("step-2", 2), ("step-4", 4), ("final", 4)):
        record = json.loads((work / "adapters" / name / "snapshot.json").read_text())
        assert (record["step"], record["precision"]) == (step, log["precision"])
        assert (record["config"]["recipe"], record["config"]["seed"], record["config"]["max_steps"]) == (
            "llm2vec",
            7,
            4,
        )
    model = model_from_adapter(tiny_decoder_dir, work / "adapters" / "final", pooling="mean")
    assert model.encode(["The old bridge."]).shape == (1, model.get_embedding_dimension())


def test_ship_stores_the_adapter_in_bf16_over_the_embedded_base_with_its_log_cut_at_its_step(tmp_path, monkeypatch):
    import json

    import torch
    from safetensors.torch import load_file, save_file
    from ship import main

    from magnet_st import pretrained

    adapter = tmp_path / "run" / "adapters" / "step-160"
    adapter.mkdir(parents=True)
    weight = torch.randn(4, 8)
    save_file({"lora_A.weight": weight}, str(adapter / pretrained.ADAPTER_FILE))
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/somewhere/base", "r": 4}))
    checkpoint = tmp_path / "run" / "checkpoint-180"
    checkpoint.mkdir()
    history = [{"step": step, "loss": 1.0 / step} for step in (5, 155, 160, 165, 180)]
    (checkpoint / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    target = tmp_path / "shipped"
    spec = pretrained.PretrainedModel("magnet-test", "smollm2-135m", "test", folder=target)
    monkeypatch.setitem(pretrained.PRETRAINED_MODELS, "magnet-test", spec)

    run_config = {"recipe": "magnet", "seed": 42, "data": "/home/me/ref/corpus.txt", "output_dir": "/home/me/ref/model"}
    (adapter / "snapshot.json").write_text(json.dumps({"step": 160, "precision": "fp32", "config": run_config}))
    command = "run.py --profile cpu --sentence-span-rate 0"
    main([str(adapter), "--trainer-state", str(checkpoint), "--name", "magnet-test", "--command", command])

    stored = load_file(str(target / pretrained.ADAPTER_FILE))["lora_A.weight"]
    assert stored.dtype == torch.bfloat16 and torch.equal(stored, weight.to(torch.bfloat16))
    assert json.loads((target / "adapter_config.json").read_text()) == {
        "base_model_name_or_path": "smollm2-135m",
        "r": 4,
    }
    log = json.loads((target / "training_log.json").read_text())
    assert (log["steps"], log["command"]) == (160, command)
    # The snapshot's record, as run.py kept it, without the training machine's paths.
    shipped_config = {**run_config, "data": "WORK/corpus.txt", "output_dir": "WORK/model"}
    assert (log["config"], log["precision"]) == (shipped_config, "fp32")
    assert [entry["step"] for entry in log["log_history"]] == [5, 155, 160]
