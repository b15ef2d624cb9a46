"""`magnet-st train`: adapt a decoder with a recipe (MAGNET by default)."""

from __future__ import annotations

import argparse

from magnet_st.cli.output import status
from magnet_st.precision import PRECISIONS
from magnet_st.train_config import DROPOUT_SCOPES, RECIPE_DESCRIPTIONS, TrainConfig


def add_training_arguments(parser: argparse.ArgumentParser, defaults: TrainConfig | None = None) -> None:
    d = defaults or TrainConfig(data="", output_dir="")
    parser.add_argument(
        "--base", default=d.base, help="embedded base name or local decoder folder (default: %(default)s)"
    )
    parser.add_argument(
        "--recipe", default=d.recipe, choices=sorted(RECIPE_DESCRIPTIONS), help="training recipe (default: %(default)s)"
    )
    parser.add_argument(
        "--objectives", default=None, help="comma-separated objectives to train alone, e.g. mntp,msg (weight 1 each)"
    )
    parser.add_argument("--mntp-weight", type=float, default=None, help="fixed MNTP weight (default: the recipe's)")
    parser.add_argument("--sscl-weight", type=float, default=None, help="fixed SSCL weight (default: the recipe's)")
    parser.add_argument("--msg-weight", type=float, default=None, help="fixed MSG weight (default: the recipe's)")
    parser.add_argument(
        "--sentence-span-rate",
        type=float,
        default=None,
        help="fraction of multi-sentence texts whose span is one whole sentence (default: the recipe's)",
    )
    parser.add_argument(
        "--dropout-scope",
        default=d.dropout_scope,
        choices=DROPOUT_SCOPES,
        help="attention dropout on the contrastive pass only, or on every pass (default: %(default)s)",
    )
    parser.add_argument("--steps", type=int, default=d.max_steps, help="optimizer steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="texts per step (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate, help="(default: %(default)s)")
    parser.add_argument(
        "--max-seq-length", type=int, default=d.max_seq_length, help="tokens per text (default: %(default)s)"
    )
    parser.add_argument("--max-texts", type=int, default=d.max_texts, help="use only the first N texts")
    parser.add_argument("--full-finetune", action="store_true", help="train all weights instead of LoRA")
    parser.add_argument("--lora-r", type=int, default=d.lora_r, help="LoRA rank (default: %(default)s)")
    parser.add_argument(
        "--lora-dropout", type=float, default=d.lora_dropout, help="dropout on LoRA inputs (default: %(default)s)"
    )
    parser.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=d.gradient_checkpointing,
        help="recompute activations in the backward pass: less memory (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=d.checkpoint_every,
        help="with --gradient-checkpointing, recompute every N-th layer only (default: %(default)s, all)",
    )
    parser.add_argument(
        "--precision",
        default=d.precision,
        choices=PRECISIONS,
        help=(
            "auto: bf16 mixed precision on GPUs that support it and on CPUs with native bf16 where a timed pass "
            "shows it faster; else fp32 (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--save-steps", type=int, default=d.save_steps, help="checkpoint every N steps (default: %(default)s)"
    )
    parser.add_argument("--logging-steps", type=int, default=d.logging_steps, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint of this output")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train again into an existing output: its model files are replaced, other files stay",
    )
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep OUTPUT-checkpoints after a finished run")


def config_from_args(args: argparse.Namespace, data: str, output_dir: str, **extra) -> TrainConfig:
    return TrainConfig(
        data=data,
        output_dir=output_dir,
        base=args.base,
        recipe=args.recipe,
        objectives=[name.strip() for name in args.objectives.split(",")] if args.objectives else None,
        mntp_weight=args.mntp_weight,
        sscl_weight=args.sscl_weight,
        msg_weight=args.msg_weight,
        sentence_span_rate=args.sentence_span_rate,
        dropout_scope=args.dropout_scope,
        max_steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_seq_length=args.max_seq_length,
        max_texts=args.max_texts,
        lora=not args.full_finetune,
        lora_r=args.lora_r,
        lora_dropout=args.lora_dropout,
        gradient_checkpointing=args.gradient_checkpointing,
        checkpoint_every=args.checkpoint_every,
        precision=args.precision,
        save_steps=args.save_steps,
        logging_steps=args.logging_steps,
        seed=args.seed,
        resume=args.resume,
        overwrite=args.overwrite,
        keep_checkpoints=args.keep_checkpoints,
        **extra,
    )


def recipes_epilog() -> str:
    """The recipes, one line each, for the end of a subcommand's help."""
    return "recipes:\n" + "\n".join(f"  {name:9s} {text}" for name, text in RECIPE_DESCRIPTIONS.items())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", epilog=recipes_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="a .txt file (one text per line) or a CSV/JSON/Parquet file")
    parser.add_argument("--output", required=True, help="folder for the adapted model")
    parser.add_argument("--text-column", default="text", help="text column of a table file (default: %(default)s)")
    parser.add_argument("--positive-column", default=None, help="paraphrase column used as the contrastive positive")
    add_training_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(
        args, args.data, args.output, text_column=args.text_column, positive_column=args.positive_column
    )
    status(f"Training {config.base} with the {config.recipe} recipe on {config.data} ...")
    from magnet_st.training.train import train

    train(config)
    print(f"Saved the adapted model to {args.output}")
    return 0
