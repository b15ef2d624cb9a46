"""`export_onnx`: a saved MAGNET model -> `onnx/model.onnx` (fp32 token states) plus a per-token int8 copy.

The files follow sentence-transformers' layout (`onnx/model.onnx`, `onnx/model_qint8_avx512_vnni.onnx`, ...),
so the folder loads with `magnet_st.load_model(path, backend="onnx")` and, where optimum's ONNX classes
are installed, with `SentenceTransformer(path, backend="onnx", model_kwargs={"file_name": ...})`.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from magnet_st.attention import AttentionMode
from magnet_st.decoding import eval_mode
from magnet_st.modules.decoder import MagnetDecoder
from magnet_st.persistence import exportable_model, is_saved_magnet_model
from magnet_st.precision import cpu_flags

ONNX_FOLDER = "onnx"
FP32_FILE = f"{ONNX_FOLDER}/model.onnx"
ATTENTION_MODE_KEY = "magnet_attention_mode"  # ONNX metadata: the attention the graph was traced with
INSTALL_HINT = 'pip install "magnet-st[onnx]"'
OPSET = 17
# Weight type per instruction set, as sentence-transformers names its int8 files (the file name only: the
# per-token int8 graph runs int8 weights with uint8 activations on every target).
QUANTIZED_WEIGHT_TYPES = {"arm64": "qint8", "avx2": "quint8", "avx512": "qint8", "avx512_vnni": "qint8"}


def require_onnx():
    """Import onnxruntime (and check onnx), or raise an error that says how to install them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as error:
        raise ModuleNotFoundError(f"The ONNX backend needs onnxruntime and onnx: {INSTALL_HINT}") from error
    return onnxruntime


def quantization_target() -> str:
    """The instruction set the int8 file is made for: "arm64", "avx512_vnni", "avx512" or "avx2"."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    flags = cpu_flags() or {torch.backends.cpu.get_cpu_capability().lower()}  # no /proc/cpuinfo: torch's view
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if any(flag.startswith("avx512") for flag in flags) else "avx2"


def quantized_file_name(target: str | None = None) -> str:
    """The int8 file for `target` (default: this CPU), e.g. "onnx/model_qint8_avx512_vnni.onnx"."""
    target = target or quantization_target()
    if target not in QUANTIZED_WEIGHT_TYPES:
        raise ValueError(f"`target` must be one of {', '.join(map(repr, QUANTIZED_WEIGHT_TYPES))}, got {target!r}.")
    return f"{ONNX_FOLDER}/model_{QUANTIZED_WEIGHT_TYPES[target]}_{target}.onnx"


class TokenStates(torch.nn.Module):
    """The decoder stack under one fixed attention mode: (input_ids, attention_mask) -> last hidden state."""

    def __init__(self, backbone: torch.nn.Module, attention_mode: AttentionMode) -> None:
        super().__init__()
        self.backbone = backbone
        self.is_causal = attention_mode is AttentionMode.CAUSAL

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, is_causal=self.is_causal, use_cache=False
        )
        return output.last_hidden_state  # (B, T, H)


def _decoder_and_folder(model_or_path, output_dir) -> tuple[MagnetDecoder, Path]:
    if isinstance(model_or_path, SentenceTransformer):
        if not isinstance(model_or_path[0], MagnetDecoder):
            raise TypeError("`model_or_path` must be a MAGNET model (its first module a MagnetDecoder) or a folder.")
        if output_dir is None:
            raise ValueError("`output_dir` is needed to export a loaded model: the folder it is (or will be) saved in.")
        folder = Path(output_dir)
        if not is_saved_magnet_model(folder):
            model_or_path.save(str(folder))  # the ONNX backend reads the tokenizer and modules from here
        return model_or_path[0], folder
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TypeError(f"`model_or_path` must be a MAGNET model or a folder, got {type(model_or_path).__name__}.")
    path = Path(model_or_path).expanduser()
    if not is_saved_magnet_model(path):
        raise ValueError(f"{str(path)!r} is not a saved MAGNET model folder; save one with `model.save(path)` first.")
    return MagnetDecoder.load(str(path)), Path(output_dir) if output_dir is not None else path


def _export_fp32(decoder: MagnetDecoder, file: Path) -> None:
    import onnx

    mode = AttentionMode.parse_reading(decoder.attention_mode)
    graph = TokenStates(exportable_model(decoder.model).get_decoder(), mode)
    # Two texts of different lengths: the traced graph must keep the padding mask, which
    # transformers drops when a batch has no padding.
    features = decoder.preprocess(["An example sentence to trace the graph with.", "Short."])
    axes = {0: "batch", 1: "sequence"}
    with eval_mode(graph), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches
        torch.onnx.export(
            graph,
            (features["input_ids"], features["attention_mask"]),
            str(file),
            dynamo=False,  # the dynamo exporter needs onnxscript; the TorchScript one keeps `is_causal`
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=OPSET,
        )
    proto = onnx.load(str(file))
    onnx.helper.set_model_props(proto, {ATTENTION_MODE_KEY: mode.value})
    onnx.save(proto, str(file))


def _quantize(decoder: MagnetDecoder, folder: Path, source: Path, file: Path) -> None:
    # Per-token int8 activations with per-channel int8 weights, after smoothing calibrated on the packaged
    # sample text: onnxruntime's dynamic int8 scales each activation tensor as a whole, which the few huge
    # activations of a decoder's first token crush (see magnet_st.backends.int8).
    from magnet_st.backends.int8 import SMOOTHING_ALPHA, calibration_batches, quantize_per_token

    quantize_per_token(source, file, calibration=calibration_batches(decoder, folder), alpha=SMOOTHING_ALPHA)


def export_onnx(model_or_path, output_dir: str | os.PathLike | None = None, *, quantize: bool = True) -> list[Path]:
    """Export a MAGNET model's token states to ONNX, in the attention mode it encodes with.

    Args:
        model_or_path: A folder saved by `model.save()`, or a loaded MAGNET model.
        output_dir: Folder that receives `onnx/` (default: the model folder). A loaded model is saved
            there first when it holds no saved model.
        quantize: Also write a per-token int8 copy for this CPU (`quantized_file_name()`).

    Returns:
        The files written. Each is written under a temporary name and renamed when complete.
    """
    require_onnx()
    decoder, folder = _decoder_and_folder(model_or_path, output_dir)
    onnx_folder = folder / ONNX_FOLDER
    onnx_folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=onnx_folder))
    try:
        staged = {FP32_FILE: staging / "model.onnx"}
        _export_fp32(decoder, staged[FP32_FILE])
        if quantize:
            target = quantization_target()
            staged[quantized_file_name(target)] = staging / "model_int8.onnx"
            _quantize(decoder, folder, staged[FP32_FILE], staged[quantized_file_name(target)])
        written = []
        for name, file in staged.items():
            os.replace(file, folder / name)
            written.append(folder / name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
