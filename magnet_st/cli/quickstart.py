"""`magnet-st quickstart`: adapt the embedded SmolLM2-135M with MAGNET into ./magnet-llama and try it.

Sized for about 13 minutes on 2 CPU cores; --steps, --batch-size and --sts-pairs scale it up.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from magnet_st.cli.train import add_training_arguments, config_from_args
from magnet_st.training.train import TrainConfig

QUICKSTART = TrainConfig(  # about 13 minutes on 2 CPU cores
    data="",
    output_dir="magnet-llama",
    max_steps=80,
    batch_size=16,
    max_seq_length=48,
    save_steps=20,
    logging_steps=5,
)
WIKI = ("wiki1m_for_simcse_head", "wiki1m_for_simcse.txt")
STSB_DEV = ("stsbenchmark", "sts-dev.csv")
INFILL_EXAMPLE = "My friends and I went to the beach on Saturday. [BLANK] We drove home tired but happy."
GENERATE_EXAMPLE = "The capital of France is"
UNADAPTED_ENCODINGS = (
    ("bidirectional", "lasttoken"),
    ("bidirectional", "mean"),
    ("causal", "lasttoken"),
    ("causal", "mean"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("quickstart", help="adapt SmolLM2-135M with MAGNET into ./magnet-llama, then try it")
    parser.add_argument(
        "--data", default=None, help="text file to train on (default: the Wikipedia sentences in the data folder)"
    )
    parser.add_argument("--data-dir", default=None, help="data folder (default: $MAGNET_ST_DATA or ../shared/datasets)")
    parser.add_argument("--output", default=QUICKSTART.output_dir, help="where the model goes (default: %(default)s)")
    parser.add_argument(
        "--sts-pairs", type=int, default=400, help="STS-B dev pairs scored before and after (default: %(default)s)"
    )
    add_training_arguments(parser, QUICKSTART)
    parser.set_defaults(run=run)


def stsb_dev_spearman(model, data_dir: str | None, pairs: int) -> float:
    """Spearman x100 of cosine similarities on the first `pairs` STS-B dev pairs."""
    from scipy.stats import spearmanr

    from magnet_st.data.paths import dataset_file
    from magnet_st.data.sts import read_stsb

    rows = read_stsb(dataset_file(data_dir, *STSB_DEV))
    first, second, gold = (rows[key][:pairs] for key in ("sentence1", "sentence2", "score"))
    a = model.encode(first, convert_to_tensor=True, batch_size=32)
    b = model.encode(second, convert_to_tensor=True, batch_size=32)
    predicted = model.similarity_pairwise(a, b).cpu().numpy()
    return 100 * spearmanr(predicted, gold).statistic


def run(args: argparse.Namespace) -> int:
    from magnet_st.data.paths import dataset_file
    from magnet_st.encoding_variants import encoding_variant
    from magnet_st.generation import generate, infill
    from magnet_st.model import load_model
    from magnet_st.training.train import train

    started = time.time()
    data = args.data or str(dataset_file(args.data_dir, *WIKI))
    config = config_from_args(args, data, args.output, drop_cut_last_line=args.data is None)
    print(f"[1/4] Base model {config.base}: STS-B dev Spearman on {args.sts_pairs} pairs ...", flush=True)
    base = load_model(config.base, max_seq_length=config.max_seq_length)
    unadapted = {}
    for attention_mode, pooling in UNADAPTED_ENCODINGS:  # the base's best encoding is the fair baseline
        with encoding_variant(base, attention_mode, pooling):
            unadapted[f"{attention_mode}/{pooling}"] = stsb_dev_spearman(base, args.data_dir, args.sts_pairs)
        print(
            f"      unadapted, {attention_mode}/{pooling}: {unadapted[f'{attention_mode}/{pooling}']:.2f}", flush=True
        )
    best_encoding = max(unadapted, key=unadapted.get)
    del base
    print(
        f"[2/4] MAGNET training ({config.recipe} recipe, {config.max_steps} steps x {config.batch_size} texts) ...",
        flush=True,
    )
    model = train(config)
    model.eval()
    print(f"[3/4] Saved to {Path(args.output).resolve()}; STS-B dev after MAGNET ...", flush=True)
    after = stsb_dev_spearman(model, args.data_dir, args.sts_pairs)
    print(
        f"      STS-B dev Spearman: unadapted at best {unadapted[best_encoding]:.2f} ({best_encoding}) "
        f"-> MAGNET {after:.2f}",
        flush=True,
    )
    print("[4/4] The same weights infill and generate:", flush=True)
    filled = infill(model, INFILL_EXAMPLE)  # a blank between sentences: the mean sentence length
    print(f"      infill ({filled.fills[0].length} tokens, chosen automatically): {filled.text}")
    print(f"      generate: {GENERATE_EXAMPLE}{generate(model, GENERATE_EXAMPLE, max_new_tokens=16)}")
    print(f"Done in {(time.time() - started) / 60:.1f} min. Try it: SentenceTransformer({args.output!r}).encode([...])")
    return 0
