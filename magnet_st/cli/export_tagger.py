"""`magnet-st export-tagger TAGGER_DIR OUT_DIR`: a saved tagger as a transformers token-classification folder."""

from __future__ import annotations

import argparse

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-tagger",
        description="Write a saved MAGNET tagger (alignment 'first') as a transformers token-classification "
        "checkpoint: AutoModelForTokenClassification and pipeline('token-classification') load it.",
    )
    parser.add_argument("model", help="tagger folder saved by model.save() after train_probe or finetune_lora")
    parser.add_argument("output", help="folder to write (replaced if it exists)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    status(f"Exporting the tagger in {args.model} ...")
    from magnet_st.tagging.export import export_tagger

    print(export_tagger(args.model, args.output))
    return 0
