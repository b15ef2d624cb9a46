"""`magnet-st export MODEL DIR`: write a pretrained or saved MAGNET model as a plain sentence-transformers folder."""

from __future__ import annotations

import argparse

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export")
    parser.add_argument("model", help="a pretrained model name (magnet-smollm2-135m) or a saved MAGNET folder")
    parser.add_argument("output", help="folder to write (loads with SentenceTransformer(output))")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    status(f"Loading {args.model} ...")
    from magnet_st import load_model

    model = load_model(args.model)
    model.save(args.output)
    print(args.output)
    return 0
