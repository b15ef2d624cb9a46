"""Per-token int8: rewrite an fp32 ONNX graph so that every weight MatMul runs as an int8 GEMM.

`onnxruntime.quantization.quantize_dynamic` scales each activation tensor as a whole (one scale for all
tokens of all sentences). Decoder LLMs carry a few huge activations (on the first token, in a few
channels), so that one scale leaves the other tokens only a few int8 levels. This rewrite quantizes
activations per token instead (W8A8 as in LLM.int8 / SmoothQuant / ZeroQuant):

    A (..., K) -> a_scale = max(|A|, axis=-1) / 127            (..., 1), one scale per token
                  A_q = uint8(round(A / a_scale) + 128)         zero point 128: symmetric, u8 for MLAS' u8s8 GEMM
    W (K, N)   -> w_scale = max(|W|, axis=0) / 127             (N,), one scale per output channel
                  W_q = int8(round(W / w_scale))
    A @ W      ~= MatMulIntegerToFloat(A_q, W_q, 1, w_scale, 128) * a_scale      (..., N)

onnxruntime's fused int8 GEMM (MatMulIntegerToFloat, its com.microsoft domain; the same MLAS kernels as
MatMulInteger) applies per-column scales but one scale for A, so the per-token scale is one Mul after it.
The activations are quantized with QuantizeLinear along the token axis (A reshaped to (tokens, K)), and
the weights may first be smoothed (`magnet_st.backends.smoothing`). Weight MatMuls that read the same
activation (q/k/v, gate/up) share one quantized copy of it. The token embedding table is stored as int8
with one scale per row (per token).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

INT8_MAX = 127
ACTIVATION_ZERO_POINT = 128  # uint8 codes of a symmetric int8 value: q + 128
SCALE_FLOOR = 1e-8  # an all-zero token must not divide by zero
SMOOTHING_ALPHA = 0.5
CALIBRATION_TEXTS = 64  # sentences of the packaged Wikipedia sample
CALIBRATION_BATCH_SIZE = 32
CONTRIB_DOMAIN = "com.microsoft"  # onnxruntime's own operators


@dataclass(frozen=True)
class QuantizedWeight:
    """A (K, N) float weight as per-output-channel symmetric int8 codes and scales."""

    codes: np.ndarray  # (K, N) int8
    scales: np.ndarray  # (N,) float32


def quantize_weight(weight: np.ndarray) -> QuantizedWeight:
    """Symmetric int8 codes of `weight` (K, N), one scale per output column."""
    if weight.ndim != 2:
        raise ValueError(f"`weight` must be a 2-D (K, N) matrix, got shape {weight.shape}.")
    scales = np.maximum(np.abs(weight).max(axis=0) / INT8_MAX, SCALE_FLOOR).astype(np.float32)  # (N,)
    codes = np.clip(np.rint(weight / scales), -INT8_MAX, INT8_MAX).astype(np.int8)  # (K, N)
    return QuantizedWeight(codes, scales)


def _is_embedding_lookup(node, initializers: dict) -> bool:
    """A Gather of rows (axis 0) from a constant 2-D float table: the token embeddings."""
    import onnx

    table = initializers.get(node.input[0]) if node.op_type == "Gather" else None
    axis = next((attribute.i for attribute in node.attribute if attribute.name == "axis"), 0)
    return table is not None and table.data_type == onnx.TensorProto.FLOAT and len(table.dims) == 2 and axis == 0


def _is_weight_matmul(node, initializers: dict) -> bool:
    """A MatMul whose B input is a constant 2-D float weight."""
    import onnx

    weight = initializers.get(node.input[1]) if node.op_type == "MatMul" else None
    return weight is not None and weight.data_type == onnx.TensorProto.FLOAT and len(weight.dims) == 2


class _Rewriter:
    """Builds the replacement nodes; one per graph."""

    def __init__(self, graph) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.graph = graph
        self.nodes, self.new_initializers = [], []
        self.quantized_inputs: dict[str, tuple[str, str, str]] = {}  # activation -> (codes, scales, leading shape)
        self._constant("inverse_int8_max", np.float32(1 / INT8_MAX))
        self._constant("scale_floor", np.float32(SCALE_FLOOR))
        self._constant("one", np.float32(1))
        self._constant("zero_point", np.uint8(ACTIVATION_ZERO_POINT))
        self._constant("last_axis", np.array([1], dtype=np.int64))

    def _constant(self, name: str, value: np.ndarray) -> str:
        name = f"int8/{name}"
        self.new_initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def _node(self, op_type: str, inputs: list[str], name: str, **attributes) -> str:
        output = f"{name}_output"
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=name, **attributes))
        return output

    def quantize_activation(self, activation: str, width: int) -> tuple[str, str, str]:
        """uint8 codes (M, K), per-token scales (M, 1) and leading shape of `activation` (..., K), built once."""
        if activation not in self.quantized_inputs:
            prefix = f"int8/{activation}"
            leading = self._node("Shape", [activation], f"{prefix}/LeadingShape", end=-1)  # (...)
            rows_shape = self._constant(f"{activation}/rows_shape", np.array([-1, width], dtype=np.int64))
            rows = self._node("Reshape", [activation, rows_shape], f"{prefix}/Rows")  # (M, K)
            absolute = self._node("Abs", [rows], f"{prefix}/Abs")
            absmax = self._node("ReduceMax", [absolute], f"{prefix}/ReduceMax", axes=[1], keepdims=0)  # (M,)
            scale = self._node("Mul", [absmax, "int8/inverse_int8_max"], f"{prefix}/Scale")
            scale = self._node("Max", [scale, "int8/scale_floor"], f"{prefix}/ScaleFloor")  # (M,)
            zero_points = self._node(
                "Expand",
                ["int8/zero_point", self._node("Shape", [scale], f"{prefix}/ScaleShape")],
                f"{prefix}/ZeroPoints",
            )
            # One scale per row (axis 0): divides, rounds half to even, adds 128 and saturates, in one kernel.
            codes = self._node("QuantizeLinear", [rows, scale, zero_points], f"{prefix}/Quantize", axis=0)
            column = self._node("Unsqueeze", [scale, "int8/last_axis"], f"{prefix}/ScaleColumn")  # (M, 1)
            self.quantized_inputs[activation] = (codes, column, leading)
        return self.quantized_inputs[activation]

    def replace(self, node, weight: np.ndarray) -> None:
        quantized = quantize_weight(weight)
        width, outputs = weight.shape
        codes_name = self._constant(f"{node.input[1]}/codes", quantized.codes)
        scales_name = self._constant(f"{node.input[1]}/scales", quantized.scales)
        codes, token_scale, leading = self.quantize_activation(node.input[0], width)
        prefix = f"int8/{node.name or node.output[0]}"
        # onnxruntime's fused int8 GEMM with per-column scales (its A scale is per tensor: 1 here).
        product = self._node(
            "MatMulIntegerToFloat",
            [codes, codes_name, "int8/one", scales_name, "int8/zero_point"],
            f"{prefix}/MatMulIntegerToFloat",
            domain=CONTRIB_DOMAIN,
        )  # (M, N)
        product = self._node("Mul", [product, token_scale], f"{prefix}/TokenScale")  # (M, N)
        width_name = self._constant(f"{node.input[1]}/output_width", np.array([outputs], dtype=np.int64))
        shape = self._node("Concat", [leading, width_name], f"{prefix}/OutputShape", axis=0)
        self.nodes.append(
            self.helper.make_node("Reshape", [product, shape], [node.output[0]], name=f"{prefix}/Reshape")
        )

    def replace_lookup(self, node, table: np.ndarray) -> None:
        """Gather rows of an int8 table with one scale per row (per token): the table shrinks 4x."""
        rows = quantize_weight(table.T)  # per column of the transpose = per row of the table
        codes = self._constant(f"{node.input[0]}/codes", np.ascontiguousarray(rows.codes.T))  # (V, H) int8
        scales = self._constant(f"{node.input[0]}/scales", rows.scales[:, None])  # (V, 1)
        prefix = f"int8/{node.name or node.output[0]}"
        picked = self._node("Gather", [codes, node.input[1]], f"{prefix}/GatherCodes")  # (..., H)
        picked = self._node("Cast", [picked], f"{prefix}/ToFloat", to=self.helper.TensorProto.FLOAT)
        scale = self._node("Gather", [scales, node.input[1]], f"{prefix}/GatherScales")  # (..., 1)
        self.nodes.append(self.helper.make_node("Mul", [picked, scale], [node.output[0]], name=f"{prefix}/Scale"))

    def rewrite(self) -> int:
        initializers = {tensor.name: tensor for tensor in self.graph.initializer}
        self.nodes, replaced = [], set()
        for node in self.graph.node:
            if _is_weight_matmul(node, initializers):
                self.replace(node, self.numpy_helper.to_array(initializers[node.input[1]]))
                replaced.add(node.input[1])
            elif _is_embedding_lookup(node, initializers):
                self.replace_lookup(node, self.numpy_helper.to_array(initializers[node.input[0]]))
                replaced.add(node.input[0])
            else:
                self.nodes.append(node)
        still_used = {name for node in self.nodes for name in node.input}
        kept = [tensor for tensor in self.graph.initializer if tensor.name not in replaced or tensor.name in still_used]
        count = sum(1 for node in self.graph.node if _is_weight_matmul(node, initializers))
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept + self.new_initializers)
        del self.graph.node[:]
        self.graph.node.extend(self.nodes)
        return count


def quantize_per_token(
    source: str | Path, file: str | Path, *, calibration: list[dict[str, np.ndarray]] | None = None, alpha: float = 0.5
) -> int:
    """Write `file`: the fp32 ONNX model `source` with every weight MatMul as a per-token int8 GEMM.

    Args:
        source: The fp32 ONNX file.
        file: Where the int8 file goes.
        calibration: Input batches (`input_ids`, `attention_mask`) to smooth activation channels on first
            (`magnet_st.backends.smoothing`); None quantizes without smoothing.
        alpha: Smoothing strength, 0 (none) to 1 (all of an activation's range moved into the weights).

    Returns:
        The number of MatMuls rewritten.
    """
    import onnx

    model = onnx.load(str(source))
    if calibration:
        from magnet_st.backends.smoothing import smooth

        smooth(model, calibration, alpha)
    count = _Rewriter(model.graph).rewrite()
    if not any(opset.domain == CONTRIB_DOMAIN for opset in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid(CONTRIB_DOMAIN, 1))
    onnx.checker.check_model(model)
    onnx.save(model, str(file))
    return count


def calibration_batches(decoder, folder: str | Path, texts: int = CALIBRATION_TEXTS) -> list[dict[str, np.ndarray]]:
    """Inputs to calibrate smoothing on: sentences of the Wikipedia sample packaged with magnet-st, with
    the saved model's default prompt, tokenized by `decoder` as encoding does."""
    from magnet_st.data.paths import SAMPLE_DIR
    from magnet_st.data.wikipedia import WIKI_FILE
    from magnet_st.persistence import saved_settings

    lines = SAMPLE_DIR.joinpath(*WIKI_FILE).read_text(encoding="utf-8").splitlines()
    settings = saved_settings(Path(folder))
    prompt = settings["prompts"].get(settings["default_prompt_name"] or "", "")
    batches = []
    for start in range(0, texts, CALIBRATION_BATCH_SIZE):
        features = decoder.preprocess(lines[start : min(start + CALIBRATION_BATCH_SIZE, texts)], prompt=prompt)
        batches.append({name: features[name].numpy() for name in ("input_ids", "attention_mask")})
    return batches
