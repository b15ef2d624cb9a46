"""Learning curve of a training run from its adapter snapshots (`run.py` keeps them as `adapters/step-N`).

    python evaluation/reference/curve.py WORK/adapters/step-* --out curve.json --plot curve.png

Per snapshot (and the unadapted base as step 0): STS-B dev Spearman x100 (all pairs, MAGNET's reading), span
perplexity with both contexts and with the left one only on ROCStories and Wikipedia, and LAMA P@1, each with
its 95% bootstrap interval. Finished steps are kept in `--out` and skipped on a rerun; the per-example
statistics go to `--examples`, and `--claims STEP` compares that step with the base on the same examples
(paired bootstrap): the infilling ratios of the issue's claims and the changes of left-only perplexity and LAMA.
`--stsb-test` adds STS-B test (all 1,379 pairs, with its interval) to the rows of the steps given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from magnet_st.data.paths import dataset_file
from magnet_st.data.sts import read_stsb
from magnet_st.evaluation.bootstrap import paired_interval, record_interval, record_score
from magnet_st.evaluation.infilling import evaluate_infilling
from magnet_st.evaluation.knowledge import evaluate_knowledge
from magnet_st.evaluation.sentence import sts_pairs_record
from magnet_st.model import load_model
from magnet_st.pretrained import model_from_adapter


def stsb(model, data_dir: str | None, split: str = "dev") -> dict:
    """Per-pair record of STS-B `split` (all pairs), Spearman x100 of MAGNET's reading."""
    return sts_pairs_record(model, read_stsb(dataset_file(data_dir, "stsbenchmark", f"sts-{split}.csv")))


def measure(model, data_dir: str | None, infill_limit: int, lama_per_relation: int) -> tuple[dict, dict]:
    """The curve's row (scores and intervals) and the per-example records behind it."""
    records = {"stsb_dev": stsb(model, data_dir)}
    for dataset in ("rocstories", "wikipedia"):
        for context in ("both", "left"):
            result = evaluate_infilling(
                model, data_dir, dataset=dataset, context=context, limit=infill_limit, auto_length_limit=0
            )
            records[f"{dataset}_{context}_ppl"] = result["per_example"]["perplexity"]
    lama = evaluate_knowledge(model, data_dir, limit_per_relation=lama_per_relation)
    records["lama_p1"] = lama["per_example"]["micro"]
    row = {}
    for name, record in records.items():
        row[name] = record_score(record)
        row[f"{name}_interval"] = record_interval(record)
    row["lama_facts"] = records["lama_p1"]["examples"]
    return row, records


CLAIMS = (  # (what, first record, second record, difference or ratio); "base:" reads step 0
    ("ROCStories both / base left", "rocstories_both_ppl", "base:rocstories_left_ppl", "ratio"),
    ("ROCStories both / own left", "rocstories_both_ppl", "rocstories_left_ppl", "ratio"),
    ("Wikipedia both / base left", "wikipedia_both_ppl", "base:wikipedia_left_ppl", "ratio"),
    ("Wikipedia both / own left", "wikipedia_both_ppl", "wikipedia_left_ppl", "ratio"),
    ("ROCStories left / base left", "rocstories_left_ppl", "base:rocstories_left_ppl", "ratio"),
    ("Wikipedia left / base left", "wikipedia_left_ppl", "base:wikipedia_left_ppl", "ratio"),
    ("LAMA P@1 - base", "lama_p1", "base:lama_p1", "difference"),
    ("STS-B dev - base", "stsb_dev", "base:stsb_dev", "difference"),
)


def claims(examples: dict[str, dict], step: str) -> list[dict]:
    rows = []
    for what, first, second, combine in CLAIMS:
        other = examples["0"][second[5:]] if second.startswith("base:") else examples[step][second]
        rows.append({"claim": what, **paired_interval(examples[step][first], other, combine)})
    return rows


def versus(examples: dict[str, dict], step: str, other: dict[str, dict], other_step: str, label: str) -> list[dict]:
    """Every metric both runs measured, this run's `step` against `other`'s `other_step`, paired on examples.

    Perplexities compare as a ratio (this / other), scores as a difference (this - other).
    """
    mine, theirs = examples[step], other[other_step]
    rows = []
    for name in (name for name in mine if name in theirs):
        combine = "ratio" if name.endswith("_ppl") else "difference"
        rows.append({"claim": f"{name}: {label}", **paired_interval(mine[name], theirs[name], combine)})
    return rows


def _with_errors(axis, curve: dict[str, dict], steps: list[str], key: str, style: str, label: str | None = None):
    """One series with its 95% intervals as error bars (none where a step was measured without them)."""
    values = [curve[step][key] for step in steps]
    intervals = [curve[step].get(f"{key}_interval") or [value, value] for step, value in zip(steps, values)]
    below = [value - low for value, (low, _) in zip(values, intervals)]
    above = [high - value for value, (_, high) in zip(values, intervals)]
    axis.errorbar([int(step) for step in steps], values, yerr=[below, above], fmt=style, capsize=3, label=label)


def plot(curve: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted(curve, key=int)
    figure, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    _with_errors(axes[0], curve, steps, "stsb_dev", "-o")
    axes[0].set_title("STS-B dev, Spearman x100")
    for dataset, axis in zip(("rocstories", "wikipedia"), axes[1:3]):
        for context, style in (("both", "-o"), ("left", "--s")):
            _with_errors(axis, curve, steps, f"{dataset}_{context}_ppl", style, label=f"{context} context")
        axis.set_yscale("log")
        axis.set_title(f"{dataset}: span perplexity")
        axis.legend()
    _with_errors(axes[3], curve, steps, "lama_p1", "-o")
    axes[3].set_title("LAMA P@1 (%)")
    for axis in axes:
        axis.set_xlabel("training step")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("adapters", nargs="*", type=Path, help="adapter folders named step-N")
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument(
        "--pooling", choices=("lasttoken", "mean"), default="lasttoken", help="mean for the llm2vec recipe's runs"
    )
    parser.add_argument("--out", type=Path, default=Path("curve.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--data", default=None)
    parser.add_argument("--infill-limit", type=int, default=200)
    parser.add_argument("--lama-per-relation", type=int, default=100)
    parser.add_argument("--no-base", action="store_true", help="skip step 0 (the unadapted base)")
    parser.add_argument("--examples", type=Path, default=Path("curve_examples.json"))
    parser.add_argument("--claims", default=None, help="a measured step to compare with the base (paired)")
    parser.add_argument(
        "--stsb-test", action="store_true", help="also score STS-B test (all pairs) for the steps given, once each"
    )
    parser.add_argument(
        "--versus",
        nargs=3,
        metavar=("STEP", "OTHER_EXAMPLES", "OTHER_STEP"),
        default=None,
        help="compare STEP of this curve with OTHER_STEP of another run's --examples file (paired)",
    )
    args = parser.parse_args(argv)
    other = None
    if args.versus:  # checked before any measuring
        other_file, other_step = Path(args.versus[1]), args.versus[2]
        if not other_file.is_file():
            parser.error(f"--versus: no examples file {str(other_file)!r}")
        other = json.loads(other_file.read_text())
        if other_step not in other:
            parser.error(f"--versus: {str(other_file)!r} has no step {other_step!r} (it has {sorted(other, key=int)})")
    curve = json.loads(args.out.read_text()) if args.out.is_file() else {}
    examples = json.loads(args.examples.read_text()) if args.examples.is_file() else {}
    todo = [] if args.no_base else [("0", None)]
    todo += [(folder.name.split("-")[1], folder) for folder in args.adapters]
    for step, adapter in todo:
        test_missing = args.stsb_test and "stsb_test" not in curve.get(step, {})
        if step in curve and not test_missing:
            continue
        if adapter is None:
            model = load_model(args.base, pooling=args.pooling)
        else:
            model = model_from_adapter(args.base, adapter, pooling=args.pooling)
        model.eval()
        if step not in curve:
            curve[step], examples[step] = measure(model, args.data, args.infill_limit, args.lama_per_relation)
        if test_missing:  # the test split the claims report
            record = examples.setdefault(step, {})["stsb_test"] = stsb(model, args.data, "test")
            curve[step].update(stsb_test=record_score(record), stsb_test_interval=record_interval(record))
        print(step, json.dumps(curve[step]), flush=True)
        args.out.write_text(json.dumps(curve, indent=2) + "\n")
        args.examples.write_text(json.dumps(examples))
    if args.claims:
        for row in claims(examples, args.claims):
            print(json.dumps(row))
    if args.versus:
        step, other_file, other_step = args.versus
        if step not in examples:
            parser.error(f"--versus: step {step!r} is not measured here (measured: {sorted(examples, key=int)})")
        for row in versus(examples, step, other, other_step, f"step {step} vs {other_file} step {other_step}"):
            print(json.dumps(row))
    if args.plot:
        plot(curve, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
