"""Start-up time of the `magnet-st` command: seconds until its first output line, best of several runs.

Times `magnet-st --help`, every subcommand's `--help`, the first line that a real run of each subcommand prints
(stopped after that line), and one whole `magnet-st encode MODEL "text"`. With `--compare-with DIR` (another
checkout of the repository) the same commands run there too, alternating with this one, and the speed-up is
printed.

    python benchmarks/startup.py [--model tiny|smollm2-135m|FOLDER] [--runs 3] [--compare-with DIR]

Targets: `magnet-st --help` <= 1 s; any subcommand's first output (its --help, or a run's first line) <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from magnet_st.cli import COMMANDS
from magnet_st.precision import cpu_flags, cpu_model_name

TOP_LEVEL_TARGET_S = 1.0
SUBCOMMAND_TARGET_S = 3.0


def real_runs(model: str, scratch: Path) -> dict[str, list[str]]:
    """A real command line per subcommand; only its first output line is waited for."""
    texts = scratch / "texts.txt"
    texts.write_text("A short sentence about a cat.\n" * 32)
    return {
        "quickstart": ["quickstart", "--output", str(scratch / "quickstart")],
        "encode": ["encode", model, "A short sentence."],
        "corpus": ["corpus", "--out", str(scratch / "corpus.txt")],
        "train": ["train", "--data", str(texts), "--output", str(scratch / "train"), "--base", model, "--steps", "1"],
        "infill": ["infill", model, "A [BLANK] sentence."],
        "generate": ["generate", model, "A short"],
        "tag": ["tag", model, "A short sentence."],
        "eval": ["eval", model, "--out", str(scratch / "eval")],
        "export": ["export", model, str(scratch / "export")],
        "export-onnx": ["export-onnx", model],
        "export-tagger": ["export-tagger", model, str(scratch / "tagger")],
    }


def timed_run(arguments: list[str], checkout: Path, *, whole: bool = False, limit_s: float = 60.0) -> float:
    """Seconds to the first output line (or to a successful exit with `whole`) of `python -m magnet_st.cli ...`.

    Without `whole` the command is stopped after its first line, so a training or evaluation never really runs;
    one that prints nothing for `limit_s` seconds is stopped then and counts as `inf`.
    """
    environment = dict(os.environ, PYTHONPATH=str(checkout), PYTHONWARNINGS="ignore")
    began = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "magnet_st.cli", *arguments],
        cwd=checkout,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if not select.select([process.stdout], [], [], limit_s)[0]:
        process.kill()
        process.communicate()
        return float("inf")
    first_line = process.stdout.readline()
    first = time.perf_counter() - began
    if not whole:
        process.kill()
        process.communicate()
        if "--help" not in arguments and first_line.startswith(("usage:", f"magnet-st {arguments[0]}: error")):
            raise RuntimeError(f"magnet-st {' '.join(arguments)} in {checkout}: {first_line.strip()}")
        return first
    process.communicate()
    if process.returncode:
        raise RuntimeError(f"magnet-st {' '.join(arguments)} failed in {checkout}")
    return time.perf_counter() - began


def benchmark_rows(model: str, scratch: Path) -> dict[str, tuple[list[str], bool, float | None]]:
    """Row name -> (arguments, whole run, target in seconds or None)."""
    rows: dict[str, tuple[list[str], bool, float | None]] = {"--help": (["--help"], False, TOP_LEVEL_TARGET_S)}
    for command in COMMANDS:
        rows[f"{command} --help"] = ([command, "--help"], False, SUBCOMMAND_TARGET_S)
    for command, arguments in real_runs(model, scratch).items():
        if command in COMMANDS:
            rows[f"{command}: first line"] = (arguments, False, SUBCOMMAND_TARGET_S)
    rows["encode: whole run"] = (real_runs(model, scratch)["encode"], True, None)
    return rows


def cpu_description() -> str:
    flags = cpu_flags()
    extensions = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if name in flags]
    return f"{cpu_model_name()} ({', '.join(extensions) or 'no AVX2'}); {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="model for the real runs (tiny: a tiny random decoder)")
    parser.add_argument("--runs", type=int, default=3, help="runs per command; the best counts")
    parser.add_argument("--compare-with", type=Path, default=None, help="another checkout, timed alternately")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds to wait for a first line (default 60)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="magnet-startup-"))
    model = args.model
    if model == "tiny":
        from magnet_st.testing import make_tiny_decoder

        model = make_tiny_decoder(scratch / "tiny", "llama")
    checkouts = {"this": Path(__file__).resolve().parents[1]}
    if args.compare_with:
        checkouts["other"] = args.compare_with.resolve()
    rows = benchmark_rows(str(model), scratch)
    best = {(name, label): float("inf") for name in rows for label in checkouts}
    for _ in range(args.runs):
        for name, (arguments, whole, _target) in rows.items():
            for label, checkout in checkouts.items():  # alternating: load changes hit both alike
                best[name, label] = min(
                    best[name, label], timed_run(arguments, checkout, whole=whole, limit_s=args.limit)
                )

    print(f"CPU: {cpu_description()}; best of {args.runs} runs; model for the real runs: {args.model}")

    def shown(seconds: float) -> str:  # a run stopped at the limit printed nothing before it
        return f"{seconds:6.2f} s" if seconds < float("inf") else f">{args.limit:5.0f} s"

    missed = 0
    for name, (_arguments, _whole, target) in rows.items():
        seconds = best[name, "this"]
        line = f"{name:28s} {shown(seconds)}"
        if target is not None:
            passed = seconds <= target
            missed += not passed
            line += f"  target <= {target:.0f} s: {'pass' if passed else 'FAIL'}"
        if args.compare_with:
            other = best[name, "other"]
            speed_up = f"{other / seconds:5.1f}x" if other < float("inf") else f">{args.limit / seconds:4.0f}x"
            line += f"  | other checkout {shown(other)}, speed-up {speed_up}"
        print(line)
    print(f"{missed} of {sum(target is not None for *_, target in rows.values())} targets missed")


if __name__ == "__main__":
    main()
