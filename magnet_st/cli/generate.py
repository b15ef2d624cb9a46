"""`magnet-st generate MODEL "prompt"`: ordinary left-to-right generation (causal attention), streamed."""

from __future__ import annotations

import argparse
import sys

from magnet_st.cli.output import status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate")
    parser.add_argument("model", help="embedded base name, decoder folder or saved MAGNET model")
    parser.add_argument("prompt", help="the prompt to continue")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--chat", action="store_true", help="render the prompt through the chat template")
    parser.add_argument("--system", default=None, help="system message (with --chat)")
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-stream", action="store_true", help="print the text at the end instead of streaming")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    options = {"do_sample": args.sample}
    for name in ("temperature", "top_k", "top_p"):
        value = getattr(args, name)
        if value is not None:
            if not args.sample:
                raise ValueError(f"`--{name.replace('_', '-')}` needs `--sample`.")
            options[name] = value
    status(f"Loading {args.model} ...")
    from magnet_st import load_model
    from magnet_st.generation import generate

    model = load_model(args.model)
    kwargs = dict(
        max_new_tokens=args.max_new_tokens, chat_template=args.chat, system_prompt=args.system, seed=args.seed
    )
    if args.no_stream:
        print(generate(model, args.prompt, **kwargs, **options))
        return 0
    for piece in generate(model, args.prompt, stream=True, **kwargs, **options):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
