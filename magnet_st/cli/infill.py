"""`magnet-st infill MODEL "text with [BLANK] in it"`: fill the blanks from both sides."""

from __future__ import annotations

import argparse
import json

from magnet_st.cli.output import status

# Options left out of the command line take `InfillOptions`' defaults, so parsing imports no model code.
LIBRARY_DEFAULT = {"default": argparse.SUPPRESS}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("infill")
    parser.add_argument("model", help="embedded base name, decoder folder or saved MAGNET model")
    parser.add_argument("texts", nargs="+", help="texts with one or more blank markers (see --blank)")
    parser.add_argument("--length", type=int, nargs="+", default=None, help="tokens per blank (one, or one per blank)")
    parser.add_argument("--max-auto-length", type=int, **LIBRARY_DEFAULT, help="longest automatic fill, in tokens")
    parser.add_argument(
        "--phrase-lengths",
        type=int,
        nargs="+",
        **LIBRARY_DEFAULT,
        help="candidate lengths for an automatic blank inside a sentence",
    )
    parser.add_argument("--blank", **LIBRARY_DEFAULT, help="the blank marker (default: [BLANK])")
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--candidates", type=int, default=1, help="candidate fillings per text (with --sample)")
    parser.add_argument("--json", action="store_true", help="print every candidate, fill and score as JSON lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    length = None
    if args.length is not None:
        length = args.length[0] if len(args.length) == 1 else args.length
    status(f"Loading {args.model} ...")
    from magnet_st import load_model
    from magnet_st.generation import infill

    model = load_model(args.model)
    given = {name: getattr(args, name) for name in ("blank", "max_auto_length", "phrase_lengths") if name in args}
    results = infill(
        model,
        args.texts,
        length=length,
        **given,
        do_sample=args.sample,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        num_candidates=args.candidates,
    )
    for result in results:
        if not args.json:
            print(result.text)
            continue
        candidates = [
            {
                "text": candidate.text,
                "score": candidate.score,
                "fills": [
                    {"text": fill.text, "length": fill.length, "automatic": fill.auto_length, "score": fill.score}
                    for fill in candidate.fills
                ],
            }
            for candidate in result.candidates
        ]
        print(json.dumps({"text": result.text, "candidates": candidates}))
    return 0
