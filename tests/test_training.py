"""Training through sentence-transformers' trainer: recipes, output format, resume, bad input, 2 processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import TrainerCallback

import magnet_st
from magnet_st.training import RECIPES, TrainConfig, build_trainer, get_recipe, train

TEXTS = [
    "The river flows through the old town and into the sea.",
    "She opened the window to let the morning air in.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The committee approved the budget after a long debate.",
    "He learned to play the violin when he was seven years old.",
    "The museum displays paintings from the nineteenth century.",
    "Heavy rain caused flooding in several coastal villages.",
    "The company announced record profits for the third quarter.",
] * 4


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("data") / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return str(path)


def config(tiny_decoder_dir, data_file, output, **overrides) -> TrainConfig:
    options = dict(
        data=data_file,
        output_dir=str(output),
        base=tiny_decoder_dir,
        max_steps=4,
        batch_size=4,
        max_seq_length=32,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=2,
    )
    options.update(overrides)
    return TrainConfig(**options)


def logged(output) -> list[dict]:
    return json.loads((Path(output) / "training_log.json").read_text())["log_history"]


def test_magnet_recipe_trains_logs_each_objective_and_saves_plain_format(tiny_decoder_dir, data_file, tmp_path):
    model = train(config(tiny_decoder_dir, data_file, tmp_path / "out"))
    steps = [entry for entry in logged(tmp_path / "out") if "mntp" in entry]
    assert len(steps) == 4 and all({"mntp", "sscl", "msg"} <= set(entry) for entry in steps)
    assert not (tmp_path / "out-checkpoints").exists()  # removed after a finished run
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(tmp_path / "out"))
    np.testing.assert_allclose(plain.encode(TEXTS[:3]), model.encode(TEXTS[:3]), atol=1e-5, rtol=0)
    # The training length (32) cut the training texts only; the saved model encodes as long as the base.
    assert plain.max_seq_length == magnet_st.load_model(tiny_decoder_dir).decoder.max_seq_length > 32
    base = magnet_st.load_model(tiny_decoder_dir, max_seq_length=32)
    assert np.abs(base.encode(TEXTS[:3]) - model.encode(TEXTS[:3])).max() > 1e-4  # it learned something


def test_llm2vec_recipe_switches_from_mntp_to_simcse_with_mean_pooling(tiny_decoder_dir, data_file, tmp_path):
    model = train(config(tiny_decoder_dir, data_file, tmp_path / "l2v"))
    assert model[1].pooling_mode == "lasttoken"
    model = train(config(tiny_decoder_dir, data_file, tmp_path / "llm2vec", recipe="llm2vec"))
    assert model[1].pooling_mode == "mean"
    history = [entry for entry in logged(tmp_path / "llm2vec") if "step" in entry and "loss" in entry]
    first, last = history[0], history[-1]
    assert "mntp" in first and "sscl" not in first and "msg" not in first
    assert last["sscl"] > 0 and last.get("mntp", 0.0) == 0.0  # the trainer keeps logging a finished part as 0


def test_objectives_alone(tiny_decoder_dir, data_file, tmp_path):
    train(config(tiny_decoder_dir, data_file, tmp_path / "msg", objectives=["msg"], max_steps=2))
    assert all(set(e) & {"mntp", "sscl", "msg"} <= {"msg"} for e in logged(tmp_path / "msg"))
    assert set(RECIPES) >= {"magnet", "llm2vec", "mntp", "sscl", "msg"}


class CrashAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt("killed")


def test_killed_run_resumes_from_its_last_checkpoint_exactly(tiny_decoder_dir, data_file, tmp_path):
    straight = train(config(tiny_decoder_dir, data_file, tmp_path / "straight"))
    crashed = config(tiny_decoder_dir, data_file, tmp_path / "resumed")
    with pytest.raises(KeyboardInterrupt):
        train(crashed, callbacks=[CrashAt(3)])
    assert (tmp_path / "resumed-checkpoints" / "checkpoint-2" / "lora_adapter").is_dir()
    assert not (tmp_path / "resumed").exists()  # nothing half-written at the output
    with pytest.raises(FileExistsError, match="--resume"):
        train(crashed)
    resumed = train(config(tiny_decoder_dir, data_file, tmp_path / "resumed", resume=True))
    history = logged(tmp_path / "resumed")
    assert [e["step"] for e in history if "mntp" in e] == [1, 2, 3, 4]  # steps 1-2 came from the checkpoint
    np.testing.assert_allclose(resumed.encode(TEXTS[:3]), straight.encode(TEXTS[:3]), atol=1e-4, rtol=0)


def test_cpu_training_fuses_lora_dropout_into_lora_a(tiny_decoder_dir, data_file, tmp_path):
    from magnet_st.lora_dropout import DropoutLoraA

    def fused(trainer):
        return [m for m in trainer.model.decoder.model.modules() if isinstance(m, DropoutLoraA)]

    with_dropout = build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "a", lora_dropout=0.1))
    assert len(fused(with_dropout)) == 7 * with_dropout.model.decoder.causal_lm.config.num_hidden_layers
    assert {m.p for m in fused(with_dropout)} == {0.1}
    assert not fused(build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "b", lora_dropout=0.0)))


def test_recipe_study_arms_reach_the_loss(tiny_decoder_dir, data_file, tmp_path):
    default = build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "a")).loss
    arm = build_trainer(
        config(tiny_decoder_dir, data_file, tmp_path / "b", sentence_span_rate=0.5, dropout_scope="all")
    ).loss
    assert (default.views.sentence_span_rate, default.span_pass_dropout) == (0.0, 0.0)
    assert (arm.views.sentence_span_rate, arm.span_pass_dropout) == (0.5, 0.3)
    assert arm.views.max_spans == default.views.max_spans  # the rest of the recipe's views stays
    with pytest.raises(ValueError, match=r"`sentence_span_rate` needs a recipe whose views have spans; 'llm2vec'"):
        build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "c", recipe="llm2vec", sentence_span_rate=0.0))


def test_cli_study_arm_flags_reach_the_config(capsys):
    from magnet_st.cli import build_parser
    from magnet_st.cli.train import config_from_args

    parser = build_parser()
    command = ["train", "--data", "t.txt", "--output", "out"]
    default = config_from_args(parser.parse_args(command), "t.txt", "out")
    assert (default.sentence_span_rate, default.dropout_scope) == (None, "contrastive")
    arm = config_from_args(
        parser.parse_args([*command, "--sentence-span-rate", "0", "--dropout-scope", "all"]), "t.txt", "out"
    )
    assert (arm.sentence_span_rate, arm.dropout_scope) == (0.0, "all")
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--dropout-scope", "mntp"])
    assert "invalid choice: 'mntp'" in capsys.readouterr().err


def test_bad_training_input(tiny_decoder_dir, data_file, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="has no texts"):
        build_trainer(config(tiny_decoder_dir, str(empty), tmp_path / "a"))
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    with pytest.raises(ValueError, match="too short for a masked span view"):
        build_trainer(config(tiny_decoder_dir, str(short), tmp_path / "b"))
    with pytest.raises(ValueError, match="Unknown recipe 'simcse'"):
        get_recipe("simcse")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_trainer(config(tiny_decoder_dir, str(tmp_path / "missing.txt"), tmp_path / "c"))
    with pytest.raises(ValueError, match="`batch_size` must be at least 2"):
        build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "d", batch_size=1))
    with pytest.raises(ValueError, match="All loss weights are zero"):
        build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "e", mntp_weight=0, sscl_weight=0, msg_weight=0))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_trainer(config(tiny_decoder_dir, data_file, existing))
    assert (existing / "keep.txt").read_text() == "user data"


def test_cli_train_refuses_existing_output_in_one_line(tiny_decoder_dir, data_file, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.safetensors").write_text("x")
    command = [sys.executable, "-m", "magnet_st.cli", "train", "--data", data_file, "--output", str(tmp_path / "out")]
    result = subprocess.run(command + ["--base", tiny_decoder_dir], capture_output=True, text=True)
    assert result.returncode == 2 and "--overwrite" in result.stderr and "Traceback" not in result.stderr


DISTRIBUTED_SCRIPT = """
import json, os, sys, traceback
from pathlib import Path
import torch.distributed as dist
from magnet_st.training import TrainConfig, build_trainer
# Each process reports into its own file: two processes printing to one pipe interleave their lines.
report = Path(f"{sys.argv[2]}-rank{os.environ['RANK']}.json")
try:
    config = TrainConfig(data=sys.argv[1], output_dir=sys.argv[2], base=sys.argv[3], max_steps=2, batch_size=4,
                         max_seq_length=32, logging_steps=1, save_steps=2)
    trainer = build_trainer(config)
    trainer.train()
    assert trainer.loss.contrastive.gather_across_devices  # negatives came from both processes
    files = sorted(p.name for p in config.checkpoint_dir().joinpath("checkpoint-2").iterdir())
    report.write_text(json.dumps({"rank": dist.get_rank(), "world": dist.get_world_size(),
                                  "steps": trainer.state.global_step, "files": files}))
except BaseException:
    report.write_text(json.dumps({"error": traceback.format_exc()}))
    raise
"""


def test_two_process_run_gathers_negatives(tiny_decoder_dir, data_file, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DISTRIBUTED_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
        + [data_file, str(tmp_path / "ddp"), tiny_decoder_dir],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("ddp-rank*.json"))]
    errors = "\n".join(r["error"] for r in reports if "error" in r)
    assert result.returncode == 0 and not errors, errors or result.stderr[-6000:]
    assert sorted(r["rank"] for r in reports) == [0, 1] and all(r["world"] == 2 and r["steps"] == 2 for r in reports)
    files = set(reports[0]["files"])  # the checkpoint, staged and renamed, holds the model and both RNG states
    assert {"modules.json", "rng_state_0.pth", "rng_state_1.pth", "trainer_state.json"} <= files


def test_loss_curves_drop_objectives_a_stage_switched_off(tmp_path):
    from magnet_st.training import loss_curves, plot_loss_curves

    history = [
        {"step": 1, "loss": 9.0, "mntp": 9.0},
        {"step": 2, "loss": 2.0, "mntp": 0.0, "sscl": 2.0},  # stage 2: MNTP off, logged as 0
        {"step": 2, "train_runtime": 3.0},
    ]
    assert loss_curves(history) == {"loss": [(1, 9.0), (2, 2.0)], "mntp": [(1, 9.0)], "sscl": [(2, 2.0)]}
    assert plot_loss_curves(history, tmp_path / "curves.png").stat().st_size > 1000


def test_quickstart_runs_end_to_end(tiny_decoder_dir, tmp_path, capsys, monkeypatch):
    from magnet_st.cli import main

    monkeypatch.setenv("MAGNET_ST_CACHE", str(tmp_path / "cache"))  # the base scores are cached there

    output = tmp_path / "magnet-tiny"
    argv = ["quickstart", "--base", tiny_decoder_dir, "--output", str(output), "--steps", "2", "--batch-size", "4"]
    assert main(argv + ["--sts-pairs", "30", "--max-texts", "64", "--logging-steps", "1"]) == 0
    printed = capsys.readouterr().out
    assert "unadapted, causal/mean" in printed and "-> MAGNET" in printed
    assert "chosen automatically): My friends and I went to the beach" in printed
    assert "generate: The capital of France is" in printed
    assert "s/step measured" not in printed  # --steps: a fixed count, no time budget
    log = json.loads((output / "training_log.json").read_text())
    assert log["steps"] == 2 and log["precision"] in ("fp32", "bf16")
    assert f"x 4 texts, {log['precision']}) ..." in printed  # the precision announced is the one trained in
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(output)).encode(["works in plain sentence-transformers"]).shape == (1, 64)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("save_steps", 0, r"`save_steps` must be a positive integer, got 0"),
        ("batch_size", 2.5, r"`batch_size` must be a positive integer, got 2.5"),
        ("max_texts", -1, r"`max_texts` must be a positive integer, got -1"),
        ("learning_rate", 0.0, r"`learning_rate` must be > 0, got 0.0"),
        ("sentence_span_rate", 1.5, r"`sentence_span_rate` must be a probability in \[0, 1\], got 1.5"),
        ("dropout_scope", "mntp", r"`dropout_scope` must be one of \('contrastive', 'all'\), got 'mntp'"),
        ("seed", -1, r"`seed` must be an integer in \[0, 2\*\*32\), got -1"),
        ("seed", 2**32, r"`seed` must be an integer in \[0, 2\*\*32\), got 4294967296"),
    ],
)
def test_train_config_checks_its_values_when_built(option, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(data="texts.txt", output_dir="out", **{option: value})


def test_trainer_keeps_recipe_and_export_length_as_its_own_state(tiny_decoder_dir, data_file, tmp_path):
    from sentence_transformers import SentenceTransformerTrainer

    from magnet_st.training.callbacks import RecipeScheduleCallback
    from magnet_st.training.trainer import MagnetTrainer

    trainer = build_trainer(config(tiny_decoder_dir, data_file, tmp_path / "out", recipe="llm2vec"))
    assert isinstance(trainer, MagnetTrainer) and isinstance(trainer, SentenceTransformerTrainer)
    assert trainer.recipe is get_recipe("llm2vec")
    assert trainer.export_max_seq_length == magnet_st.load_model(tiny_decoder_dir).decoder.max_seq_length > 32
    assert trainer.model.decoder.max_seq_length == 32  # the training length
    schedules = [c for c in trainer.callback_handler.callbacks if isinstance(c, RecipeScheduleCallback)]
    assert len(schedules) == 1 and schedules[0].loss is trainer.loss and schedules[0].recipe is trainer.recipe
    assert not [name for name in vars(trainer) if name.startswith("magnet")]


# -- time budget ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget, elapsed, done, per_step, bounds, expected",
    [
        (900, 40, 4, 10.0, {}, 90),  # 860 s left / 10 s -> 86 more
        (900, 40, 4, 7.5, {}, 118),  # floor: a step that would end past the budget is not started
        (900, 950, 4, 10.0, {}, 4),  # already over: the steps done stay
        (900, 40, 4, 10.0, {"min_steps": 200}, 200),
        (900, 0, 0, 0.001, {"max_steps": 1000}, 1000),
    ],
)
def test_steps_within_budget(budget, elapsed, done, per_step, bounds, expected):
    from magnet_st.training.budget import steps_within_budget

    assert steps_within_budget(budget, elapsed, done, per_step, **bounds) == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tick(TrainerCallback):
    """Each training step takes `seconds` on the fake clock (runs before the budget callback).

    `seconds` may also be a function of the step number (1-based).
    """

    def __init__(self, clock: FakeClock, seconds) -> None:
        self.clock, self.seconds = clock, seconds

    def on_step_end(self, args, state, control, **kwargs):
        self.clock.now += self.seconds(state.global_step) if callable(self.seconds) else self.seconds


class LearningRates(TrainerCallback):
    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        self.rates.append(lr_scheduler.get_last_lr()[0])


def budgeted_run(tiny_decoder_dir, data_file, output, budget_seconds: float, warmup_ratio: float, seconds):
    """Train under a 6-step-planned time budget on a fake clock; (config, estimates reported, learning rates)."""
    from magnet_st.training.budget import BUDGET_STEP_CAP, TimeBudgetCallback

    clock, estimates, rates = FakeClock(), [], LearningRates()
    budget = TimeBudgetCallback(
        budget_seconds,
        warmup_ratio=warmup_ratio,
        planned_steps=6,
        measure_steps=3,
        report=estimates.append,
        clock=clock,
    )
    cfg = config(
        tiny_decoder_dir, data_file, output, max_steps=BUDGET_STEP_CAP, warmup_ratio=warmup_ratio, save_steps=100
    )
    train(cfg, callbacks=[Tick(clock, seconds), budget, rates])
    return cfg, estimates, rates


def test_time_budget_sizes_the_run_and_its_schedule_with_a_fake_clock(tiny_decoder_dir, data_file, tmp_path):
    from transformers import get_linear_schedule_with_warmup

    output = tmp_path / "budgeted"
    cfg, estimates, rates = budgeted_run(tiny_decoder_dir, data_file, output, 20.0, 0.2, 2.0)
    # step 1 ends at 2 s (not measured), steps 2-4 take 6 s: 2 s/step; 12 s left -> 6 more steps
    assert len(estimates) == 1 and estimates[0].seconds_per_step == 2.0 and estimates[0].total_steps == 10
    assert "2.0 s/step measured over 3 steps -> 10 steps fit in" in estimates[0].describe()
    assert json.loads((output / "training_log.json").read_text())["steps"] == 10
    # The learning rate follows a linear schedule planned for 6 steps, then re-targeted to 10 after step 4.
    import torch

    def linear_rates(total: int) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.learning_rate)
        schedule = get_linear_schedule_with_warmup(optimizer, int(0.2 * total), total)
        values = []
        for _ in range(total):
            optimizer.step()
            schedule.step()
            values.append(schedule.get_last_lr()[0])
        return values

    expected = linear_rates(6)[:4] + linear_rates(10)[4:]
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-6, atol=1e-12)
    assert rates.rates[-1] == 0.0  # the schedule ends at the final step


def test_time_budget_resizes_the_progress_bar(tiny_decoder_dir, data_file, tmp_path, monkeypatch):
    import transformers.trainer_callback as trainer_callback

    bars = []

    class RecordedBar(trainer_callback.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(trainer_callback, "tqdm", RecordedBar)
    budgeted_run(tiny_decoder_dir, data_file, tmp_path / "bar", 20.0, 0.2, 2.0)
    # The bar opens at the step cap; the budget's 10 steps (as in the test above) become its total.
    assert [(bar.total, bar.n) for bar in bars] == [(10, 10)]


def test_time_budget_refines_its_estimate_once_the_slow_first_steps_are_past(tiny_decoder_dir, data_file, tmp_path):
    output = tmp_path / "refined"
    # Steps 1-4 take 4 s each (a GPU warming up), then 1 s each.
    cfg, estimates, rates = budgeted_run(
        tiny_decoder_dir, data_file, output, 40.0, 0.0, lambda step: 4.0 if step <= 4 else 1.0
    )
    # First estimate after step 4 (16 s): 4 s/step, 24 s left -> 10 steps. After step 7 (19 s, past a quarter of
    # the budget), 3 steps took 3 s: 1 s/step, 21 s left -> 28 steps.
    assert [(e.seconds_per_step, e.total_steps) for e in estimates] == [(4.0, 10), (1.0, 28)]
    assert json.loads((output / "training_log.json").read_text())["steps"] == 28
    assert rates.rates[-1] == 0.0  # the re-targeted schedule still ends at the final step
    assert rates.rates[7] == pytest.approx(cfg.learning_rate * (28 - 8) / 28)  # after step 8, on the 28-step line


def test_time_budget_checks_its_arguments():
    from magnet_st.training.budget import TimeBudgetCallback

    with pytest.raises(ValueError, match="`budget_seconds` must be > 0"):
        TimeBudgetCallback(0, warmup_ratio=0.05, planned_steps=80)
    with pytest.raises(ValueError, match="`measure_steps` must be a positive integer"):
        TimeBudgetCallback(60, warmup_ratio=0.05, planned_steps=80, measure_steps=0)
    with pytest.raises(ValueError, match="`refine_after` must be a fraction of the budget"):
        TimeBudgetCallback(60, warmup_ratio=0.05, planned_steps=80, refine_after=1.0)


def test_quickstart_defaults_to_a_time_budget_and_checks_its_flags(capsys):
    from magnet_st.cli import build_parser, main

    args = build_parser().parse_args(["quickstart"])
    assert args.steps is None and args.time_budget == 15.0 and args.gradient_checkpointing
    assert args.checkpoint_every == 1 and args.lora_dropout == 0.05  # without LoRA dropout STS-B fell 10 points
    partial = build_parser().parse_args(["quickstart", "--checkpoint-every", "2", "--lora-dropout", "0"])
    assert partial.checkpoint_every == 2 and partial.lora_dropout == 0.0
    assert build_parser().parse_args(["quickstart", "--steps", "7"]).steps == 7
    assert not build_parser().parse_args(["quickstart", "--no-gradient-checkpointing"]).gradient_checkpointing
    for flag, value in (("--time-budget", "0"), ("--time-budget", "-3"), ("--sts-pairs", "0")):
        assert main(["quickstart", flag, value]) == 2
        error = capsys.readouterr().err
        assert flag.lstrip("-").replace("-", "_") in error.replace("-", "_") and "Traceback" not in error
    with pytest.raises(SystemExit):
        build_parser().parse_args(["quickstart", "--time-budget", "soon"])


def test_base_scores_are_computed_once_per_base_and_settings(tiny_decoder_dir, tmp_path, monkeypatch):
    from magnet_st.cli import quickstart

    monkeypatch.setenv("MAGNET_ST_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_scorer(model, data_dir, pairs):
        calls.append((model.decoder.attention_mode, model[1].pooling_mode, pairs, model.max_seq_length))
        return float(len(calls))

    monkeypatch.setattr(quickstart, "stsb_dev_spearman", fake_scorer)
    first, cached = quickstart.unadapted_scores(tiny_decoder_dir, None, 30, 32)
    assert (
        not cached
        and len(calls) == 4
        and first
        == {"bidirectional/lasttoken": 1.0, "bidirectional/mean": 2.0, "causal/lasttoken": 3.0, "causal/mean": 4.0}
    )
    assert {call[:2] for call in calls} == {
        ("bidirectional", "lasttoken"),
        ("bidirectional", "mean"),
        ("causal", "lasttoken"),
        ("causal", "mean"),
    }
    again, cached = quickstart.unadapted_scores(tiny_decoder_dir, None, 30, 32)
    assert cached and again == first and len(calls) == 4  # not rescored
    _, cached = quickstart.unadapted_scores(tiny_decoder_dir, None, 20, 32)  # other pairs count: rescored
    assert not cached and len(calls) == 8 and calls[-1][2:] == (20, 32)
    _, cached = quickstart.unadapted_scores(tiny_decoder_dir, None, 30, 24)  # other length: rescored
    assert not cached and len(calls) == 12 and calls[-1][3] == 24


def test_return_freed_memory_sets_glibc_thresholds_or_says_it_cannot():
    import ctypes.util

    from magnet_st.training.memory import return_freed_memory_eagerly

    applied = return_freed_memory_eagerly()
    assert isinstance(applied, bool)
    if sys.platform.startswith("linux") and "libc.so.6" in (ctypes.util.find_library("c") or ""):
        assert applied


def test_partial_checkpointing_and_no_lora_dropout_give_the_same_gradients(tiny_decoder_dir, data_file, tmp_path):
    import torch
    from torch import nn
    from transformers.modeling_layers import GradientCheckpointingLayer

    def lora_gradients(name: str, **overrides) -> tuple[list[torch.Tensor], object]:
        trainer = build_trainer(config(tiny_decoder_dir, data_file, tmp_path / name, lora_dropout=0.0, **overrides))
        model, loss = trainer.model, trainer.loss
        model.train()
        texts = TEXTS[:4]
        features = model.decoder.preprocess(texts)
        features["texts"] = texts
        torch.manual_seed(0)
        sum(loss([features]).values()).backward()
        grads = [p.grad.clone() for n, p in model.named_parameters() if "lora_" in n]
        return grads, model

    plain, _ = lora_gradients("plain")
    partial, model = lora_gradients("partial", gradient_checkpointing=True, checkpoint_every=2)
    layers = [m for m in model.decoder.causal_lm.modules() if isinstance(m, GradientCheckpointingLayer)]
    assert [layer.gradient_checkpointing for layer in layers] == [True, False]  # every second layer recomputes
    dropouts = [m.lora_dropout["default"] for m in model.modules() if hasattr(m, "lora_dropout")]
    assert dropouts and all(isinstance(d, nn.Identity) for d in dropouts)  # peft's no-op for lora_dropout=0
    assert len(plain) == len(partial) > 0
    for a, b in zip(plain, partial):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_train_config_checks_lora_dropout_and_checkpoint_spacing(tiny_decoder_dir, data_file, tmp_path):
    with pytest.raises(ValueError, match=r"`lora_dropout` must be a probability in \[0, 1\), got 1.0"):
        config(tiny_decoder_dir, data_file, tmp_path, lora_dropout=1.0)
    with pytest.raises(ValueError, match="`checkpoint_every` must be a positive integer"):
        config(tiny_decoder_dir, data_file, tmp_path, checkpoint_every=0)
