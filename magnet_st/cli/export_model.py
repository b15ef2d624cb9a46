"""`magnet-st export MODEL DIR`: write a pretrained or saved MAGNET model as a plain sentence-transformers folder."""

from __future__ import annotations

import argparse

from magnet_st.cli.output import status
from magnet_st.model_names import REFERENCE_MODEL


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export")
    parser.add_argument("model", help=f"a pretrained model name ({REFERENCE_MODEL}) or a saved MAGNET folder")
    parser.add_argument("output", help="folder to write (loads with SentenceTransformer(output))")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    status(f"Loading {args.model} ...")
    from magnet_st import load_model

    model = load_model(args.model)
    model.save(args.output)
    print(args.output)
    return 0
