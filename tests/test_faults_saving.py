"""Faults around saving and training outputs: nothing the user owns is lost, killed writes leave nothing broken."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import magnet_st
from magnet_st.model import MagnetSentenceTransformer
from magnet_st.training import TrainConfig, train

TEXTS = [
    f"Story {i} tells of a {kind} that crossed the {place} at dawn."
    for i in range(8)
    for kind, place in [("fox", "river"), ("ship", "sea"), ("bird", "valley"), ("train", "plain")]
]
PROBE = ["The cat sat on the mat.", "Rain fell on the old town."]


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("stories")
    (folder / "stories.txt").write_text("".join(f"{text}\n" for text in TEXTS))
    return str(folder / "stories.txt")


def run_config(tiny_decoder_dir, texts_file, output, **overrides) -> dict:
    options = dict(data=texts_file, output_dir=str(output), base=tiny_decoder_dir, max_steps=4, batch_size=4)
    options.update(max_seq_length=32, learning_rate=1e-3, logging_steps=1, save_steps=2)
    # Runs compared across processes must not each time bf16 for themselves ("auto" on a busy machine).
    options.update(precision="fp32", **overrides)
    return options


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def kill_when_written(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run `script` in a fresh interpreter; kill -9 it once it prints WRITING (it then sleeps mid-write)."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    for line in process.stdout:
        if line.strip() == "WRITING":
            break
    process.kill()
    process.wait(timeout=60)
    assert process.returncode == -9, "the writer ended before it reached the write it was to be killed in"
    return process


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


# -- model.save --------------------------------------------------------------------------------------
def test_save_refuses_a_folder_of_other_files_and_keeps_them(tiny_model, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "data.csv").write_text("a,b\n")
    (project / "src").mkdir()
    with pytest.raises(FileExistsError, match="holds no saved model .*data.csv.*overwrite=True"):
        tiny_model.save(str(project))
    assert listing(project) == ["data.csv", "src"]


def test_save_with_overwrite_writes_beside_other_files(tiny_model, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "data.csv").write_text("a,b\n")
    (project / "README.md").write_text("my project")
    tiny_model.save(str(project), overwrite=True)
    assert (project / "data.csv").read_text() == "a,b\n"
    assert "MAGNET" in (project / "README.md").read_text()  # a same-named file is the model's now
    np.testing.assert_allclose(magnet_st.load_model(str(project)).encode(PROBE), tiny_model.encode(PROBE), atol=1e-6)


def test_save_over_an_earlier_save_replaces_only_that_saves_files(tiny_model, tiny_decoder_dir, tmp_path):
    target = tmp_path / "model"
    magnet_st.load_model(tiny_decoder_dir, pooling="mean").save(str(target))
    modules = json.loads((target / "modules.json").read_text())  # an earlier save with one more module
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "2_Normalize").mkdir()
    (target / "onnx").mkdir()
    (target / "onnx" / "model.onnx").write_text("an export of the old weights")
    (target / "notes.txt").write_text("mine")
    (target / "runs").mkdir()
    tiny_model.save(str(target))
    assert not (target / "2_Normalize").exists() and not (target / "onnx").exists()
    assert (target / "notes.txt").read_text() == "mine" and (target / "runs").is_dir()
    reloaded = magnet_st.load_model(str(target))
    assert reloaded[1].pooling_mode == "lasttoken"
    np.testing.assert_allclose(reloaded.encode(PROBE), tiny_model.encode(PROBE), atol=1e-6)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]  # no staging left behind


def test_save_refuses_a_file_path(tiny_model, tmp_path):
    file = tmp_path / "model.bin"
    file.write_text("not a folder")
    with pytest.raises(FileExistsError, match="is a file, not a folder"):
        tiny_model.save(str(file))
    assert file.read_text() == "not a folder"


def test_tilde_is_the_home_folder_for_save_load_and_training(tiny_model, tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(), work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    tiny_model.save("~/m")
    assert (home / "m" / "modules.json").is_file() and not (work / "~").exists()
    np.testing.assert_allclose(magnet_st.load_model("~/m").encode(PROBE), tiny_model.encode(PROBE), atol=1e-6)
    assert MagnetSentenceTransformer("~/m").decoder.causal_lm is not None
    config = TrainConfig(data="~/texts.txt", output_dir="~/out")
    assert (config.data, config.output_dir) == (str(home / "texts.txt"), str(home / "out"))
    assert config.checkpoint_dir() == home / "out-checkpoints"


def test_next_save_cleans_staging_left_by_killed_saves_only(tiny_model, tmp_path):
    from magnet_st.folders import this_host

    dead, host = dead_pid(), this_host()
    killed = tmp_path / f".old-model.saving-{dead}-{host}-abcd1234"
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"\0" * 1024)
    running = tmp_path / f".other.saving-{os.getpid()}-{host}-efgh5678"  # a save in progress: kept
    running.mkdir()
    elsewhere = tmp_path / f".other.saving-{dead}-another_machine-ijkl9012"  # cannot be checked: kept
    elsewhere.mkdir()
    tiny_model.save(str(tmp_path / "model"))
    assert not killed.exists() and running.is_dir() and elsewhere.is_dir()


SAVE_KILLED_WHILE_WRITING = """
import sys, time
import magnet_st
from magnet_st.modules.decoder import MagnetDecoder
original = MagnetDecoder.save
def save_then_hang(self, *args, **kwargs):
    original(self, *args, **kwargs)
    print("WRITING", flush=True)
    time.sleep(600)
MagnetDecoder.save = save_then_hang
magnet_st.load_model(sys.argv[1], pooling="mean").save(sys.argv[2])
"""

SAVE_KILLED_WHILE_SWAPPING = """
import sys, time
import magnet_st, magnet_st.folders
def hang(*args, **kwargs):
    print("WRITING", flush=True)
    time.sleep(600)
magnet_st.folders._move_entries = hang  # the earlier save's files are moved aside, the new ones not yet in
magnet_st.load_model(sys.argv[1], pooling="mean").save(sys.argv[2])
"""


def earlier_save_with_user_file(model, folder: Path) -> tuple[list[str], np.ndarray]:
    model.save(str(folder))
    (folder / "notes.txt").write_text("mine")
    return listing(folder), model.encode(PROBE)


def test_save_killed_mid_write_leaves_the_earlier_save_and_is_cleaned_up(tiny_model, tiny_decoder_dir, tmp_path):
    target = tmp_path / "model"
    before, embeddings = earlier_save_with_user_file(tiny_model, target)
    kill_when_written(SAVE_KILLED_WHILE_WRITING, tiny_decoder_dir, str(target))
    assert listing(target) == before
    np.testing.assert_allclose(magnet_st.load_model(str(target)).encode(PROBE), embeddings, atol=1e-6)
    assert [path.name for path in tmp_path.iterdir() if ".saving-" in path.name]  # what the kill left
    tiny_model.save(str(tmp_path / "another"))  # the next save into the same parent cleans it
    assert sorted(path.name for path in tmp_path.iterdir()) == ["another", "model"]


def test_save_killed_mid_swap_is_undone_by_the_next_save(tiny_model, tiny_decoder_dir, tmp_path):
    target = tmp_path / "model"
    before, embeddings = earlier_save_with_user_file(tiny_model, target)
    kill_when_written(SAVE_KILLED_WHILE_SWAPPING, tiny_decoder_dir, str(target))
    assert not (target / "modules.json").exists()  # the kill hit between the renames
    from magnet_st.folders import clean_leftovers

    assert clean_leftovers(tmp_path)
    assert listing(target) == before
    np.testing.assert_allclose(magnet_st.load_model(str(target)).encode(PROBE), embeddings, atol=1e-6)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


# -- checkpoints and resume --------------------------------------------------------------------------
CHECKPOINT_KILLED_WHILE_WRITING = """
import json, sys, time
from magnet_st.training import TrainConfig, train
from magnet_st.training.trainer import MagnetTrainer
original = MagnetTrainer._save_rng_state
def save_then_hang(self, output_dir):  # model and optimizer written, trainer_state.json not yet
    original(self, output_dir)
    if self.state.global_step == 4:
        print("WRITING", flush=True)
        time.sleep(600)
MagnetTrainer._save_rng_state = save_then_hang
train(TrainConfig(**json.loads(sys.argv[1])))
"""


def test_checkpoint_killed_mid_write_resumes_from_the_last_whole_one(tiny_decoder_dir, texts_file, tmp_path, caplog):
    straight = train(TrainConfig(**run_config(tiny_decoder_dir, texts_file, tmp_path / "straight")))
    options = run_config(tiny_decoder_dir, texts_file, tmp_path / "out")
    kill_when_written(CHECKPOINT_KILLED_WHILE_WRITING, json.dumps(options))
    checkpoints = tmp_path / "out-checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == [
        ".tmp-checkpoint-4",
        "checkpoint-2",
        "precision.json",
    ]
    assert (tmp_path / ".out.lock").exists()  # the killed run's lock: stale, taken over below
    with caplog.at_level(logging.WARNING):
        resumed = train(TrainConfig(**options, resume=True))
    assert "Resuming from " in caplog.text and "checkpoint-2" in caplog.text
    assert "Skipping" in caplog.text and ".tmp-checkpoint-4: a write killed before it finished" in caplog.text
    np.testing.assert_allclose(resumed.encode(PROBE), straight.encode(PROBE), atol=1e-4, rtol=0)
    assert not (tmp_path / ".out.lock").exists() and not checkpoints.exists()


def test_resume_skips_a_half_written_checkpoint(tiny_decoder_dir, texts_file, tmp_path, caplog):
    import shutil

    from magnet_st.training.checkpoints import newest_complete_checkpoint

    options = run_config(tiny_decoder_dir, texts_file, tmp_path / "out", keep_checkpoints=True)
    train(TrainConfig(**options))
    checkpoints = tmp_path / "out-checkpoints"
    # A checkpoint written without staging (another tool, an older version) and cut short: no trainer state.
    shutil.copytree(checkpoints / "checkpoint-4", checkpoints / "checkpoint-6")
    (checkpoints / "checkpoint-6" / "trainer_state.json").unlink()
    (checkpoints / "checkpoint-8").mkdir()
    (checkpoints / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')
    chosen, skipped = newest_complete_checkpoint(checkpoints)
    assert chosen == checkpoints / "checkpoint-4"
    assert [(path.name, why) for path, why in skipped] == [
        ("checkpoint-8", "a truncated trainer_state.json"),
        ("checkpoint-6", "no trainer_state.json"),
    ]
    with caplog.at_level(logging.WARNING):
        train(TrainConfig(**{**options, "max_steps": 6}, resume=True, overwrite=True))
    assert "checkpoint-4" in caplog.text and "checkpoint-6: no trainer_state.json" in caplog.text
    steps = [e["step"] for e in json.loads((tmp_path / "out" / "training_log.json").read_text())["log_history"]]
    assert steps[-1] == 6 and 5 in steps


def test_resume_without_a_complete_checkpoint_is_named(tiny_decoder_dir, texts_file, tmp_path):
    (tmp_path / "out-checkpoints" / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        train(TrainConfig(**run_config(tiny_decoder_dir, texts_file, tmp_path / "out"), resume=True))


def test_training_output_that_is_a_file_is_refused(tiny_decoder_dir, texts_file, tmp_path):
    (tmp_path / "out").write_text("a file")
    with pytest.raises(FileExistsError, match="`output_dir` .* is a file"):
        train(TrainConfig(**run_config(tiny_decoder_dir, texts_file, tmp_path / "out")))


# -- one run per output ------------------------------------------------------------------------------
HOLD_LOCK = """
import sys, time
from magnet_st.training.lock import RunLock
with RunLock(sys.argv[1]):
    print("WRITING", flush=True)
    time.sleep(600)
"""


def test_second_training_on_the_same_output_is_refused_naming_the_first(tiny_decoder_dir, texts_file, tmp_path):
    from magnet_st.training.lock import OutputInUseError

    options = run_config(tiny_decoder_dir, texts_file, tmp_path / "out")
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, options["output_dir"]], stdout=subprocess.PIPE, text=True
    )
    try:
        assert first.stdout.readline().strip() == "WRITING"
        with pytest.raises(OutputInUseError, match=rf"in use by another training run \(pid {first.pid} on .*started"):
            train(TrainConfig(**options))
    finally:
        first.kill()
        first.wait()
    assert not (tmp_path / "out").exists() and not (tmp_path / "out-checkpoints").exists()
    train(TrainConfig(**options))  # the first run is gone: its stale lock is taken over
    assert (tmp_path / "out" / "modules.json").is_file()


def test_trainer_locks_its_checkpoint_folder(tiny_decoder_dir, texts_file, tmp_path):
    from magnet_st.training import build_trainer
    from magnet_st.training.lock import OutputInUseError, RunLock

    trainer = build_trainer(TrainConfig(**run_config(tiny_decoder_dir, texts_file, tmp_path / "out")))
    with RunLock(trainer.args.output_dir), pytest.raises(OutputInUseError, match="out-checkpoints"):
        trainer.train()


def test_cli_refuses_a_locked_output_in_one_line(tiny_decoder_dir, texts_file, tmp_path):
    from magnet_st.training.lock import RunLock

    output = tmp_path / "out"
    with RunLock(output):
        command = [sys.executable, "-m", "magnet_st.cli", "train", "--data", texts_file, "--output", str(output)]
        result = subprocess.run(command + ["--base", tiny_decoder_dir], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("magnet-st train: error: ")
    assert f"pid {os.getpid()}" in result.stderr and "Traceback" not in result.stderr
