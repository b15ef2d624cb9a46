"""OnnxDecoder: a MAGNET model's ONNX export run by onnxruntime, as a sentence-transformers input module.

It tokenizes exactly as `MagnetDecoder` (the same `preprocess`: saved tokenizer, EOS appended, right
padding, prompts) and returns `token_embeddings`, so the saved Pooling and prompts work unchanged.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import InputModule
from transformers import AutoConfig, AutoTokenizer

from magnet_st.attention import AttentionMode
from magnet_st.backends.onnx_export import ATTENTION_MODE_KEY, FP32_FILE, require_onnx
from magnet_st.modules.decoder import DEFAULT_MAX_SEQ_LENGTH, MagnetDecoder
from magnet_st.persistence import is_saved_magnet_model
from magnet_st.validation import check_positive_int

SESSION_KWARGS = ("file_name", "provider", "session_options")


class OnnxDecoder(InputModule):
    """The token states of a saved MAGNET model, computed by an onnxruntime session.

    Args:
        model_path: Folder saved by `model.save()` and exported by `magnet_st.backends.export_onnx`.
        file_name: The ONNX file inside it, e.g. "onnx/model.onnx" or "onnx/model_qint8_avx2.onnx".
        provider: onnxruntime execution provider.
        session_options: An `onnxruntime.SessionOptions` (threads, graph optimisation level).
        max_seq_length: Truncation length in tokens (default: the saved one).
    """

    forward_kwargs = {"attention_mode"}
    save_in_root = True
    # Tokenization is MagnetDecoder's own, so both backends see the same token ids.
    preprocess = MagnetDecoder.preprocess
    prompt_length = MagnetDecoder.prompt_length
    _check_prompt_room = MagnetDecoder._check_prompt_room

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        file_name: str = FP32_FILE,
        provider: str = "CPUExecutionProvider",
        session_options: Any = None,
        max_seq_length: int | None = None,
    ) -> None:
        super().__init__()
        onnxruntime = require_onnx()
        onnx_file = Path(model_path) / file_name
        if not onnx_file.is_file():
            raise FileNotFoundError(
                f"{str(onnx_file)!r} does not exist: export the model first with "
                f"`magnet_st.backends.export_onnx({str(model_path)!r})` or `magnet-st export-onnx {model_path}`."
            )
        self.file_name = file_name
        self.session = onnxruntime.InferenceSession(str(onnx_file), sess_options=session_options, providers=[provider])
        exported_mode = self.session.get_modelmeta().custom_metadata_map.get(ATTENTION_MODE_KEY, "bidirectional")
        self.attention_mode = AttentionMode.parse_reading(exported_mode).value
        config = AutoConfig.from_pretrained(model_path).get_text_config()
        self.embedding_dimension = config.hidden_size
        self.context_window = getattr(config, "max_position_embeddings", None)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        if max_seq_length is not None:
            self.max_seq_length = max_seq_length
        elif self.tokenizer.model_max_length > 10**8:  # the tokenizer's "no limit" sentinel
            self.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
        self._prompt_lengths: dict[str, int] = {}
        # The saved tokenizer appends EOS itself when the model was saved with `append_eos`.
        self.append_eos = self.tokenizer("a")["input_ids"][-1:] == [self.tokenizer.eos_token_id]

    @property
    def max_seq_length(self) -> int:
        """Truncation length in tokens, kept by the tokenizer as in MagnetDecoder."""
        return self.tokenizer.model_max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        limit = self.context_window or value
        if check_positive_int(value, "max_seq_length") > limit:
            raise ValueError(f"`max_seq_length` {value} exceeds the model's context window of {limit} tokens.")
        self.tokenizer.model_max_length = value

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def forward(self, features: dict[str, Any], attention_mode: str | None = None, **kwargs: Any) -> dict[str, Any]:
        mode = AttentionMode.parse_reading(self.attention_mode if attention_mode is None else attention_mode)
        if mode.value != self.attention_mode:
            raise ValueError(
                f"`attention_mode={mode.value!r}`: this ONNX file was exported with {self.attention_mode!r} "
                "attention; use the torch backend for the other mode."
            )
        inputs = {name: features[name].cpu().numpy() for name in ("input_ids", "attention_mask")}  # (B, T) int64
        (states,) = self.session.run(["last_hidden_state"], inputs)  # (B, T, H)
        features["token_embeddings"] = torch.from_numpy(states)
        return features

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "A model loaded with backend='onnx' cannot be saved; save the torch model (`magnet_st.load_model(path)`) "
            "and export it again."
        )

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> OnnxDecoder:
        options = {key: kwargs[key] for key in (*SESSION_KWARGS, "max_seq_length") if kwargs.get(key) is not None}
        return cls(os.path.join(model_name_or_path, subfolder), **options)

    def __repr__(self) -> str:
        return (
            f"OnnxDecoder({{'file_name': {self.file_name!r}, 'attention_mode': {self.attention_mode!r}, "
            f"'max_seq_length': {self.max_seq_length}}})"
        )


def load_onnx_model(
    path: str | os.PathLike,
    *,
    attention_mode: str | None = None,
    max_seq_length: int | None = None,
    device: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
) -> SentenceTransformer:
    """A SentenceTransformer of [OnnxDecoder, the saved modules after the decoder (Pooling, ...)].

    `model_kwargs` takes "file_name" (default "onnx/model.onnx"), "provider" and "session_options".
    """
    require_onnx()
    folder = Path(path).expanduser()
    if not is_saved_magnet_model(folder):
        raise ValueError(
            f"backend='onnx' needs a saved and exported MAGNET model folder, got {str(path)!r}: "
            "save it with `model.save(path)` and export it with `magnet_st.backends.export_onnx(path)`."
        )
    if device not in (None, "cpu"):
        raise ValueError(
            f"backend='onnx' runs on onnxruntime; choose `model_kwargs['provider']`, not device={device!r}."
        )
    unknown = sorted(set(model_kwargs or {}) - set(SESSION_KWARGS))
    if unknown:
        raise ValueError(f"`model_kwargs` for backend='onnx' takes {', '.join(SESSION_KWARGS)}; got {unknown}.")
    decoder = OnnxDecoder(folder, max_seq_length=max_seq_length, **(model_kwargs or {}))
    if attention_mode is not None and AttentionMode.parse_reading(attention_mode).value != decoder.attention_mode:
        raise ValueError(
            f"`attention_mode={attention_mode!r}`: this ONNX file was exported with {decoder.attention_mode!r} attention."
        )
    modules: list[torch.nn.Module] = [decoder]
    for entry in json.loads((folder / "modules.json").read_text()):
        if (folder / entry["path"] / MagnetDecoder.config_file_name).is_file():
            continue  # the decoder, replaced by the ONNX session
        module_name, _, class_name = entry["type"].rpartition(".")
        modules.append(
            getattr(importlib.import_module(module_name), class_name).load(str(folder), subfolder=entry["path"])
        )
    settings = json.loads((folder / "config_sentence_transformers.json").read_text())
    return SentenceTransformer(
        modules=modules,
        device="cpu",
        prompts=settings.get("prompts") or {},
        default_prompt_name=settings.get("default_prompt_name"),
        similarity_fn_name=settings.get("similarity_fn_name"),
    )
