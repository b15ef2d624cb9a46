"""`magnet-st eval MODEL [--baseline MODEL ...]`: the evaluation suite -> results.json, results.md, plots."""

from __future__ import annotations

import argparse
import shlex
import sys

from magnet_st.cli.output import status
from magnet_st.evaluation.parts import PARTS
from magnet_st.evaluation.sizes import SIZES
from magnet_st.model_names import DEFAULT_BASE_MODEL


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        description=(
            f"Models are NAME_OR_PATH[@ATTENTION[/POOLING]]: an embedded base ({DEFAULT_BASE_MODEL}, encoded "
            "causal/mean unless told), a decoder or saved MAGNET folder, 'minilm' (all-MiniLM-L6-v2) or 'tiny' (a "
            "tiny random decoder, for smoke runs). Example: magnet-st eval ./magnet-llama --baseline "
            f"{DEFAULT_BASE_MODEL} --baseline minilm --suite paper"
        ),
    )
    parser.add_argument("model", nargs="?", help="the model to evaluate (first column of the table)")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help="instead of evaluating, merge the results.json of earlier runs (one per model) into one table in --out",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="DIR",
        help="instead of evaluating, compare the models of earlier runs on the same examples (paired bootstrap): "
        "writes comparison.md and comparison.json to --out",
    )
    parser.add_argument("--reference", default=None, help="with --compare: the model label others are compared to")
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model to compare against (repeatable; one column each)",
    )
    parser.add_argument("--suite", choices=list(SIZES), default="smoke", help="data sizes (default: smoke)")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS), help="parts to run")
    parser.add_argument("--data", default=None, help="data folder (default: $MAGNET_ST_DATA or ../shared/datasets)")
    parser.add_argument("--out", default="eval-results", help="output folder (default: eval-results)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sts-variants",
        action="store_true",
        help="also score STS under causal/bidirectional x mean/last-token (decoder models)",
    )
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the parts an earlier run with the same settings wrote to --out/results.json; run only the rest",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.compare:
        status(f"Comparing {len(args.compare)} runs ...")
        from magnet_st.evaluation.compare import comparison_markdown, write_comparison

        print(comparison_markdown(write_comparison(args.compare, args.out, args.reference)))
        return 0
    if args.merge is None and args.model is None:
        raise ValueError("`model` is missing: give the model to evaluate (or --merge DIR ...).")
    status(
        f"Merging {len(args.merge)} runs ..."
        if args.merge
        else f"Evaluating {', '.join([args.model, *args.baseline])} ({args.suite} suite) ..."
    )
    from magnet_st.evaluation.report import markdown_table
    from magnet_st.evaluation.suite import SuiteConfig, merge_results, run_suite

    if args.merge:
        print(markdown_table(merge_results(args.merge, args.out)))
        return 0

    config = SuiteConfig(
        models=[args.model, *args.baseline],
        suite=args.suite,
        parts=list(dict.fromkeys(args.parts)),
        data_dir=args.data,
        out_dir=args.out,
        seed=args.seed,
        sts_variants=args.sts_variants,
        max_seq_length=args.max_seq_length,
        resume=args.resume,
    )
    command = "magnet-st " + " ".join(shlex.quote(arg) for arg in sys.argv[1:]) if sys.argv[1:2] == ["eval"] else None
    results = run_suite(config, command=command)
    print(markdown_table(results))
    print(f"\nWrote {args.out}/results.json, results.md, {len(results.get('plots', []))} plots and mteb/ results.")
    return 0
