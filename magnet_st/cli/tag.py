"""`magnet-st tag MODEL TEXT...`: per-word labels and entity spans (JSON lines) from a saved tagger."""

from __future__ import annotations

import argparse
import json

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tag")
    parser.add_argument("model", help="folder of a MAGNET model saved with a token head")
    parser.add_argument("texts", nargs="+", help="raw texts to tag (split into words like CoNLL-2003)")
    parser.add_argument("--attention-mode", default=None, choices=["bidirectional", "causal"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--entities-only", action="store_true", help="print only the entity spans")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from magnet_st.validation import check_positive_int, check_texts

    texts = check_texts(args.texts, "texts")
    check_positive_int(args.batch_size, "--batch-size")
    status(f"Loading {args.model} ...")
    from magnet_st import load_model
    from magnet_st.tagging import find_tagger, predict

    model = load_model(args.model)
    find_tagger(model)  # a clear error before any work when the model has no head
    for result in predict(model, texts, batch_size=args.batch_size, attention_mode=args.attention_mode):
        if args.entities_only:
            result = {"text": result["text"], "entities": result.get("entities", [])}
        print(json.dumps(result, ensure_ascii=False))
    return 0
