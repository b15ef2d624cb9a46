"""Per-token int8 ONNX graphs (`magnet_st.backends.int8`) and their smoothing, against numpy references."""

import numpy as np
import pytest
import torch

import magnet_st
from magnet_st.backends import export_onnx, quantized_file_name

NEEDS_ORT = "the ONNX backend needs onnxruntime and onnx (pip install 'magnet-st[onnx]')"
onnxruntime = pytest.importorskip("onnxruntime", reason=NEEDS_ORT)
onnx = pytest.importorskip("onnx", reason=NEEDS_ORT)
TEXTS = ["The cat sat on the mat.", "A man plays the guitar for a small crowd.", "Rain."]


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    """The tiny model saved and exported; its fp32 and int8 graphs are loaded by `graphs`."""
    path = tmp_path_factory.mktemp("int8") / "magnet-tiny"
    tiny_model.save(str(path))
    assert len(export_onnx(path)) == 2
    return path


def graphs(path) -> tuple:
    """(fp32, int8) ModelProtos of an exported folder, fresh copies each call."""
    return onnx.load(str(path / "onnx" / "model.onnx")), onnx.load(str(path / quantized_file_name()))


def weight_matmuls(graph) -> list:
    initializers = {tensor.name for tensor in graph.initializer}
    return [node for node in graph.node if node.op_type == "MatMul" and node.input[1] in initializers]


def run_with_outputs(model, names: list[str], feeds: dict) -> dict[str, np.ndarray]:
    model.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in names)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip(names, session.run(names, feeds)))


def reference_int8_matmul(activation: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A @ W with A symmetric int8 per row (token) and W symmetric int8 per column, in float64."""
    activation, weight = activation.astype(np.float64), weight.astype(np.float64)
    row_scale = np.maximum(np.abs(activation).max(axis=-1, keepdims=True) / 127, 1e-8)  # (..., 1)
    column_scale = np.maximum(np.abs(weight).max(axis=0) / 127, 1e-8)  # (N,)
    row_codes = np.clip(np.rint(activation / row_scale), -127, 127)
    column_codes = np.clip(np.rint(weight / column_scale), -127, 127)
    return (row_codes @ column_codes) * row_scale * column_scale


def features(model, texts: list[str]) -> dict[str, np.ndarray]:
    tokens = model[0].preprocess(texts)
    return {name: tokens[name].numpy() for name in ("input_ids", "attention_mask")}


def test_every_weight_matmul_becomes_an_int8_gemm(exported):
    fp32, int8 = graphs(exported)
    assert weight_matmuls(int8.graph) == []  # no float weight left behind
    assert len(weight_matmuls(fp32.graph)) == 14  # q, k, v, o, gate, up, down in 2 layers
    assert sum(node.op_type == "MatMulIntegerToFloat" for node in int8.graph.node) == 14
    quantize_nodes = sum(node.op_type == "QuantizeLinear" for node in int8.graph.node)
    assert quantize_nodes == 8  # q/k/v and gate/up share their quantized input: 4 activations per layer


def test_int8_matmuls_match_a_numpy_reference(exported, tiny_model):
    fp32, int8 = graphs(exported)
    weights = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in fp32.graph.initializer}
    matmuls = weight_matmuls(fp32.graph)
    names = sorted({name for node in matmuls for name in (node.input[0], node.output[0])})
    values = run_with_outputs(int8, names, features(tiny_model, TEXTS))
    # Smoothing (exact in fp32) rescales activations and weights, so the reference uses the weights the
    # activations meet: for each MatMul, the fp32 product of the smoothed pair equals the unsmoothed one.
    smoothed = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in _smoothed(exported).graph.initializer}
    for node in matmuls:
        weight = smoothed[node.input[1]]
        expected = reference_int8_matmul(values[node.input[0]], weight)  # (B, T, N)
        got = values[node.output[0]]
        scale = np.abs(expected).max()
        np.testing.assert_allclose(got, expected, atol=2e-5 * scale, rtol=0, err_msg=node.name)
        exact = values[node.input[0]].astype(np.float64) @ weight.astype(np.float64)
        assert np.abs(got - exact).max() < 0.05 * np.abs(exact).max()  # and int8 stays near the float product
    assert weights  # the fp32 file kept its float weights


def _smoothed(exported):
    """The fp32 graph smoothed exactly as the exporter did, before quantization."""
    from magnet_st.backends.int8 import SMOOTHING_ALPHA, calibration_batches
    from magnet_st.backends.smoothing import smooth

    model = onnx.load(str(exported / "onnx" / "model.onnx"))
    decoder = magnet_st.load_model(exported)[0]
    smooth(model, calibration_batches(decoder, exported), alpha=SMOOTHING_ALPHA)
    return model


def test_smoothing_is_exact_in_fp32(exported, tiny_model):
    smoothed = _smoothed(exported)
    feeds = features(tiny_model, TEXTS)
    original = onnxruntime.InferenceSession(str(exported / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    changed = onnxruntime.InferenceSession(smoothed.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = original.run(None, feeds)[0]
    np.testing.assert_allclose(changed.run(None, feeds)[0], expected, atol=1e-4 * np.abs(expected).max(), rtol=0)
    fp32 = {
        t.name: onnx.numpy_helper.to_array(t)
        for t in onnx.load(str(exported / "onnx" / "model.onnx")).graph.initializer
    }
    moved = [
        t.name for t in smoothed.graph.initializer if not np.array_equal(onnx.numpy_helper.to_array(t), fp32[t.name])
    ]
    assert moved  # something was smoothed


def test_int8_is_batch_and_padding_invariant(exported):
    model = magnet_st.load_model(exported, backend="onnx", model_kwargs={"file_name": quantized_file_name()})
    alone = model.encode(["Rain."])
    batched = model.encode(["Rain.", "A much longer sentence that forces padding onto the short one."])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5, rtol=0)


def huge_activation_model(tiny_decoder_dir, token_id: int):
    """The tiny model with one token whose MLP input in layer 0 is about 1,000x every other token's.

    Layer 0 adds no attention output, every other token's embedding is negative in channel 0, and one
    gate/up channel reads channel 0 alone: SiLU shuts it for every token but `token_id`, which fires it.
    """
    model = magnet_st.load_model(tiny_decoder_dir, device="cpu")
    backbone = model[0].causal_lm.get_decoder()
    with torch.no_grad():
        embeddings = backbone.embed_tokens.weight  # (V, H)
        embeddings[:, 0] = -embeddings[:, 0].abs() - 0.05
        embeddings[token_id] = 0.0
        embeddings[token_id, 0] = 1.0
        layer = backbone.layers[0]
        layer.self_attn.o_proj.weight.zero_()
        for projection in (layer.mlp.gate_proj, layer.mlp.up_proj):
            projection.weight[0] = 0.0
            projection.weight[0, 0] = 4.0
    return model


def test_per_token_int8_survives_a_huge_activation_token(tiny_decoder_dir, tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = huge_activation_model(tiny_decoder_dir, token_id=504)
    model.save(str(tmp_path / "model"))
    export_onnx(tmp_path / "model")
    fp32_file = tmp_path / "model" / "onnx" / "model.onnx"
    quantize_dynamic(
        str(fp32_file), str(tmp_path / "model" / "onnx" / "dynamic.onnx"), weight_type=QuantType.QInt8, per_channel=True
    )

    feeds = features(model, ["one two three four five six seven"])
    feeds["input_ids"][:, 0] = 504  # the huge token first, as a decoder's first token usually is
    down_input = next(
        n.input[0] for n in weight_matmuls(onnx.load(str(fp32_file)).graph) if "layers.0/mlp" in n.input[0]
    )
    activation = run_with_outputs(onnx.load(str(fp32_file)), [down_input], feeds)[down_input][0]  # (T, I)
    token_max = np.abs(activation).max(axis=-1)
    assert token_max[0] > 300 * token_max[1:].max()  # the construction holds

    def states(name: str) -> np.ndarray:
        session = onnxruntime.InferenceSession(
            str(tmp_path / "model" / "onnx" / name), providers=["CPUExecutionProvider"]
        )
        return session.run(None, feeds)[0][0, 1:]  # (T - 1, H): every token but the huge one

    reference = states("model.onnx")

    def cosine(states: np.ndarray) -> float:
        return float(
            ((states * reference).sum(-1) / np.linalg.norm(states, axis=-1) / np.linalg.norm(reference, axis=-1)).min()
        )

    per_token, dynamic = cosine(states(quantized_file_name().removeprefix("onnx/"))), cosine(states("dynamic.onnx"))
    print(f"min cosine to fp32 of the other tokens: per-token {per_token:.4f}, dynamic {dynamic:.4f}")
    assert per_token > 0.99
    assert per_token > dynamic + 0.01


def test_embedding_table_is_int8_per_token(exported, tiny_model):
    fp32, int8 = graphs(exported)
    lookup = next(node for node in fp32.graph.node if node.op_type == "Gather" and "embed_tokens" in node.input[0])
    table = next(onnx.numpy_helper.to_array(t) for t in fp32.graph.initializer if t.name == lookup.input[0])  # (V, H)
    assert all(t.name != lookup.input[0] for t in int8.graph.initializer)  # the float table is gone
    feeds = features(tiny_model, TEXTS)
    rows = run_with_outputs(int8, [lookup.output[0]], feeds)[lookup.output[0]]  # (B, T, H)
    picked = table[feeds["input_ids"]].astype(np.float64)  # (B, T, H)
    scale = np.maximum(np.abs(picked).max(axis=-1, keepdims=True) / 127, 1e-8)  # a zero row (padding) stays zero
    np.testing.assert_allclose(rows, np.rint(picked / scale) * scale, atol=1e-6, rtol=0)
