"""ONNX backend: export (fp32 + per-token int8), the onnxruntime input module, load_model(backend="onnx"), CLI."""

import json
import sys

import numpy as np
import pytest
import torch

import magnet_st
from magnet_st.backends import OnnxDecoder, export_onnx, quantization_target, quantized_file_name
from magnet_st.backends.onnx_export import require_onnx
from magnet_st.cli import main
from magnet_st.model import SENTENCE_PROMPT

TEXTS = ["The cat sat on the mat.", "A man plays the guitar for a small crowd.", "Rain."]
NEEDS_ORT = "the ONNX backend needs onnxruntime and onnx (pip install 'magnet-st[onnx]')"


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx", reason=NEEDS_ORT)
    return pytest.importorskip("onnxruntime", reason=NEEDS_ORT)


@pytest.fixture(scope="module")
def exported(ort, tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "magnet-tiny"
    tiny_model.save(str(path))
    files = export_onnx(path)
    return path, files


@pytest.fixture(scope="module")
def session(ort, exported):
    path, _ = exported
    return ort.InferenceSession(str(path / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])


def run_session(session, input_ids: list[list[int]]) -> np.ndarray:
    ids = np.array(input_ids, dtype=np.int64)
    return session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


def test_export_writes_sentence_transformers_layout(exported):
    path, files = exported
    assert files == [path / "onnx" / "model.onnx", path / quantized_file_name()]
    assert sorted(p.name for p in (path / "onnx").iterdir()) == sorted(p.name for p in files)  # no partial files
    assert quantized_file_name("avx2") == "onnx/model_quint8_avx2.onnx"
    assert quantized_file_name("avx512_vnni") == "onnx/model_qint8_avx512_vnni.onnx"
    assert quantization_target() in ("arm64", "avx2", "avx512", "avx512_vnni")


def test_exported_graph_is_bidirectional(session):
    first = run_session(session, [[504, 1025, 2220, 3001, 42]])
    changed = run_session(session, [[504, 1025, 2220, 3001, 43]])
    assert np.abs(first[0, 0] - changed[0, 0]).max() > 1e-4  # the first state saw the last token


def test_exported_graph_matches_torch_token_states(session, tiny_model):
    features = tiny_model.decoder.preprocess(TEXTS)
    inputs = {name: features[name].numpy() for name in ("input_ids", "attention_mask")}
    (states,) = session.run(["last_hidden_state"], inputs)  # (B, T, H)
    backbone = tiny_model.decoder.causal_lm.get_decoder()
    with torch.no_grad():
        reference = backbone(**{k: torch.from_numpy(v) for k, v in inputs.items()}, is_causal=False).last_hidden_state
    real = features["attention_mask"].bool()
    np.testing.assert_allclose(states[real.numpy()], reference[real].numpy(), atol=1e-4, rtol=0)


def test_load_model_onnx_backend(exported, tiny_model):
    path, _ = exported
    model = magnet_st.load_model(path, backend="onnx")
    assert isinstance(model[0], OnnxDecoder)
    assert type(model[1]).__name__ == "Pooling"
    assert model.default_prompt_name == "sentence"
    embeddings = model.encode(TEXTS)
    np.testing.assert_allclose(embeddings, tiny_model.encode(TEXTS), atol=1e-4, rtol=0)
    similarity = model.similarity(embeddings, embeddings)
    np.testing.assert_allclose(similarity.diagonal().numpy(), 1.0, atol=1e-5)
    tokens = model.encode(TEXTS, output_value="token_embeddings")
    reference = tiny_model.encode(TEXTS, output_value="token_embeddings")
    for ours, theirs in zip(tokens, reference):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-4, rtol=0)


def test_onnx_tokenizes_like_torch(exported, tiny_model):
    path, _ = exported
    decoder = magnet_st.load_model(path, backend="onnx")[0]
    ours = decoder.preprocess(TEXTS, prompt=SENTENCE_PROMPT)
    theirs = tiny_model.decoder.preprocess(TEXTS, prompt=SENTENCE_PROMPT)
    for key in ("input_ids", "attention_mask"):
        assert torch.equal(ours[key], theirs[key])
    assert ours["input_ids"][0, int(ours["attention_mask"][0].sum()) - 1] == decoder.tokenizer.eos_token_id
    assert ours["prompt_length"] == theirs["prompt_length"]


def test_onnx_embedding_is_batch_and_padding_invariant(exported):
    path, _ = exported
    model = magnet_st.load_model(path, backend="onnx")
    alone = model.encode(["Rain."])
    batched = model.encode(["Rain.", "A much longer sentence that forces padding onto the short one."])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5, rtol=0)


def test_onnx_max_seq_length_truncates_within_the_window(exported):
    path, _ = exported
    model = magnet_st.load_model(path, backend="onnx", max_seq_length=6)
    assert model.max_seq_length == 6
    assert model[0].preprocess(["one two three four five six seven eight nine"])["input_ids"].shape == (1, 6)
    with pytest.raises(ValueError, match="`max_seq_length` 5000 exceeds the model's context window of 1024"):
        model[0].max_seq_length = 5000
    with pytest.raises(ValueError, match="`max_seq_length` must be a positive integer, got 0"):
        model[0].max_seq_length = 0


def test_int8_stays_close_to_fp32(exported):
    path, _ = exported
    fp32 = magnet_st.load_model(path, backend="onnx").encode(TEXTS, convert_to_tensor=True)
    int8 = magnet_st.load_model(path, backend="onnx", model_kwargs={"file_name": quantized_file_name()})
    assert int8[0].file_name == quantized_file_name()
    cosine = torch.nn.functional.cosine_similarity(int8.encode(TEXTS, convert_to_tensor=True), fp32)
    assert cosine.min() >= 0.99
    assert (path / quantized_file_name()).stat().st_size < (path / "onnx" / "model.onnx").stat().st_size / 2


def test_plain_sentence_transformers_onnx_backend(exported, tiny_model):
    pytest.importorskip("optimum.onnxruntime", reason="SentenceTransformer(backend='onnx') loads through optimum")
    from sentence_transformers import SentenceTransformer

    path, _ = exported
    model = SentenceTransformer(str(path), backend="onnx", model_kwargs={"file_name": "onnx/model.onnx"})
    np.testing.assert_allclose(model.encode(TEXTS), tiny_model.encode(TEXTS), atol=1e-4, rtol=0)


def test_onnx_backend_errors(exported, tmp_path):
    path, _ = exported
    with pytest.raises(ValueError, match="attention_mode.*'bidirectional' or 'causal'.*got 'hybrid'"):
        magnet_st.load_model(path, backend="onnx").encode(TEXTS, attention_mode="hybrid")
    with pytest.raises(ValueError, match="exported with 'bidirectional'"):
        magnet_st.load_model(path, backend="onnx").encode(TEXTS, attention_mode="causal")
    with pytest.raises(ValueError, match="exported with 'bidirectional'"):
        magnet_st.load_model(path, backend="onnx", attention_mode="causal")
    with pytest.raises(ValueError, match="model_kwargs.*file_name.*'dtype'"):
        magnet_st.load_model(path, backend="onnx", model_kwargs={"dtype": "float16"})
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        magnet_st.load_model(path, backend="onnx", model_kwargs={"file_name": "onnx/missing.onnx"})
    with pytest.raises(ValueError, match="saved and exported MAGNET model folder"):
        magnet_st.load_model(tmp_path, backend="onnx")
    with pytest.raises(TypeError, match="cannot be saved"):
        magnet_st.load_model(path, backend="onnx").save(str(tmp_path / "copy"))
    with pytest.raises(ValueError, match="not a saved MAGNET model folder"):
        export_onnx(tmp_path)


def test_export_of_a_loaded_model_saves_it_first(ort, tiny_model, tmp_path):
    with pytest.raises(ValueError, match="output_dir"):
        export_onnx(tiny_model)
    files = export_onnx(tiny_model, tmp_path / "fresh", quantize=False)
    assert files == [tmp_path / "fresh" / "onnx" / "model.onnx"]
    model = magnet_st.load_model(tmp_path / "fresh", backend="onnx")
    np.testing.assert_allclose(model.encode(TEXTS), tiny_model.encode(TEXTS), atol=1e-4, rtol=0)


def test_unknown_backend_names_the_choices(tiny_decoder_dir):
    with pytest.raises(ValueError, match="`backend` must be one of 'torch', 'onnx', got 'tensorrt'"):
        magnet_st.load_model(tiny_decoder_dir, backend="tensorrt")


def test_missing_onnxruntime_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ModuleNotFoundError, match=r'pip install "magnet-st\[onnx\]"'):
        require_onnx()
    with pytest.raises(ModuleNotFoundError, match=r'pip install "magnet-st\[onnx\]"'):
        magnet_st.load_model("anything", backend="onnx")


def test_cli_export_and_encode(ort, tiny_model, tmp_path, capsys):
    folder = tmp_path / "cli-model"
    tiny_model.save(str(folder))
    assert main(["export-onnx", str(folder), "--no-quantize"]) == 0
    assert capsys.readouterr().out.split() == [str(folder / "onnx" / "model.onnx")]
    assert main(["encode", str(folder), *TEXTS, "--backend", "onnx"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    embeddings = np.array([line["embedding"] for line in lines])
    np.testing.assert_allclose(embeddings, tiny_model.encode(TEXTS), atol=1e-4, rtol=0)
    assert main(["encode", str(folder), "x", "--onnx-file", "onnx/model.onnx"]) == 2  # needs --backend onnx
    assert "--backend onnx" in capsys.readouterr().err


@pytest.mark.real_model
def test_real_model_onnx_matches_torch(ort, real_model, tmp_path):
    folder = tmp_path / "smollm2"
    real_model.save(str(folder))
    export_onnx(folder, quantize=False)
    onnx_model = magnet_st.load_model(folder, backend="onnx")
    texts = ["A man is playing a guitar.", "The stock market fell sharply on Tuesday."]
    ours = onnx_model.encode(texts, output_value="token_embeddings")
    theirs = real_model.encode(texts, output_value="token_embeddings")
    for a, b in zip(ours, theirs):
        # Final states reach |x| ~ 20, and torch's fused attention sums in another order than the exported
        # math attention: the two agree to ~2e-6 of the largest value; a wrong mask or dropped layer is off by O(1).
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5 * float(b.abs().max()), rtol=0)


def test_onnx_refuses_a_prompt_that_fills_the_window(exported):
    path, _ = exported
    model = magnet_st.load_model(path, backend="onnx", max_seq_length=8)
    with pytest.raises(ValueError, match="leaving none for the text"):
        model.encode(["Rain."], prompt="a very long instruction that fills every one of the tokens: ")
