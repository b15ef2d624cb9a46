"""The `magnet-st` command: parsing needs no heavy library, each subcommand loads only itself, no library noise."""

import argparse
import importlib.machinery
import os
import re
import subprocess
import sys
import time
import types
import warnings
from pathlib import Path

import pytest

import magnet_st.cli as cli
from magnet_st.cli import COMMANDS, build_parser
from magnet_st.cli.output import silence_library_noise

HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "mteb")
# One valid command line per subcommand (nothing runs: these are only parsed).
EVERY_COMMAND = {
    "quickstart": ["quickstart", "--recipe", "llm2vec", "--time-budget", "2"],
    "encode": ["encode", "model", "a text"],
    "corpus": ["corpus", "--out", "corpus.txt"],
    "train": ["train", "--data", "texts.txt", "--output", "out", "--recipe", "mntp", "--precision", "fp32"],
    "infill": ["infill", "model", "a [BLANK] text"],
    "generate": ["generate", "model", "a prompt"],
    "tag": ["tag", "model", "a text"],
    "eval": ["eval", "model", "--suite", "paper", "--parts", "word", "knowledge"],
    "export": ["export", "model", "out"],
    "export-onnx": ["export-onnx", "model"],
    "export-tagger": ["export-tagger", "model", "out"],
}
# A run of each subcommand that needs the heavy libraries: the line it prints before importing them.
FIRST_LINES = {
    # Run from an empty folder without $MAGNET_ST_DATA: the quick start first says it uses the packaged sample.
    "quickstart": (["quickstart", "--output", "{tmp}/qs"], "No data folder found: using the packaged sample"),
    "encode": (["encode", "model", "a text"], "Loading model ..."),
    "train": (["train", "--data", "texts.txt", "--output", "{tmp}/out"], "Training smollm2-135m with the magnet"),
    "infill": (["infill", "model", "a [BLANK] text"], "Loading model ..."),
    "generate": (["generate", "model", "a prompt"], "Loading model ..."),
    "tag": (["tag", "model", "a text"], "Loading model ..."),
    "eval": (["eval", "model", "--baseline", "tiny"], "Evaluating model, tiny (smoke suite) ..."),
    "export": (["export", "model", "{tmp}/out"], "Loading model ..."),
    "export-onnx": (["export-onnx", "model"], "Exporting model to ONNX ..."),
    "export-tagger": (["export-tagger", "model", "{tmp}/out"], "Exporting the tagger in model ..."),
}


def imported_after(code: str) -> list[str]:
    """The heavy libraries that a fresh interpreter has imported after running `code`."""
    probe = f"import sys\n{code}\nprint(sorted(n for n in {HEAVY!r} if n in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(result.stdout.strip().splitlines()[-1])


def test_every_command_is_checked():
    assert set(EVERY_COMMAND) == set(COMMANDS)
    assert set(FIRST_LINES) == set(COMMANDS) - {"corpus"}  # corpus needs no heavy library at all


@pytest.mark.parametrize("command", list(COMMANDS))
def test_parsing_and_help_of_every_command_import_no_heavy_library(command):
    code = (
        "from magnet_st.cli import build_parser\n"
        "parser = build_parser()\n"
        f"parser.parse_args({EVERY_COMMAND[command]!r})\n"
        f"assert parser._subparsers._group_actions[0].choices[{command!r}].format_help()\n"
        "parser.format_help()"
    )
    assert imported_after(code) == []


@pytest.mark.parametrize("command", list(FIRST_LINES))
def test_every_command_prints_its_first_line_before_the_heavy_imports(command, tmp_path):
    """With the heavy libraries blocked, the command prints its first line, then fails on the first heavy import."""
    argv, first_line = FIRST_LINES[command]
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    probe = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({HEAVY!r}))  # importing any of them now raises ModuleNotFoundError\n"
        "from magnet_st.cli import main\n"
        f"sys.exit(main({argv!r}))"
    )
    checkout = str(Path(cli.__file__).parents[2])  # this magnet_st, not an installed one, from inside tmp_path
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")])))
    environment.pop("MAGNET_ST_DATA", None)  # the same first lines with or without a data folder configured
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 2, result.stdout
    assert lines[0].lstrip().startswith(first_line), result.stdout
    assert lines[-1].startswith(f"magnet-st {command}: error: import of ") and "halted" in lines[-1]


def test_command_line_choices_are_the_libraries_own():
    from magnet_st.cli.train import add_training_arguments
    from magnet_st.evaluation.parts import EVALUATION_PARTS
    from magnet_st.evaluation.sizes import SIZES
    from magnet_st.training import RECIPES, TrainConfig
    from magnet_st.training.budget import BUDGET_STEP_CAP
    from magnet_st.training.train import TrainConfig as TrainConfigOfTrain

    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    recipe = next(action for action in parser._actions if action.dest == "recipe")
    assert sorted(recipe.choices) == sorted(RECIPES) and recipe.default == TrainConfig("", "").recipe
    assert {name: r.description for name, r in RECIPES.items()} == cli_recipes()
    assert TrainConfig is TrainConfigOfTrain and BUDGET_STEP_CAP == 100_000
    for suite, sizes in SIZES.items():
        assert set(sizes) == {part.name for part in EVALUATION_PARTS}, suite


def cli_recipes() -> dict[str, str]:
    """The recipes as `magnet-st train --help` lists them."""
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    listed = help_text.split("recipes:\n", 1)[1].splitlines()
    return dict(line.strip().split(maxsplit=1) for line in listed if line.strip())


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
