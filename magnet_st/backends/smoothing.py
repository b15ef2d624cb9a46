"""SmoothQuant-style smoothing of an fp32 ONNX graph, exact in fp32, before int8 quantization.

A few hidden channels of a decoder's activations are far larger than the rest. Smoothing divides
activation channel c by s_c and multiplies row c of every weight that reads it by s_c, which leaves the
product unchanged and moves the outliers into the weights (quantized per output channel):

    s_c = max|X_c| ** alpha / max|W_c,:| ** (1 - alpha)

The division is folded into the node that produces X, so the graph gains no node:
- X = Mul(x, gamma) with a constant per-channel gamma (an RMSNorm's weight): gamma /= s;
- X = Mul(a, x @ U) with a constant weight U (a gated MLP's up projection): U[:, c] /= s_c.
Activations with another producer, or read by anything but weight MatMuls, are left alone.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

SMOOTHING_FLOOR = 1e-5  # channels that never fire keep a finite factor


def _fold_target(activation: str, producers: dict, initializers: dict, consumers: dict):
    """(initializer name, axis) whose entries along `axis` scale channel c of `activation`, or None."""
    node = producers.get(activation)
    if node is None or node.op_type != "Mul":
        return None
    for operand in node.input:
        tensor = initializers.get(operand)
        if tensor is not None and len(tensor.dims) == 1 and len(consumers[operand]) == 1:
            return operand, 0  # RMSNorm weight: (K,)
    for operand in node.input:
        source = producers.get(operand)
        if (
            source is not None
            and source.op_type == "MatMul"
            and source.input[1] in initializers
            and len(initializers[source.input[1]].dims) == 2
            and len(consumers[operand]) == 1
            and len(consumers[source.input[1]]) == 1
        ):
            return source.input[1], 1  # up projection (K_in, K): its output column c is channel c
    return None


def smoothable_activations(graph) -> dict[str, tuple[str, int]]:
    """Activations read only by weight MatMuls whose scaling can be folded: name -> (initializer, axis)."""
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    consumers = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    found = {}
    for node in graph.node:
        activation = node.input[0] if node.op_type == "MatMul" else None
        if activation is None or activation in found or node.input[1] not in initializers:
            continue
        readers = [r for r in consumers[activation] if r.op_type != "Shape"]  # a shape does not change with scaling
        if any(
            r.op_type != "MatMul"
            or r.input[0] != activation
            or r.input[1] not in initializers
            or len(consumers[r.input[1]]) != 1
            for r in readers
        ):  # scaling a weight shared with another node would change that node too
            continue
        target = _fold_target(activation, producers, initializers, consumers)
        if target is not None:
            found[activation] = target
    return found


def channel_maxima(model, activations: list[str], batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """max |X_c| over the real (unpadded) tokens of `batches`, for each activation X (..., K)."""
    import onnx
    import onnxruntime

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in activations
    )
    session = onnxruntime.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    maxima = {}
    for feeds in batches:
        real = feeds["attention_mask"].astype(bool)  # (B, T)
        for name, values in zip(activations, session.run(activations, feeds)):
            batch_max = np.abs(values[real]).max(axis=0)  # (K,)
            maxima[name] = np.maximum(maxima.get(name, batch_max), batch_max)
    return maxima


def smooth(model, batches: list[dict[str, np.ndarray]], alpha: float) -> int:
    """Smooth `model` (an onnx ModelProto, changed in place) calibrated on `batches`; returns activations smoothed."""
    from onnx import numpy_helper

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1], got {alpha!r}.")
    graph = model.graph
    targets = smoothable_activations(graph)
    if not targets:
        return 0
    maxima = channel_maxima(model, list(targets), batches)
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    arrays = {name: numpy_helper.to_array(tensor).copy() for name, tensor in initializers.items()}
    readers = defaultdict(list)
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[0] in targets:
            readers[node.input[0]].append(node.input[1])
    for activation, (fold_name, axis) in targets.items():
        weight_max = np.max([np.abs(arrays[name]).max(axis=1) for name in readers[activation]], axis=0)  # (K,)
        factors = np.maximum(maxima[activation], SMOOTHING_FLOOR) ** alpha
        factors = factors / np.maximum(weight_max, SMOOTHING_FLOOR) ** (1 - alpha)
        factors = np.maximum(factors, SMOOTHING_FLOOR).astype(np.float32)  # (K,)
        arrays[fold_name] = arrays[fold_name] / (factors if axis == 0 else factors[None, :])
        for name in readers[activation]:
            arrays[name] = arrays[name] * factors[:, None]  # (K, N): row c times s_c
    changed = {fold for fold, _ in targets.values()} | {name for names in readers.values() for name in names}
    for name in changed:
        initializers[name].CopyFrom(numpy_helper.from_array(arrays[name].astype(np.float32), name))
    return len(targets)
