"""Train the reference model `magnet-smollm2-135m` on the project's corpus, resumably.

    python evaluation/reference/run.py --profile gpu   # bf16, batch 64, up to 2,000 steps or 8 minutes (one H100/H200)
    python evaluation/reference/run.py --profile cpu   # fp32 on CPUs without fast bf16, batch 16, 1,000 steps

--time-budget MINUTES ends the run (and its learning-rate schedule) when the budget is spent, if that comes
before the profile's step count: the first steps are timed and the schedule retargeted to the steps that fit.
The gpu profile has a budget of its own (8 minutes, `time_budget_minutes` in config.json). A resumed run gets
its budget afresh, counted from its first step.
Run it again with the same --work folder to resume from the newest checkpoint. The LoRA adapter is kept at
the profile's snapshot steps (`WORK/adapters/step-N`) for learning curves, and at the end as
`WORK/adapters/final` with the training log: what `magnet_st/pretrained/` ships. Each kept adapter has a
`snapshot.json` with its step, its precision and the run's TrainConfig; `ship.py` copies it into the log.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from transformers import TrainerCallback

from magnet_st.data.corpus import build_corpus
from magnet_st.precision import PRECISIONS
from magnet_st.train_config import DROPOUT_SCOPES
from magnet_st.training.budget import TimeBudgetCallback
from magnet_st.training.checkpoints import newest_complete_checkpoint
from magnet_st.training.recipes import RECIPES
from magnet_st.training.train import TrainConfig, train

CONFIG = Path(__file__).with_name("config.json")
BUDGET_MEASURE_STEPS = 10  # steps timed before sizing a budgeted run (a GPU's first steps are slow)
SNAPSHOT_RECORD = "snapshot.json"  # beside each kept adapter: its step, precision and TrainConfig
RUN_KEYS = ("time_budget_minutes", "snapshot_steps")  # profile keys for this script, not for TrainConfig


class KeepAdapterSnapshots(TrainerCallback):
    """Copy the LoRA adapter of the checkpoints saved at `steps` to `folder/step-N` (checkpoints rotate).

    Each snapshot carries `snapshot.json`: its step, the precision it was trained in up to then and the run's
    TrainConfig, so that an adapter picked from a curve can be shipped with what made it.
    """

    def __init__(self, steps: list[int], folder: Path, config: TrainConfig) -> None:
        self.steps = set(steps)
        self.folder = folder
        self.config = config

    def on_save(self, args, state, control, **kwargs):
        if state.global_step in self.steps:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            record = {
                "step": state.global_step,
                "precision": "bf16" if args.bf16 else "fp32",
                "config": asdict(self.config),
            }
            copy_adapter(checkpoint, self.folder / f"step-{state.global_step}", record)


def copy_adapter(checkpoint: Path, target: Path, record: dict | None = None) -> None:
    """Copy the adapter files (peft format) found in a checkpoint folder to `target`, with `record` if given."""
    found = sorted(checkpoint.rglob("adapter_config.json"))
    if not found:
        raise FileNotFoundError(f"No LoRA adapter in {checkpoint}.")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(found[0].parent, partial)
    if record is not None:
        (partial / SNAPSHOT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def training_config(settings: dict, profile: str, work: Path) -> TrainConfig:
    checkpoints = work / "model-checkpoints"
    return TrainConfig(
        data=str(work / "corpus.txt"),
        output_dir=str(work / "model"),
        base=settings["base"],
        recipe=settings["recipe"],
        sentence_span_rate=settings.get("sentence_span_rate"),
        dropout_scope=settings.get("dropout_scope", "contrastive"),
        return_freed_memory=settings.get("return_freed_memory", False),
        learning_rate=settings["learning_rate"],
        lora_r=settings["lora_r"],
        warmup_ratio=settings["warmup_ratio"],
        logging_steps=settings["logging_steps"],
        seed=settings["seed"],
        keep_checkpoints=True,
        resume=checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*")),
        overwrite=True,
        **{key: value for key, value in settings["profiles"][profile].items() if key not in RUN_KEYS},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", required=True, choices=("gpu", "cpu", "tiny"))
    parser.add_argument("--work", default="reference-run", help="folder for corpus, checkpoints and adapters")
    parser.add_argument("--base", default=None, help="override the base model (the tiny profile's dry runs)")
    parser.add_argument("--data", default=None, help="datasets folder (default: magnet_st's data resolution)")
    parser.add_argument("--learning-rate", type=float, default=None, help="override the config's peak learning rate")
    parser.add_argument(
        "--recipe", choices=tuple(RECIPES), default=None, help="override the recipe (a baseline arm on the same corpus)"
    )
    parser.add_argument(
        "--sentence-span-rate", type=float, default=None, help="override the recipe's sentence-span rate (an arm)"
    )
    parser.add_argument(
        "--dropout-scope", choices=DROPOUT_SCOPES, default=None, help="override where attention dropout applies"
    )
    parser.add_argument(
        "--return-freed-memory",
        action="store_true",
        help="hand freed activation memory back to the system at once (several runs on one machine)",
    )
    parser.add_argument("--max-steps", type=int, default=None, help="override the profile's step count")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="override the profile's precision (a study's fixed choice)",
    )
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed (a second draw of a run)")
    parser.add_argument(
        "--snapshot-steps", type=int, nargs="+", default=None, help="override the steps whose adapters are kept"
    )
    parser.add_argument(
        "--time-budget", type=float, default=None, help="minutes of training; fewer steps than the profile's if needed"
    )
    args = parser.parse_args(argv)
    if args.time_budget is not None and not args.time_budget > 0:
        parser.error(f"--time-budget must be a positive number of minutes, got {args.time_budget}")
    settings = json.loads(CONFIG.read_text())
    if args.base:
        settings["base"] = args.base
    if args.learning_rate is not None:
        settings["learning_rate"] = args.learning_rate
    if args.recipe:
        settings["recipe"] = args.recipe
    if args.seed is not None:
        settings["seed"] = args.seed
    if args.sentence_span_rate is not None:
        settings["sentence_span_rate"] = args.sentence_span_rate
    if args.dropout_scope:
        settings["dropout_scope"] = args.dropout_scope
    settings["return_freed_memory"] = args.return_freed_memory
    profile = settings["profiles"][args.profile]
    if args.precision:
        profile["precision"] = args.precision
    if args.max_steps is not None:
        profile["max_steps"] = args.max_steps
    if args.snapshot_steps is not None:
        profile["snapshot_steps"] = args.snapshot_steps
    unsaved = [step for step in profile["snapshot_steps"] if step % profile["save_steps"]]
    if unsaved:
        parser.error(
            f"--snapshot-steps {unsaved} are not checkpoint steps: the {args.profile} profile saves every "
            f"{profile['save_steps']} steps"
        )
    work = Path(args.work).expanduser()
    try:  # TrainConfig checks every training value in one place, before any work
        config = training_config(settings, args.profile, work)
    except ValueError as error:
        parser.error(str(error))
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "corpus.txt").is_file():
        stats = build_corpus(work / "corpus.txt", args.data)
        (work / "corpus_stats.json").write_text(json.dumps(stats.__dict__, indent=2, default=str))
    callbacks = [KeepAdapterSnapshots(profile["snapshot_steps"], work / "adapters", config)]
    budget = args.time_budget or profile.get("time_budget_minutes")
    if budget is not None:
        callbacks.append(
            TimeBudgetCallback(
                budget * 60,
                warmup_ratio=config.warmup_ratio,
                planned_steps=config.max_steps,
                measure_steps=BUDGET_MEASURE_STEPS,
                report=lambda estimate: print(estimate.describe(), flush=True),
            )
        )
    model = train(config, callbacks=callbacks)
    del model
    final, _ = newest_complete_checkpoint(config.checkpoint_dir())
    log = json.loads((Path(config.output_dir) / "training_log.json").read_text())
    step = int(final.name.split("-")[-1])
    record = {"step": step, "precision": log["precision"], "config": log["config"]}
    copy_adapter(final, work / "adapters" / "final", record)
    last_step = work / "adapters" / f"step-{step}"
    if not last_step.is_dir():  # a budgeted run ends between snapshot steps: its curve gets the last step too
        copy_adapter(final, last_step, record)
    shutil.copy(Path(config.output_dir) / "training_log.json", work / "adapters" / "final" / "training_log.json")
    print(f"adapter: {work / 'adapters' / 'final'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
