"""The `magnet-st` command: parsing needs no heavy library, each subcommand loads only itself, no library noise."""

import argparse
import importlib.machinery
import re
import subprocess
import sys
import time
import types
import warnings

import pytest

import magnet_st.cli as cli
from magnet_st.cli import COMMANDS, build_parser
from magnet_st.cli.output import silence_library_noise

HEAVY = ("torch", "transformers", "sentence_transformers")
LIGHT_COMMANDS = {
    "encode": ["encode", "model", "a text"],
    "infill": ["infill", "model", "a [BLANK] text"],
    "generate": ["generate", "model", "a prompt"],
    "tag": ["tag", "model", "a text"],
    "corpus": ["corpus", "--out", "corpus.txt"],
    "export-onnx": ["export-onnx", "model"],
}


def imported_after(code: str) -> list[str]:
    """The heavy libraries that a fresh interpreter has imported after running `code`."""
    probe = f"import sys\n{code}\nprint(sorted(n for n in {HEAVY!r} if n in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(result.stdout.strip().splitlines()[-1])


def test_parsing_light_subcommands_imports_no_heavy_library():
    parses = "\n".join(f"parser.parse_args({argv!r})" for argv in LIGHT_COMMANDS.values())
    code = f"import magnet_st\nfrom magnet_st.cli import build_parser\nparser = build_parser()\n{parses}"
    assert imported_after(code) == []


def test_top_level_help_is_fast_and_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "magnet_st.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    for command, (_, help_line) in COMMANDS.items():
        assert command in result.stdout and help_line.split()[0] in result.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_loads_its_own_arguments(command):
    parser = build_parser()
    subparser = parser._subparsers._group_actions[0].choices[command]
    help_text = subparser.format_help()
    assert help_text.startswith(f"usage: magnet-st {command} ") and "--help" in help_text
    assert len(subparser._actions) > 1  # the module added its arguments


def test_infill_passes_only_the_options_given_so_the_library_defaults_apply():
    from magnet_st.generation.layout import BLANK

    parser = build_parser()
    args = parser.parse_args(["infill", "model", "a [BLANK] text"])
    assert not {"blank", "max_auto_length", "phrase_lengths"} & set(vars(args))
    args = parser.parse_args(["infill", "model", "a __ text", "--blank", "__", "--phrase-lengths", "2", "3"])
    assert args.blank == "__" and args.phrase_lengths == [2, 3]
    infill_parser = parser._subparsers._group_actions[0].choices["infill"]
    assert f"(default: {BLANK})" in infill_parser.format_help()


def fake_command(monkeypatch, register):
    """Lists a subcommand `fake` whose module is `register`'s only content."""
    name = "magnet_st.cli.fake"
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.register = register
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(COMMANDS, "fake", ("fake", "a fake command"))


def test_a_slow_subcommand_says_it_is_loading(monkeypatch, capsys):
    def register(subparsers: argparse._SubParsersAction) -> None:
        time.sleep(0.5)  # stands in for importing torch
        subparsers.add_parser("fake", help="ignored", description="a fake").add_argument("--flag", action="store_true")

    fake_command(monkeypatch, register)
    monkeypatch.setattr(cli, "LOADING_NOTICE_AFTER_S", 0.05)
    assert build_parser().parse_args(["fake", "--flag"]).flag
    assert capsys.readouterr().err == "magnet-st fake: loading ...\n"


def test_a_fast_subcommand_prints_nothing_while_loading(monkeypatch, capsys):
    fake_command(monkeypatch, lambda subparsers: subparsers.add_parser("fake").add_argument("--flag"))
    assert build_parser().parse_args(["fake", "--flag", "x"]).flag == "x"
    assert capsys.readouterr().err == ""


def test_a_module_registering_another_command_is_an_error(monkeypatch):
    fake_command(monkeypatch, lambda subparsers: subparsers.add_parser("other"))
    with pytest.raises(ValueError, match="fake"):
        build_parser().parse_args(["fake"])


def test_noise_filter_is_narrow():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_library_noise()
        warnings.warn(
            "`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning, stacklevel=1
        )
        warnings.warn("something else is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("`is_gradient_checkpointing` is deprecated", UserWarning, stacklevel=1)
    assert [(w.category, str(w.message)) for w in caught] == [
        (FutureWarning, "something else is deprecated"),
        (UserWarning, "`is_gradient_checkpointing` is deprecated"),
    ]


def test_cli_train_prints_no_library_warnings(tiny_decoder_dir, tmp_path):
    data = tmp_path / "texts.txt"
    data.write_text("\n".join(f"Sentence {i} tells of a cat that sat on the mat." for i in range(16)) + "\n")
    command = [sys.executable, "-m", "magnet_st.cli", "train", "--data", str(data), "--output", str(tmp_path / "out")]
    options = ["--base", tiny_decoder_dir, "--steps", "2", "--batch-size", "4", "--max-seq-length", "32"]
    result = subprocess.run(command + options, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Saved the adapted model" in result.stdout
    assert not re.search(r"\w*Warning\b|pin_memory", result.stderr), result.stderr
