"""`magnet-st encode MODEL TEXT...`: print embeddings (JSON lines) or their cosine similarities."""

from __future__ import annotations

import argparse
import json

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("encode")
    parser.add_argument("model", help="embedded base name, decoder folder or saved MAGNET model")
    parser.add_argument("texts", nargs="+", help="texts to embed")
    parser.add_argument("--attention-mode", default=None, choices=["bidirectional", "causal"])
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx"], help="onnx: a saved, exported model")
    parser.add_argument("--onnx-file", default=None, help="ONNX file in the model folder (default onnx/model.onnx)")
    parser.add_argument("--similarity", action="store_true", help="print the cosine similarity matrix instead")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.onnx_file and args.backend != "onnx":
        raise ValueError("`--onnx-file` needs `--backend onnx`.")
    status(f"Loading {args.model} ...")
    from magnet_st import load_model

    model_kwargs = {"file_name": args.onnx_file} if args.onnx_file else None
    model = load_model(args.model, backend=args.backend, model_kwargs=model_kwargs)
    kwargs = {"attention_mode": args.attention_mode} if args.attention_mode else {}
    embeddings = model.encode(args.texts, convert_to_tensor=True, **kwargs)
    if args.similarity:
        for row in model.similarity(embeddings, embeddings).tolist():
            print(" ".join(f"{value:.4f}" for value in row))
    else:
        for text, vector in zip(args.texts, embeddings.tolist()):
            print(json.dumps({"text": text, "embedding": vector}))
    return 0
