"""Start-up time of the `magnet-st` command: seconds until its first output line, best of several runs.

Times `magnet-st --help`, `magnet-st encode --help`, and `magnet-st encode MODEL "text"` (first line and
whole run). With `--compare-with DIR` (another checkout of the repository) the same commands run there too,
alternating with this one, and the ratio is printed.

    python benchmarks/startup.py [--model tiny|smollm2-135m|FOLDER] [--runs 5] [--compare-with DIR]

Targets: `--help` <= 1 s; any subcommand's first output <= 3 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from magnet_st.precision import cpu_model_name

TARGETS = {"--help": 1.0, "encode --help": 3.0, "encode: first line": 3.0}


def timed_run(arguments: list[str], checkout: Path) -> tuple[float, float]:
    """(seconds to the first output line, seconds to exit) of `python -m magnet_st.cli ARGUMENTS` in `checkout`."""
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
    process.stdout.readline()
    first = time.perf_counter() - began
    process.communicate()
    if process.returncode:
        raise RuntimeError(f"magnet-st {' '.join(arguments)} failed in {checkout}")
    return first, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="model for the encode run (tiny: a tiny random decoder)")
    parser.add_argument("--runs", type=int, default=5, help="runs per command; the best counts")
    parser.add_argument("--compare-with", type=Path, default=None, help="another checkout, timed alternately")
    args = parser.parse_args()
    model = args.model
    if model == "tiny":
        from magnet_st.testing import make_tiny_decoder

        model = make_tiny_decoder(Path(tempfile.mkdtemp()) / "tiny", "llama")
    checkouts = {"this": Path(__file__).resolve().parents[1]}
    if args.compare_with:
        checkouts["other"] = args.compare_with.resolve()
    commands = {
        "--help": (["--help"], 0),
        "encode --help": (["encode", "--help"], 0),
        "encode: first line": (["encode", str(model), "A short sentence."], 0),
        "encode: whole run": (["encode", str(model), "A short sentence."], 1),
    }
    best = {(name, checkout): float("inf") for name in commands for checkout in checkouts}
    for _ in range(args.runs):
        for name, (arguments, which) in commands.items():
            for label, checkout in checkouts.items():  # alternating: load changes hit both alike
                best[name, label] = min(best[name, label], timed_run(arguments, checkout)[which])

    print(f"CPU: {cpu_model_name()}; {os.cpu_count()} cores; best of {args.runs} runs; model for encode: {args.model}")
    for name in commands:
        line = f"{name:20s} {best[name, 'this']:6.2f} s"
        if name in TARGETS:
            line += f"  target <= {TARGETS[name]:.0f} s ({best[name, 'this'] / TARGETS[name]:.2f}x of target)"
        if args.compare_with:
            line += f"  other checkout {best[name, 'other']:6.2f} s, speed-up {best[name, 'other'] / best[name, 'this']:.1f}x"
        print(line)


if __name__ == "__main__":
    main()
