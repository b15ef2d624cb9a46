"""Runtime faults: cancelled streams, resumable evaluations, prompts that fill the window, one-line errors, seeds."""

import json
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch

import magnet_st
from magnet_st.cli import main
from magnet_st.data.paths import dataset_file
from magnet_st.data.texts import load_texts
from magnet_st.data.wikipedia import WIKI_FILE
from magnet_st.evaluation import suite as suite_module
from magnet_st.evaluation.results import PartOutcome
from magnet_st.evaluation.suite import SuiteConfig, run_suite
from magnet_st.generation import generate, infill
from magnet_st.tagging import finetune_lora, predict, train_probe

REPO = Path(__file__).resolve().parents[1]
WORDS = [["Anna", "lives", "in", "Paris", "."], ["Bob", "visited", "Berlin", "today", "."], ["It", "rains", "."]] * 4
TAGS = [["B-PER", "O", "O", "B-LOC", "O"], ["B-PER", "O", "B-LOC", "O", "O"], ["O", "O", "O"]] * 4


def generator_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "magnet-st-generate"]


def run_python(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


# -- streaming ---------------------------------------------------------------------------------------


def test_breaking_out_of_a_stream_stops_its_thread_and_the_process_exits_normally(tiny_decoder_dir):
    script = """
        import gc, sys, threading
        import magnet_st
        from magnet_st.generation import generate
        model = magnet_st.load_model(sys.argv[1], max_seq_length=64, device="cpu")
        options = dict(max_new_tokens=900, min_new_tokens=900, stream=True)
        for index, piece in enumerate(generate(model, "Once upon a time", **options)):
            if index == 2:
                break
        abandoned = generate(model, "The river", **options)
        next(abandoned)
        del abandoned
        gc.collect()
        print("threads left:", sum(t.name == "magnet-st-generate" for t in threading.enumerate()))
        """
    result = run_python(script, tiny_decoder_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "terminate called" not in result.stderr
    assert "threads left: 0" in result.stdout


def test_keyboard_interrupt_in_a_stream_stops_the_generating_thread(tiny_model):
    stream = generate(tiny_model, "Once upon a time", max_new_tokens=900, min_new_tokens=900, stream=True)
    next(stream)
    assert generator_threads()
    with pytest.raises(KeyboardInterrupt):
        stream.throw(KeyboardInterrupt)
    assert not generator_threads()


@pytest.mark.parametrize("stream", [False, True])
def test_generation_runs_in_eval_mode_and_restores_train_mode(tiny_model, monkeypatch, stream):
    causal_lm = tiny_model.decoder.causal_lm
    seen = []
    original = causal_lm.generate

    def recording(*args, **kwargs):
        seen.append(causal_lm.training)
        return original(*args, **kwargs)

    monkeypatch.setattr(causal_lm, "generate", recording)
    tiny_model.train()
    try:
        output = generate(tiny_model, "Once upon a time", max_new_tokens=3, stream=stream)
        "".join(output) if stream else output
        assert seen == [False]
        assert causal_lm.training
    finally:
        tiny_model.eval()


# -- evaluation: data checked first, results kept per part, resume -----------------------------------


def test_eval_checks_every_data_file_before_the_first_part(tmp_path, monkeypatch):
    data = tmp_path / "data"
    wiki = data.joinpath(*WIKI_FILE)
    wiki.parent.mkdir(parents=True)
    wiki.symlink_to(Path(dataset_file(None, *WIKI_FILE)).resolve())  # generation's file is there, knowledge's are not
    ran = []
    monkeypatch.setattr(suite_module, "run_part", lambda part, *args, **kwargs: ran.append(part))
    config = SuiteConfig(models=["tiny"], parts=["generation", "knowledge"], data_dir=str(data), out_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="lama"):
        run_suite(config)
    assert ran == [] and not (tmp_path / "results.json").exists()


def test_eval_keeps_finished_parts_and_resume_runs_only_the_missing_ones(tiny_model, tmp_path, monkeypatch):
    calls, crash = [], [True]

    def fake_part(part, *args, **kwargs):
        calls.append(part)
        if part == "generation" and crash.pop() if crash else False:
            raise RuntimeError("the generation part crashed")
        return PartOutcome("n/a", reason=f"{part} stub")

    monkeypatch.setattr(suite_module, "run_part", fake_part)
    monkeypatch.setattr(suite_module, "load_spec", lambda *args, **kwargs: tiny_model)
    parts = ["sentence", "infilling", "generation", "knowledge"]

    def config(resume):
        return SuiteConfig(models=["tiny"], parts=parts, out_dir=str(tmp_path), resume=resume)

    with pytest.raises(RuntimeError, match="crashed"):
        run_suite(config(resume=False))
    kept = json.loads((tmp_path / "results.json").read_text())
    assert list(kept["models"][0]["parts"]) == ["sentence", "infilling"]

    calls.clear()
    results = run_suite(config(resume=True))
    assert calls == ["generation", "knowledge"]
    assert list(results["models"][0]["parts"]) == parts
    calls.clear()
    run_suite(config(resume=True))
    assert calls == []  # nothing left to run: the model is not even loaded
    with pytest.raises(ValueError, match="other settings.*config.seed"):
        run_suite(SuiteConfig(models=["tiny"], parts=parts, out_dir=str(tmp_path), resume=True, seed=1))


# -- a prompt that fills the window ------------------------------------------------------------------


def test_a_prompt_that_leaves_no_room_for_the_text_is_refused(tiny_decoder_dir):
    model = magnet_st.load_model(tiny_decoder_dir, max_seq_length=8, device="cpu")
    with pytest.raises(ValueError, match="leaving none for the text.*`max_seq_length`"):
        model.encode(["A first text.", "Another, quite different, text."])
    model.decoder.max_seq_length = 64
    embeddings = model.encode(["A first text.", "Another, quite different, text."])
    assert not torch.allclose(torch.as_tensor(embeddings[0]), torch.as_tensor(embeddings[1]))


# -- one-line errors ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tiny_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "model"
    tiny_model.save(str(folder))
    return folder


def copy_of(folder: Path, target: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, target))


def cli_error(capsys, argv) -> str:
    code = main(argv)
    error = capsys.readouterr().err
    assert code == 2 and "Traceback" not in error
    last = error.rstrip("\n").splitlines()[-1]  # status lines ("Loading ...") may come before it
    assert last.startswith(f"magnet-st {argv[0]}: error: ") and error.count(": error: ") == 1, error
    return last


def test_cli_corrupt_safetensors_file(saved_model, tmp_path, capsys):
    folder = copy_of(saved_model, tmp_path / "corrupt")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    assert "corrupt or incomplete" in cli_error(capsys, ["encode", str(folder), "A text."])


def test_cli_modules_json_naming_a_missing_folder(saved_model, tmp_path, capsys):
    folder = copy_of(saved_model, tmp_path / "missing-module")
    modules = json.loads((folder / "modules.json").read_text())
    modules[-1]["path"] = "7_Gone"
    (folder / "modules.json").write_text(json.dumps(modules))
    assert "'7_Gone', which is missing" in cli_error(capsys, ["encode", str(folder), "A text."])


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.jsonl", '{"text": "fine"}\n{"text": broken\n', "not a valid JSONL file: line 2"),
        ("list.jsonl", '{"text": "fine"}\n["a list"]\n', "line 2: expected a JSON object"),
        ("bad.csv", 'text,other\n"quoted, "x" badly,1\n1,2,3,4\n', "not a valid CSV file"),
    ],
)
def test_malformed_training_data_is_one_line(tiny_decoder_dir, tmp_path, capsys, monkeypatch, name, content, message):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_texts(path)
    argv = ["train", "--data", str(path), "--base", tiny_decoder_dir, "--output", str(tmp_path / "out"), "--steps", "1"]
    assert message.split(":")[0] in cli_error(capsys, argv)


def test_prompt_must_be_a_string(tiny_decoder_dir, tiny_model):
    with pytest.raises(TypeError, match="`prompt` must be a string or None, got int"):
        magnet_st.load_model(tiny_decoder_dir, prompt=5)
    with pytest.raises(TypeError, match="`prompt` must be a string or None, got int"):
        tiny_model.encode(["A text."], prompt=5)


@pytest.mark.parametrize("temperature", [float("inf"), float("nan"), 0.0, -1.0])
def test_temperature_must_be_finite_and_positive(tiny_model, temperature, capsys, saved_model):
    with pytest.raises(ValueError, match="`temperature` must be a finite number > 0"):
        generate(tiny_model, "A prompt", do_sample=True, temperature=temperature, max_new_tokens=2)
    with pytest.raises(ValueError, match="`temperature` must be a finite number > 0"):
        infill(tiny_model, "A [BLANK] text.", do_sample=True, temperature=temperature)
    if temperature == float("inf"):
        argv = ["generate", str(saved_model), "A prompt", "--sample", "--temperature", "inf"]
        assert "`temperature`" in cli_error(capsys, argv)


def test_tagging_batch_size_zero(tiny_decoder_dir):
    model = magnet_st.load_model(tiny_decoder_dir, max_seq_length=64, device="cpu")
    train_probe(model, WORDS, TAGS, task="ner", steps=2, show_progress_bar=False)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer, got 0"):
        predict(model, ["Anna lives in Paris."], batch_size=0)


@pytest.mark.parametrize("steps", [0, -3])
def test_probe_with_no_steps_is_refused(tiny_model, steps):
    with pytest.raises(ValueError, match="`steps` must be a positive integer"):
        train_probe(tiny_model, WORDS, TAGS, steps=steps, show_progress_bar=False)


def test_lone_surrogate_is_a_clear_error(tiny_model, capsys, saved_model):
    with pytest.raises(ValueError, match=r"`inputs\[1\]` has a lone surrogate character '\\ud83d' at position 4"):
        tiny_model.encode(["fine", "bad \ud83d text"])
    with pytest.raises(ValueError, match=r"`prompts\[0\]` has a lone surrogate"):
        generate(tiny_model, "bad \udc00", max_new_tokens=2)
    assert "lone surrogate" in cli_error(capsys, ["encode", str(saved_model), "bad \ud800"])


def test_load_model_prompt_none_replaces_a_saved_prompt(saved_model, tiny_model):
    unprompted = magnet_st.load_model(str(saved_model), prompt=None, device="cpu")
    assert unprompted.default_prompt_name is None and "sentence" not in unprompted.prompts
    other = magnet_st.load_model(str(saved_model), prompt="Represent: ", device="cpu")
    assert other.prompts["sentence"] == "Represent: "
    kept = magnet_st.load_model(str(saved_model), device="cpu")
    assert kept.prompts["sentence"] == tiny_model.prompts["sentence"]
    other.save(str(saved_model.parent / "custom"))
    assert magnet_st.load_model(str(saved_model.parent / "custom"), device="cpu").prompts["sentence"] == "Represent: "
    paper_text = "Given the sentence, find its representation: "  # the default, written out: given explicitly
    restored = magnet_st.load_model(str(saved_model.parent / "custom"), prompt=paper_text, device="cpu")
    assert restored.prompts["sentence"] == paper_text and type(restored.prompts["sentence"]) is str
    texts = ["A man plays a guitar.", "The cat sleeps."]
    expected = kept.encode(texts, prompt="", convert_to_tensor=True)
    torch.testing.assert_close(unprompted.encode(texts, convert_to_tensor=True), expected)


# -- seeds -------------------------------------------------------------------------------------------


def test_seeded_samples_do_not_depend_on_batch_size_or_global_state(tiny_model):
    prompts = ["Once upon a time", "The river", "In the year", "She said"]
    options = dict(do_sample=True, top_k=0, max_new_tokens=6, seed=3)
    one = generate(tiny_model, prompts, batch_size=1, **options)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    three = generate(tiny_model, prompts, batch_size=3, **options)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left alone
    assert one == three and len(set(one)) > 1
    assert "".join(generate(tiny_model, prompts[0], stream=True, **options)) == one[0]

    texts = ["The [BLANK] sat on the mat.", "A [BLANK] day.", "He [BLANK] home.", "We [BLANK] it."]
    sampled = dict(do_sample=True, seed=5, num_candidates=2, length=3)
    fills_one = [result.text for result in infill(tiny_model, texts, batch_size=1, **sampled)]
    fills_three = [result.text for result in infill(tiny_model, texts, batch_size=3, **sampled)]
    assert fills_one == fills_three


def probe_run(model) -> tuple[dict, torch.Tensor]:
    result = train_probe(
        model, WORDS, TAGS, eval_words=WORDS, eval_tags=TAGS, task="ner", steps=20, seed=0, show_progress_bar=False
    )
    return result.scores, model[-1].linear.weight.detach().clone()


def test_probe_is_reproducible_in_one_process_whatever_ran_before(tiny_decoder_dir):
    model = magnet_st.load_model(tiny_decoder_dir, max_seq_length=64, device="cpu")
    first_scores, first_weights = probe_run(model)
    torch.rand(1000)  # other work consumes the global random state between the two calls
    second_scores, second_weights = probe_run(model)
    assert first_scores == second_scores
    torch.testing.assert_close(first_weights, second_weights, rtol=0, atol=0)


def test_lora_tagger_is_reproducible_in_one_process(tiny_decoder_dir, tmp_path):
    weights = []
    for run in range(2):
        model = magnet_st.load_model(tiny_decoder_dir, max_seq_length=64, device="cpu")
        torch.rand(100 + run)  # a different global state before each run
        finetune_lora(model, WORDS, TAGS, tmp_path / f"run{run}", task="ner", max_steps=2, show_progress_bar=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


DIGEST_SCRIPT = """
    import hashlib, json, sys
    import torch
    import magnet_st
    from magnet_st.evaluation.suite import SuiteConfig, run_suite
    from magnet_st.generation import generate, infill
    from magnet_st.tagging import finetune_lora, train_probe
    from magnet_st.training import TrainConfig, train

    base, data, out = sys.argv[1:4]
    words, tags = json.loads(sys.argv[4])
    def digest(tensors):
        return hashlib.sha256(b"".join(t.detach().float().numpy().tobytes() for t in tensors)).hexdigest()[:16]
    def fresh():
        return magnet_st.load_model(base, max_seq_length=64, device="cpu")
    found = {}
    trained = train(TrainConfig(data=data, output_dir=out + "/train", base=base, max_steps=2, batch_size=4,
                                max_seq_length=32, save_steps=10, seed=7, precision="fp32"))  # not timed per process
    found["training"] = digest(trained.parameters())
    model = fresh()
    found["probe"] = train_probe(model, words, tags, eval_words=words, eval_tags=tags, steps=20, seed=1,
                                 show_progress_bar=False).scores
    found["probe_head"] = digest(model[-1].parameters())
    model = fresh()
    finetune_lora(model, words, tags, out + "/lora", max_steps=2, seed=1, show_progress_bar=False)
    found["lora"] = digest(p for p in model.parameters() if p.requires_grad)
    found["generate"] = generate(model, ["Once upon a time", "The river"], do_sample=True, max_new_tokens=6, seed=2)
    found["infill"] = [r.text for r in infill(model, ["The [BLANK] sat."], do_sample=True, length=3, seed=2)]
    results = run_suite(SuiteConfig(models=["tiny"], parts=["generation"], out_dir=out + "/eval", seed=4),
                        sizes={"generation": {"limit": 2, "max_new_tokens": 8}})
    runs = results["models"][0]["parts"]["generation"]["result"]
    found["evaluation"] = {key: {k: v for k, v in run.items() if k != "seconds"} for key, run in runs.items()}
    print("DIGEST " + json.dumps(found, sort_keys=True))
    """


def test_every_seeded_entry_point_gives_the_same_result_across_processes(tiny_decoder_dir, tmp_path):
    data = tmp_path / "texts.txt"
    texts = ["The river flows through the old town into the sea.", "She opened the window to let the air in."]
    data.write_text("\n".join(texts * 8) + "\n")
    digests = []
    for run in range(2):
        result = run_python(
            DIGEST_SCRIPT, tiny_decoder_dir, str(data), str(tmp_path / f"run{run}"), json.dumps([WORDS, TAGS])
        )
        assert result.returncode == 0, result.stderr[-3000:]
        digests.append(json.loads(result.stdout.split("DIGEST ", 1)[1]))
    assert digests[0] == digests[1]
    assert set(digests[0]) == {"training", "probe", "probe_head", "lora", "generate", "infill", "evaluation"}


def test_ctrl_c_during_cli_generate_stops_cleanly(saved_model):
    command = [sys.executable, "-m", "magnet_st.cli", "generate", str(saved_model), "Once upon a time"]
    process = subprocess.Popen(
        [*command, "--max-new-tokens", "900"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.read(1)  # streaming has started
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    stderr = stderr.decode()
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr and "terminate called" not in stderr and "Traceback" not in stderr
