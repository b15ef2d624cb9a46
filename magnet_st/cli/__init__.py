"""The `magnet-st` command: one subcommand per file in this package, each exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order `--help` lists them. A module that is absent is skipped.
SUBCOMMANDS = ["quickstart", "encode", "corpus", "train", "infill", "generate", "tag", "eval", "export"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magnet-st", description="MAGNET for sentence-transformers.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"magnet_st.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"magnet_st.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ModuleNotFoundError) as error:
        # Bad input: one clear line, no traceback.
        print(f"magnet-st {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
