"""`magnet-st corpus --out FILE`: build the MAGNET training corpus from the local data sets."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("corpus")
    parser.add_argument("--out", required=True, help="text file to write, one text per line")
    parser.add_argument("--data", default=None, help="data folder (default: $MAGNET_ST_DATA or ../shared/datasets)")
    parser.add_argument("--max-passage-sentences", type=int, default=5, help="longest passage, in sentences")
    parser.add_argument("--seed", type=int, default=0, help="shuffle and passage-cut seed")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    status(f"Building the corpus into {args.out} ...")
    from magnet_st.data.corpus import CorpusConfig, build_corpus

    config = CorpusConfig(max_passage_sentences=args.max_passage_sentences, seed=args.seed)
    stats = build_corpus(args.out, args.data, config)
    print(json.dumps(asdict(stats), indent=2))
    return 0
