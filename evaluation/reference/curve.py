"""Learning curve of a training run from its adapter snapshots (`run.py` keeps them as `adapters/step-N`).

    python evaluation/reference/curve.py WORK/adapters/step-* --out curve.json --plot curve.png

Per snapshot (and the unadapted base as step 0): STS-B dev Spearman x100 (all pairs, MAGNET's reading), span
perplexity with both contexts and with the left one only on ROCStories and Wikipedia, and LAMA P@1. Finished
steps are kept in `--out` and skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.stats import spearmanr

from magnet_st.data.paths import dataset_file
from magnet_st.data.sts import read_stsb
from magnet_st.evaluation.infilling import evaluate_infilling
from magnet_st.evaluation.knowledge import evaluate_knowledge
from magnet_st.model import load_model
from magnet_st.pretrained import model_from_adapter


def stsb_dev(model, data_dir: str | None) -> float:
    pairs = read_stsb(dataset_file(data_dir, "stsbenchmark", "sts-dev.csv"))
    first = model.encode(pairs["sentence1"], normalize_embeddings=True, batch_size=32)
    second = model.encode(pairs["sentence2"], normalize_embeddings=True, batch_size=32)
    return 100 * float(spearmanr((first * second).sum(axis=1), pairs["score"]).statistic)


def measure(model, data_dir: str | None, infill_limit: int, lama_per_relation: int) -> dict[str, float]:
    row = {"stsb_dev": stsb_dev(model, data_dir)}
    for dataset in ("rocstories", "wikipedia"):
        for context in ("both", "left"):
            result = evaluate_infilling(
                model, data_dir, dataset=dataset, context=context, limit=infill_limit, auto_length_limit=0
            )
            row[f"{dataset}_{context}_ppl"] = result["perplexity"]
    lama = evaluate_knowledge(model, data_dir, limit_per_relation=lama_per_relation)
    row["lama_p1"] = lama["micro_precision_at_1"]
    row["lama_facts"] = sum(lama["facts"].values())
    return row


def plot(curve: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted(curve, key=int)
    x = [int(step) for step in steps]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    axes[0].plot(x, [curve[s]["stsb_dev"] for s in steps], marker="o")
    axes[0].set_title("STS-B dev, Spearman x100")
    for dataset, axis in zip(("rocstories", "wikipedia"), axes[1:]):
        for context, style in (("both", "-o"), ("left", "--s")):
            axis.plot(x, [curve[s][f"{dataset}_{context}_ppl"] for s in steps], style, label=f"{context} context")
        axis.set_yscale("log")
        axis.set_title(f"{dataset}: span perplexity")
        axis.legend()
    for axis in axes:
        axis.set_xlabel("training step")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapters", nargs="*", type=Path, help="adapter folders named step-N")
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--out", type=Path, default=Path("curve.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--infill-limit", type=int, default=200)
    parser.add_argument("--lama-per-relation", type=int, default=100)
    parser.add_argument("--no-base", action="store_true", help="skip step 0 (the unadapted base)")
    args = parser.parse_args(argv)
    curve = json.loads(args.out.read_text()) if args.out.is_file() else {}
    todo = [] if args.no_base else [("0", None)]
    todo += [(folder.name.split("-")[1], folder) for folder in args.adapters]
    for step, adapter in todo:
        if step in curve:
            continue
        model = load_model(args.base) if adapter is None else model_from_adapter(args.base, adapter)
        model.eval()
        curve[step] = measure(model, args.data, args.infill_limit, args.lama_per_relation)
        print(step, json.dumps(curve[step]), flush=True)
        args.out.write_text(json.dumps(curve, indent=2) + "\n")
    if args.plot:
        plot(curve, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
