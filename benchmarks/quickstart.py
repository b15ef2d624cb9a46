"""The quick start's training: peak resident memory and seconds per step, before and after, in one run.

BEFORE is the quick start of an earlier commit (default: the one before the memory work), exported with
`git archive` into a temporary folder; AFTER is this checkout. Each side trains the quick start's own
settings (its `QUICKSTART` config: batch, length, recipe, gradient checkpointing) on the real SmolLM2-135M
in a fresh subprocess, for a few steps, and saves the model as the quick start does. Rounds alternate
between the two sides.

    python benchmarks/quickstart.py [--base-commit ee04daf] [--steps 4] [--rounds 1]
    python benchmarks/quickstart.py --after checkpoint_every=2   # AFTER with other TrainConfig settings

Targets: AFTER's peak RSS <= 3 GB, and its seconds per step <= 1.25x BEFORE's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 1  # the first step also pays for the data loader and first allocations


def worker(steps: int, settings: dict) -> None:
    """Train the imported magnet_st's quick start for WARMUP_STEPS + `steps`; print peak RSS and step times."""
    import dataclasses
    import resource
    import time

    from transformers import TrainerCallback

    from magnet_st.cli.quickstart import QUICKSTART
    from magnet_st.data.paths import dataset_file
    from magnet_st.training.train import train

    wiki = ("wiki1m_for_simcse_head", "wiki1m_for_simcse.txt")  # spelled out: both sides read it, whatever they export

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.began)

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as scratch:
        config = dataclasses.replace(
            QUICKSTART,
            data=str(dataset_file(None, *wiki)),
            drop_cut_last_line=True,
            output_dir=str(Path(scratch) / "model"),
            max_steps=WARMUP_STEPS + steps,
            save_steps=10**6,
            logging_steps=10**6,
            **settings,
        )
        train(config, callbacks=[timer])
    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports kilobytes
    print(json.dumps({"peak_gb": peak_bytes / 1e9, "step_seconds": timer.seconds[WARMUP_STEPS:]}))


def run_side(source: Path, steps: int, threads: int, settings: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--steps", str(steps)]
    command += ["--settings", json.dumps(settings)]
    result = subprocess.run(command, env=env, cwd=source, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"benchmark worker failed in {source}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_commit(commit: str, target: Path) -> None:
    archive = subprocess.run(["git", "archive", commit, "magnet_st"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-commit", default="ee04daf", help="the BEFORE side (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4, help=f"timed steps per side, after {WARMUP_STEPS} warm-up")
    parser.add_argument("--rounds", type=int, default=1, help="before/after pairs, alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--after",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="TrainConfig settings for the AFTER side only, values as JSON (checkpoint_every=2, lora_dropout=0)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, json.loads(args.settings))
        return
    after_settings = {}
    for item in args.after:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--after takes KEY=VALUE settings, got {item!r}")
        try:
            after_settings[key] = json.loads(value)
        except ValueError:
            parser.error(f"--after {key}: {value!r} is not a JSON value (true, 2, 0.05)")
    import dataclasses

    from magnet_st.cli.quickstart import QUICKSTART

    unknown = sorted(set(after_settings) - {field.name for field in dataclasses.fields(QUICKSTART)})
    if unknown:
        parser.error(f"--after: {unknown} are not TrainConfig settings")
    try:
        dataclasses.replace(QUICKSTART, **after_settings)  # TrainConfig checks its values when built
    except (TypeError, ValueError) as error:
        parser.error(f"--after: {error}")
    from magnet_st.precision import describe_cpu

    results: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as before_source:
        export_commit(args.base_commit, Path(before_source))
        for _ in range(args.rounds):
            for side, source, settings in (("before", Path(before_source), {}), ("after", REPO, after_settings)):
                results[side].append(run_side(source, args.steps, args.threads, settings))
    print(
        f"CPU: {describe_cpu()}; {args.threads} threads, {args.steps} steps/side; after: {after_settings or 'defaults'}"
    )
    summary = {}
    for side, runs in results.items():
        peak = max(run["peak_gb"] for run in runs)
        per_step = statistics.median(s for run in runs for s in run["step_seconds"])
        summary[side] = (peak, per_step)
        print(
            f"{side:6s} ({args.base_commit if side == 'before' else 'this checkout'}): peak RSS {peak:.2f} GB, "
            f"{per_step:.2f} s/step (median)"
        )
    (peak_before, step_before), (peak_after, step_after) = summary["before"], summary["after"]
    print(f"peak RSS after/before: {peak_after / peak_before:.2f}x (target: after <= 3 GB)")
    print(f"s/step  after/before: {step_after / step_before:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main()
