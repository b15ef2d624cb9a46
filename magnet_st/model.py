"""`load_model` and `MagnetSentenceTransformer`: the model layer over a MAGNET decoder.

How a saved folder serves both plain sentence-transformers and magnet_st is explained once, in
`magnet_st.persistence`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData
from sentence_transformers.sentence_transformer.modules import Pooling

from magnet_st.attention import AttentionMode
from magnet_st.backends import check_backend, load_onnx_model
from magnet_st.base_models import DEFAULT_BASE_MODEL, EMBEDDED_MODELS, check_name_or_path, resolve_base_model
from magnet_st.folders import model_folder
from magnet_st.modules.decoder import MagnetDecoder
from magnet_st.persistence import (
    append_magnet_card,
    has_adapter,
    is_saved_magnet_model,
    load_modules,
    restore_adapter,
    saved_settings,
    write_plain_module_types,
)
from magnet_st.pretrained import PRETRAINED_MODELS, pretrained_model_folder
from magnet_st.validation import check_prompt, check_texts

SENTENCE_PROMPT = "Given the sentence, find its representation: "


class _DefaultPrompt(str):
    """`load_model`'s default prompt: the paper's text, told apart (by identity) from the same text given."""


DEFAULT_PROMPT = _DefaultPrompt(SENTENCE_PROMPT)
PROMPT_NAME = "sentence"
POOLING_MODES = {"lasttoken": "lasttoken", "last": "lasttoken", "mean": "mean"}


class MagnetSentenceTransformer(SentenceTransformer):
    """A SentenceTransformer over a MAGNET decoder (its first module).

    It saves as plain sentence-transformers modules, so `SentenceTransformer(path)` reloads it without
    this package, while `magnet_st.load_model(path)` restores every capability, LM head included.
    `MagnetSentenceTransformer(path)` restores a saved folder as training left it: a LoRA adapter saved
    with the model comes back attached, trainable, to its base weights (how the trainer resumes).
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        modules: list | None = None,
        model_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if model_name_or_path is not None and Path(model_name_or_path).expanduser().is_dir():
            model_name_or_path = str(Path(model_name_or_path).expanduser())
        if modules is None and model_name_or_path is not None and is_saved_magnet_model(Path(model_name_or_path)):
            path = Path(model_name_or_path)
            modules = load_modules(path, MagnetDecoder, model_kwargs)
            if has_adapter(path):  # the decoder is saved in the root folder
                restore_adapter(modules[0], path)
            kwargs = {**saved_settings(path), **kwargs}
            model_name_or_path = model_kwargs = None
        if model_kwargs is not None:
            kwargs["model_kwargs"] = model_kwargs
        super().__init__(model_name_or_path, modules=modules, **kwargs)

    @property
    def decoder(self) -> MagnetDecoder:
        return self[0]

    def encode(self, inputs: Any = None, *args: Any, **kwargs: Any):  # noqa: D102 - as SentenceTransformer.encode
        if "attention_mode" in kwargs:
            kwargs["attention_mode"] = AttentionMode.parse_reading(kwargs["attention_mode"]).value
        check_texts(inputs, "inputs")
        check_prompt(kwargs.get("prompt"))
        return super().encode(inputs, *args, **kwargs)

    def save(self, path: str | os.PathLike, *args: Any, overwrite: bool = False, **kwargs: Any) -> None:
        """Save into `path` (`~` expanded), staged: a crash mid-way leaves any earlier save at `path` intact.

        `path` may be a new or empty folder or an earlier save, whose model files are replaced (other files
        stay). Any other non-empty folder is refused unless `overwrite=True`, which writes the model's files
        beside what is there (same-named files replaced, nothing else touched). A file path is refused.
        """
        if path is None:
            return
        with model_folder(path, overwrite=overwrite) as staging:
            super().save(str(staging), *args, **kwargs)
            write_plain_module_types(staging)
            append_magnet_card(self, staging)

    save_pretrained = save


def set_sentence_prompt(model: SentenceTransformer, prompt: str | None) -> None:
    """Make `prompt` the model's default encoding prompt (prompt name "sentence"); None or "" removes it."""
    model.prompts.pop(PROMPT_NAME, None)
    if prompt:
        model.prompts[PROMPT_NAME] = prompt
    model.default_prompt_name = PROMPT_NAME if prompt else None


def _pooling_mode(pooling: str) -> str:
    pooling_mode = POOLING_MODES.get(pooling)
    if pooling_mode is None:
        raise ValueError(f"`pooling` must be 'lasttoken' or 'mean', got {pooling!r}.")
    return pooling_mode


def sentence_pooling(decoder: MagnetDecoder, pooling: str) -> Pooling:
    """The Pooling module for "lasttoken" or "mean"; mean pooling leaves the instruction out, as LLM2Vec does."""
    pooling_mode = _pooling_mode(pooling)
    return Pooling(
        decoder.get_embedding_dimension(), pooling_mode=pooling_mode, include_prompt=pooling_mode == "lasttoken"
    )


def load_model(
    name_or_path: str | os.PathLike = DEFAULT_BASE_MODEL,
    *,
    pooling: Literal["lasttoken", "mean"] | None = None,
    prompt: str | None = DEFAULT_PROMPT,
    attention_mode: str | None = None,
    max_seq_length: int | None = None,
    append_eos: bool = True,
    device: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backend: str = "torch",
) -> MagnetSentenceTransformer:
    """Load a MAGNET sentence-transformers model.

    Args:
        name_or_path: A pretrained MAGNET model name ("magnet-smollm2-135m"), an embedded base model name
            ("smollm2-135m", unadapted), a local Hugging Face decoder folder, or a folder saved by `model.save()`.
        pooling: "lasttoken" (the paper's final-token state, default) or "mean". Only for a new model.
        prompt: Instruction prepended to every text when encoding (sentence-transformers' prompt
            mechanism, prompt name "sentence"); None for no prompt. A saved model keeps its own prompt
            unless a prompt (any text, the default's included, or None) is given.
        attention_mode: Default attention when encoding: "bidirectional" (default) or "causal".
        max_seq_length: Truncation length in tokens (default 512 for a new model, the saved one otherwise).
        append_eos: Append EOS to every text (needed by final-token pooling). Only for a new model.
        device: Torch device; sentence-transformers picks one when None.
        model_kwargs: Passed to `from_pretrained` of the causal LM (e.g. {"attn_implementation": "eager"});
            with backend="onnx": "file_name", "provider", "session_options".
        backend: "torch" (default) or "onnx": a saved model's ONNX export run by onnxruntime (encoding only;
            see `magnet_st.backends.export_onnx`).
    """
    check_name_or_path(name_or_path)
    check_prompt(prompt)
    mode = None if attention_mode is None else AttentionMode.parse_reading(attention_mode)
    if check_backend(backend) == "onnx":
        return load_onnx_model(
            name_or_path,
            attention_mode=attention_mode,
            max_seq_length=max_seq_length,
            device=device,
            model_kwargs=model_kwargs,
        )
    path = Path(name_or_path).expanduser()
    if str(name_or_path) in PRETRAINED_MODELS:
        path = pretrained_model_folder(str(name_or_path))
    if str(name_or_path) not in EMBEDDED_MODELS and is_saved_magnet_model(path):
        for option, value in (("pooling", pooling), ("append_eos", None if append_eos else False)):
            if value is not None:
                raise ValueError(f"`{option}` is fixed when a MAGNET model is saved; it cannot change on load.")
        modules = load_modules(path, MagnetDecoder, model_kwargs)
        model = MagnetSentenceTransformer(modules=modules, device=device, **saved_settings(path))
        if mode is not None:
            model.decoder.attention_mode = mode.value
        if max_seq_length is not None:
            model.decoder.max_seq_length = max_seq_length
        if prompt is not DEFAULT_PROMPT:  # given explicitly: replaces the saved prompt
            set_sentence_prompt(model, prompt)
        return model

    pooling_mode = _pooling_mode(pooling or "lasttoken")  # before the slow load
    folder = resolve_base_model(name_or_path)
    base_name = str(name_or_path) if str(name_or_path) in EMBEDDED_MODELS else path.name
    decoder = MagnetDecoder(
        folder,
        attention_mode=(mode or AttentionMode.BIDIRECTIONAL).value,
        max_seq_length=max_seq_length,
        append_eos=append_eos,
        base_model=base_name,
        model_kwargs=model_kwargs,
    )
    if pooling_mode == "lasttoken" and not append_eos:
        raise ValueError("`pooling='lasttoken'` reads the appended EOS state; keep `append_eos=True` or use 'mean'.")
    pooling_module = sentence_pooling(decoder, pooling_mode)
    prompts = {PROMPT_NAME: str(prompt)} if prompt else {}
    return MagnetSentenceTransformer(
        modules=[decoder, pooling_module],
        device=device,
        prompts=prompts,
        default_prompt_name=PROMPT_NAME if prompt else None,
        similarity_fn_name="cosine",
        model_card_data=SentenceTransformerModelCardData(
            model_name=f"MAGNET {base_name}", tags=["magnet", "sentence-transformers", "decoder"]
        ),
    )
