"""The `magnet-st` command: one subcommand per file in this package, each exposing `register(subparsers)`.

A subcommand's module is imported only when that subcommand is parsed or its help is shown, so `magnet-st --help`
and the parsing of one subcommand never pay for the others' imports (torch, transformers, sentence-transformers).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import threading
import warnings
from typing import Any

from magnet_st.cli.output import silence_library_noise, status

# Subcommand -> (module in this package, one-line help), in the order `--help` lists them.
# A module that is absent is skipped.
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": ("quickstart", "adapt SmolLM2-135M with MAGNET into ./magnet-llama, then try it"),
    "encode": ("encode", "embed texts with a MAGNET model"),
    "corpus": ("corpus", "build the training corpus (sentences and passages) from local data"),
    "train": ("train", "adapt a decoder with MAGNET (or another recipe)"),
    "infill": ("infill", "fill [BLANK]s using left and right context (MAGNET)"),
    "generate": ("generate", "continue a prompt left to right (causal attention)"),
    "tag": ("tag", "tag words (NER, chunking, POS) with a saved MAGNET tagger"),
    "eval": ("eval", "evaluate models on every MAGNET claim (sentence, word, infilling, generation, knowledge)"),
    "export": ("export_model", "write a pretrained or saved MAGNET model as a plain sentence-transformers folder"),
    "export-onnx": ("export", "export a saved MAGNET model to ONNX (fp32 and int8)"),
    "export-tagger": ("export_tagger", "export a saved tagger as a transformers token-classification checkpoint"),
}
# A subcommand whose arguments need the heavy libraries says so on stderr when loading takes longer than this.
LOADING_NOTICE_AFTER_S = 1.0


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser whose arguments come from its module's `register` on first use."""

    def __init__(self, *args: Any, command: str, module: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._command, self._module = command, module

    def _load(self) -> None:
        if self._module is None:
            return
        module, self._module = self._module, None
        notice = threading.Timer(LOADING_NOTICE_AFTER_S, status, [f"magnet-st {self._command}: loading ..."])
        notice.daemon = True
        notice.start()
        try:
            importlib.import_module(module).register(_OneParser(self._command, self))
        finally:
            notice.cancel()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._load()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self._load()
        return super().format_usage()

    def format_help(self) -> str:
        self._load()
        return super().format_help()


class _OneParser:
    """Stands in for the subparsers action in a module's `register`: hands back the already listed parser."""

    def __init__(self, command: str, parser: argparse.ArgumentParser) -> None:
        self.command, self.parser = command, parser

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if name != self.command:
            raise ValueError(f"module for `{self.command}` registered `{name}`")
        kwargs.pop("help", None)  # the one-line help is COMMANDS'
        for key, value in kwargs.items():  # description, epilog, formatter_class, ...
            setattr(self.parser, key, value)
        return self.parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="magnet-st", description="MAGNET for sentence-transformers.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    for command, (module, help_line) in COMMANDS.items():
        module = f"{__name__}.{module}"
        if importlib.util.find_spec(module) is not None:
            subparsers.add_parser(command, help=help_line, command=command, module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():  # the filters last for this command only
        silence_library_noise()
        args = build_parser().parse_args(argv)
        try:
            return int(args.run(args) or 0)
        except (ValueError, TypeError, OSError, ModuleNotFoundError) as error:
            # Bad input: one clear line, no traceback.
            print(f"magnet-st {args.command}: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # Ctrl-C: the command's own cleanup (e.g. a stream's thread) has run
            print(f"\nmagnet-st {args.command}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
