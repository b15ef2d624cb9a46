"""Inference backends besides torch: ONNX export and an onnxruntime input module (the `onnx` extra).

onnxruntime is imported only when a backend is used, so the package works without it.
"""

from __future__ import annotations

from typing import Any

from magnet_st.backends.onnx_decoder import OnnxDecoder, load_onnx_model
from magnet_st.backends.onnx_export import FP32_FILE, export_onnx, quantization_target, quantized_file_name

BACKENDS = ("torch", "onnx")


def check_backend(backend: Any) -> str:
    """Return `backend` when it names a backend, or raise an error that lists them."""
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}.")
    return backend


__all__ = [
    "BACKENDS",
    "FP32_FILE",
    "OnnxDecoder",
    "check_backend",
    "export_onnx",
    "load_onnx_model",
    "quantization_target",
    "quantized_file_name",
]
