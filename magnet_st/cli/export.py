"""`magnet-st export-onnx MODEL_DIR`: write `onnx/model.onnx` and a per-token int8 copy into a saved model folder."""

from __future__ import annotations

import argparse

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export-onnx")
    parser.add_argument("model", help="folder saved by model.save() or `magnet-st train`")
    parser.add_argument("--no-quantize", action="store_true", help="write only the fp32 file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    status(f"Exporting {args.model} to ONNX ...")
    from magnet_st.backends import export_onnx

    for file in export_onnx(args.model, quantize=not args.no_quantize):
        print(file)
    return 0
