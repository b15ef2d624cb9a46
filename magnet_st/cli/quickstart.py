"""`magnet-st quickstart`: adapt the embedded SmolLM2-135M with MAGNET into ./magnet-llama and try it.

Trains for a wall-clock budget (--time-budget, default 15 minutes); --steps forces a fixed step count.
The unadapted base's STS-B dev scores are computed once per base and cached.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from magnet_st.cli.train import add_training_arguments, config_from_args, recipes_epilog
from magnet_st.model_names import REFERENCE_MODEL
from magnet_st.train_config import BUDGET_STEP_CAP, TrainConfig

QUICKSTART = TrainConfig(
    data="",
    output_dir="magnet-llama",
    max_steps=80,  # with a time budget: the step count the schedule assumes until the first steps are timed
    batch_size=16,
    max_seq_length=48,
    save_steps=20,
    logging_steps=5,
    gradient_checkpointing=True,  # keeps one layer's activations at a time
    return_freed_memory=True,  # and their pages go back to the system once freed
)
DEFAULT_TIME_BUDGET_MINUTES = 15.0
LONGER_BUDGET_MINUTES = 60.0
STSB_DEV = ("stsbenchmark", "sts-dev.csv")
INFILL_EXAMPLE = "My friends and I went to the beach on Saturday. [BLANK] We drove home tired but happy."
GENERATE_EXAMPLE = "The capital of France is"
UNADAPTED_ENCODINGS = (
    ("bidirectional", "lasttoken"),
    ("bidirectional", "mean"),
    ("causal", "lasttoken"),
    ("causal", "mean"),
)
SCORE_CACHE_VERSION = 1  # bump when the scoring code changes what a cached score means


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart", epilog=recipes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", default=None, help="text file to train on (default: the Wikipedia sentences in the data folder)"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data folder (default: $MAGNET_ST_DATA, else ../shared/datasets, else the packaged sample)",
    )
    parser.add_argument("--output", default=QUICKSTART.output_dir, help="where the model goes (default: %(default)s)")
    parser.add_argument(
        "--sts-pairs", type=int, default=400, help="STS-B dev pairs scored before and after (default: %(default)s)"
    )
    parser.add_argument(
        "--time-budget",
        type=float,
        default=DEFAULT_TIME_BUDGET_MINUTES,
        metavar="MINUTES",
        help="train as many steps as fit in this many minutes, timed on the first steps (default: %(default)s)",
    )
    add_training_arguments(parser, QUICKSTART)
    steps = next(action for action in parser._actions if action.dest == "steps")
    steps.default, steps.help = None, "train exactly this many steps instead of a time budget"
    parser.set_defaults(run=run)


def _file_identity(path: Path) -> list:
    stat = path.stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def base_score_key(base: str, data_dir: str | None, pairs: int, max_seq_length: int) -> dict[str, Any]:
    """What the unadapted scores depend on: the base's files, the STS-B file and the scoring settings."""
    from magnet_st.base_models import resolve_base_model
    from magnet_st.data.paths import dataset_file

    folder = Path(resolve_base_model(base))
    weights = sorted(path for path in folder.iterdir() if path.suffix in {".json", ".safetensors", ".bin"})
    return {
        "version": SCORE_CACHE_VERSION,
        "base": [_file_identity(path) for path in weights],
        "stsb_dev": _file_identity(Path(dataset_file(data_dir, *STSB_DEV, sample=True))),
        "pairs": pairs,
        "max_seq_length": max_seq_length,
        "encodings": [list(encoding) for encoding in UNADAPTED_ENCODINGS],
    }


def unadapted_scores(base: str, data_dir: str | None, pairs: int, max_seq_length: int) -> tuple[dict[str, float], bool]:
    """STS-B dev Spearman of the base's four unadapted encodings, and whether they came from the cache.

    One model object serves all four encodings; the scores are cached in the model cache folder.
    """
    import gc
    import hashlib
    import json

    from magnet_st.base_models import cache_dir
    from magnet_st.encoding_variants import encoding_variant
    from magnet_st.model import load_model

    key = base_score_key(base, data_dir, pairs, max_seq_length)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "base_scores" / f"{digest}.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["scores"], True
    model = load_model(base, max_seq_length=max_seq_length)
    scores = {}
    for attention_mode, pooling in UNADAPTED_ENCODINGS:
        with encoding_variant(model, attention_mode, pooling):
            scores[f"{attention_mode}/{pooling}"] = stsb_dev_spearman(model, data_dir, pairs)
    del model
    gc.collect()  # the training loads its own copy
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps({"key": key, "scores": scores}, indent=1))
    staging.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    return scores, False


def stsb_dev_spearman(model, data_dir: str | None, pairs: int) -> float:
    """Spearman x100 of the model's similarities on the first `pairs` STS-B dev pairs."""
    from magnet_st.data.paths import dataset_file
    from magnet_st.data.sts import read_stsb
    from magnet_st.evaluation.bootstrap import record_score
    from magnet_st.evaluation.sentence import sts_pairs_record

    rows = read_stsb(dataset_file(data_dir, *STSB_DEV, sample=True))
    return record_score(sts_pairs_record(model, {key: column[:pairs] for key, column in rows.items()}))


def _check_args(args: argparse.Namespace) -> None:
    from magnet_st.validation import check_positive_int

    check_positive_int(args.sts_pairs, "sts_pairs")
    if not args.time_budget > 0:
        raise ValueError(f"`--time-budget` must be > 0 minutes, got {args.time_budget!r}.")


def _say_if_sample(args: argparse.Namespace, data: str) -> None:
    from magnet_st.data.paths import dataset_file, is_packaged_sample

    sample = [path for path in (data, dataset_file(args.data_dir, *STSB_DEV, sample=True)) if is_packaged_sample(path)]
    if sample:
        print(
            f"      No data folder found: using the packaged sample ({', '.join(Path(p).name for p in sample)}); "
            "pass --data-dir or set $MAGNET_ST_DATA for the full data sets.",
            flush=True,
        )


def run(args: argparse.Namespace) -> int:
    from magnet_st.data.paths import dataset_file
    from magnet_st.data.wikipedia import WIKI_FILE

    _check_args(args)
    started = time.time()
    data = args.data or str(dataset_file(args.data_dir, *WIKI_FILE, sample=True))
    _say_if_sample(args, data)
    budgeted = args.steps is None
    steps_args = argparse.Namespace(**{**vars(args), "steps": BUDGET_STEP_CAP if budgeted else args.steps})
    config = config_from_args(steps_args, data, args.output, drop_cut_last_line=args.data is None)
    print(f"[1/4] Base model {config.base}: STS-B dev Spearman on {args.sts_pairs} pairs ...", flush=True)
    # The training stack is imported after the first line, so the command answers at once.
    from magnet_st.pretrained import PRETRAINED_MODELS
    from magnet_st.training.budget import TimeBudgetCallback
    from magnet_st.training.train import train

    unadapted, cached = unadapted_scores(config.base, args.data_dir, args.sts_pairs, config.max_seq_length)
    for encoding, score in unadapted.items():  # the base's best encoding is the fair baseline
        print(f"      unadapted, {encoding}: {score:.2f}{' (cached)' if cached else ''}", flush=True)
    best_encoding = max(unadapted, key=unadapted.get)
    callbacks = []
    if budgeted:
        callbacks.append(
            TimeBudgetCallback(
                args.time_budget * 60,
                warmup_ratio=config.warmup_ratio,
                planned_steps=QUICKSTART.max_steps,
                report=lambda estimate: print(f"      {estimate.describe()}", flush=True),
            )
        )
        length = f"{args.time_budget:g} min"
    else:
        length = f"{config.max_steps} steps"
    import torch

    from magnet_st.precision import training_precision

    precision = training_precision("cuda" if torch.cuda.is_available() else "cpu", config.precision)
    print(
        f"[2/4] MAGNET training ({config.recipe} recipe, {length} x {config.batch_size} texts, {precision}) ...",
        flush=True,
    )
    model = train(config, callbacks=callbacks)
    model.eval()
    print(f"[3/4] Saved to {Path(args.output).resolve()}; STS-B dev after MAGNET ...", flush=True)
    after = stsb_dev_spearman(model, args.data_dir, args.sts_pairs)
    print(
        f"      STS-B dev Spearman: unadapted at best {unadapted[best_encoding]:.2f} ({best_encoding}) "
        f"-> MAGNET {after:.2f}",
        flush=True,
    )
    if budgeted and callbacks[0].estimate is not None:
        print(f"      {longer_run_hint(callbacks[0].estimate, args.time_budget)}", flush=True)
    print("[4/4] The same weights infill and generate:", flush=True)
    show_infill_and_generate(model)
    if config.base == PRETRAINED_MODELS[REFERENCE_MODEL].base:  # a comparison only on the same base
        show_reference_model(args, after)
    print(f"Done in {(time.time() - started) / 60:.1f} min. Try it: SentenceTransformer({args.output!r}).encode([...])")
    return 0


def show_infill_and_generate(model) -> None:
    """The quick start's infill (a blank between sentences: the mean sentence length) and greedy generation."""
    from magnet_st.generation import generate, infill

    filled = infill(model, INFILL_EXAMPLE)
    print(f"      infill ({filled.fills[0].length} tokens, chosen automatically): {filled.text}")
    print(f"      generate: {GENERATE_EXAMPLE}{generate(model, GENERATE_EXAMPLE, max_new_tokens=16)}", flush=True)


def show_reference_model(args: argparse.Namespace, after: float) -> None:
    """The same checks on the shipped reference model, trained once at a larger budget."""
    from magnet_st import load_model
    from magnet_st.pretrained import trained_steps

    reference = load_model(REFERENCE_MODEL)
    reference.eval()
    score = stsb_dev_spearman(reference, args.data_dir, args.sts_pairs)
    print(f"Beside it, the shipped {REFERENCE_MODEL} ({trained_steps(REFERENCE_MODEL)} steps on the project's corpus):")
    print(f"      STS-B dev Spearman: {score:.2f} (this run: {after:.2f})")
    show_infill_and_generate(reference)
    print(f"      Use it: magnet_st.load_model({REFERENCE_MODEL!r})", flush=True)


def longer_run_hint(estimate, budget_minutes: float) -> str:
    """What a longer budget would train, at the speed measured in this run."""
    minutes = max(LONGER_BUDGET_MINUTES, 4 * budget_minutes)
    steps = int(minutes * 60 / estimate.seconds_per_step)
    return f"Trained {estimate.total_steps} steps; --time-budget {minutes:g} would train about {steps} at this speed."
