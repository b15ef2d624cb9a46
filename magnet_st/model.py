"""`load_model`: one entry point for the embedded default, a local decoder folder or a saved MAGNET model."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Pooling

from magnet_st.attention import AttentionMode
from magnet_st.backends import check_backend, load_onnx_model
from magnet_st.base_models import EMBEDDED_MODELS, resolve_base_model
from magnet_st.modules.decoder import LORA_ADAPTER_FOLDER, MagnetDecoder
from magnet_st.validation import check_texts

SENTENCE_PROMPT = "Given the sentence, find its representation: "
PROMPT_NAME = "sentence"
POOLING_MODES = {"lasttoken": "lasttoken", "last": "lasttoken", "mean": "mean"}
PLAIN_TRANSFORMER_TYPE = f"{Transformer.__module__}.{Transformer.__name__}"


class MagnetSentenceTransformer(SentenceTransformer):
    """A SentenceTransformer over a MAGNET decoder.

    It saves as plain sentence-transformers modules (the decoder as the built-in `Transformer` over a
    bidirectional checkpoint), so `SentenceTransformer(path)` reloads it without this package, while
    `magnet_st.load_model(path)` restores every capability, LM head included.
    """

    @property
    def decoder(self) -> MagnetDecoder:
        return self[0]

    def encode(self, inputs: Any = None, *args: Any, **kwargs: Any):  # noqa: D102 - as SentenceTransformer.encode
        if "attention_mode" in kwargs:
            mode = AttentionMode.parse(kwargs["attention_mode"])
            if mode is AttentionMode.HYBRID:
                raise ValueError(
                    "`attention_mode='hybrid'` needs span positions and is for training and infilling; "
                    "encode with 'bidirectional' (default) or 'causal'."
                )
            kwargs["attention_mode"] = mode.value
        check_texts(inputs, "inputs")
        return super().encode(inputs, *args, **kwargs)

    def save(self, path: str, *args: Any, **kwargs: Any) -> None:
        """Save atomically: a crash mid-way leaves any earlier save at `path` intact."""
        if path is None:
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.saving-", dir=target.parent))
        try:
            super().save(str(staging), *args, **kwargs)
            self._write_plain_module_types(staging)
            self._append_magnet_card(staging)
            if target.exists():
                backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                backup.rmdir()
                target.rename(backup)
                staging.rename(target)
                shutil.rmtree(backup, ignore_errors=True)
            else:
                staging.rename(target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    save_pretrained = save

    @classmethod
    def _load_with_module_classes(cls, model_name_or_path: str, module_classes: Any, **kwargs: Any):
        """Reload a checkpoint in the layout training left it in (the trainer's resume calls this).

        A LoRA checkpoint holds merged weights for export plus the adapter; resuming needs the
        unmerged base with the adapter attached, so the state dict matches the live model's.
        """
        from transformers import AutoModelForCausalLM

        from magnet_st.lora import load_adapter

        path = Path(model_name_or_path)
        model = _load_saved(path, device=None, model_kwargs=None)
        adapter = path / LORA_ADAPTER_FOLDER
        if adapter.is_dir():
            base_path = Path(model.decoder.base_model_path)
            if not (base_path / "config.json").is_file():
                raise FileNotFoundError(
                    f"Resuming LoRA training from {str(path)!r} needs its base weights at {str(base_path)!r}, "
                    "which are gone."
                )
            model.decoder.model = AutoModelForCausalLM.from_pretrained(
                base_path, attn_implementation=model.decoder.config._attn_implementation
            )
            load_adapter(model, adapter, is_trainable=True)
        return model

    def _write_plain_module_types(self, path: Path) -> None:
        # The decoder reloads in plain sentence-transformers as its built-in Transformer.
        modules_file = path / "modules.json"
        modules = json.loads(modules_file.read_text())
        for entry in modules:
            if entry["type"] == f"{MagnetDecoder.__module__}.{MagnetDecoder.__name__}":
                entry["type"] = PLAIN_TRANSFORMER_TYPE
        modules_file.write_text(json.dumps(modules, indent=2))

    def _append_magnet_card(self, path: Path) -> None:
        card = path / "README.md"
        if not card.exists():
            return
        pooling = next((module for module in self if isinstance(module, Pooling)), None)
        prompt = self.prompts.get(self.default_prompt_name or "", "")
        lines = [
            "",
            "## MAGNET",
            "",
            "This model was built with [magnet-st](https://github.com/magnet-st/magnet-st), an implementation of "
            "MAGNET (Khosla et al., *MAGNET: Augmenting Generative Decoders with Representation Learning and "
            "Infilling Capabilities*, ACL 2025, arXiv 2501.08648).",
            "",
            f"- Base model: `{self.decoder.base_model}` ({type(self.decoder.causal_lm).__name__})",
            f"- Attention when encoding: {self.decoder.attention_mode}",
            f"- Pooling: {pooling.pooling_mode if pooling else 'none'}"
            + (f" (include_prompt={pooling.include_prompt})" if pooling else ""),
            f"- Prompt (`{self.default_prompt_name}`): `{prompt}`" if prompt else "- Prompt: none",
            f"- EOS appended by the tokenizer: {self.decoder.append_eos}",
            f"- Max sequence length: {self.decoder.max_seq_length}",
            "",
            "It loads in plain sentence-transformers (`SentenceTransformer(path)`); `magnet_st.load_model(path)` "
            "also restores the LM head for `magnet_st.generate` and `magnet_st.infill`.",
            "",
        ]
        card.write_text(card.read_text(encoding="utf-8") + "\n".join(lines), encoding="utf-8")


def sentence_pooling(decoder: MagnetDecoder, pooling: str) -> Pooling:
    """The Pooling module for "lasttoken" or "mean"; mean pooling leaves the instruction out, as LLM2Vec does."""
    pooling_mode = POOLING_MODES.get(pooling)
    if pooling_mode is None:
        raise ValueError(f"`pooling` must be 'lasttoken' or 'mean', got {pooling!r}.")
    return Pooling(
        decoder.get_embedding_dimension(), pooling_mode=pooling_mode, include_prompt=pooling_mode == "lasttoken"
    )


def _is_saved_magnet_model(path: Path) -> bool:
    return (path / "modules.json").is_file() and (path / MagnetDecoder.config_file_name).is_file()


def _load_saved(path: Path, device: str | None, model_kwargs: dict[str, Any] | None) -> MagnetSentenceTransformer:
    modules = []
    for entry in json.loads((path / "modules.json").read_text()):
        subfolder = entry["path"]
        if (path / subfolder / MagnetDecoder.config_file_name).is_file():
            module = MagnetDecoder.load(str(path), subfolder=subfolder, model_kwargs=model_kwargs)
        else:
            module_name, _, class_name = entry["type"].rpartition(".")
            module_class = getattr(importlib.import_module(module_name), class_name)
            module = module_class.load(str(path), subfolder=subfolder)
        modules.append(module)
    settings = json.loads((path / "config_sentence_transformers.json").read_text())
    return MagnetSentenceTransformer(
        modules=modules,
        device=device,
        prompts=settings.get("prompts") or {},
        default_prompt_name=settings.get("default_prompt_name"),
        similarity_fn_name=settings.get("similarity_fn_name"),
        model_card_data=SentenceTransformerModelCardData(model_name=f"MAGNET {path.name}"),
    )


def load_model(
    name_or_path: str | os.PathLike = "smollm2-135m",
    *,
    pooling: Literal["lasttoken", "mean"] | None = None,
    prompt: str | None = SENTENCE_PROMPT,
    attention_mode: str | None = None,
    max_seq_length: int | None = None,
    append_eos: bool = True,
    device: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backend: str = "torch",
) -> MagnetSentenceTransformer:
    """Load a MAGNET sentence-transformers model.

    Args:
        name_or_path: An embedded base model name (e.g. "smollm2-135m"), a local Hugging Face decoder
            folder, or a folder saved by `model.save()`.
        pooling: "lasttoken" (the paper's final-token state, default) or "mean". Only for a new model.
        prompt: Instruction prepended to every text when encoding (sentence-transformers' prompt
            mechanism, prompt name "sentence"); None for no prompt. Only for a new model.
        attention_mode: Default attention when encoding: "bidirectional" (default) or "causal".
        max_seq_length: Truncation length in tokens (default 512 for a new model, the saved one otherwise).
        append_eos: Append EOS to every text (needed by final-token pooling). Only for a new model.
        device: Torch device; sentence-transformers picks one when None.
        model_kwargs: Passed to `from_pretrained` of the causal LM (e.g. {"attn_implementation": "eager"});
            with backend="onnx": "file_name", "provider", "session_options".
        backend: "torch" (default) or "onnx": a saved model's ONNX export run by onnxruntime (encoding only;
            see `magnet_st.backends.export_onnx`).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"`name_or_path` must be an embedded model name ({', '.join(EMBEDDED_MODELS)}) or a folder path, "
            f"got {type(name_or_path).__name__}."
        )
    if attention_mode is not None and AttentionMode.parse(attention_mode) is AttentionMode.HYBRID:
        raise ValueError("`attention_mode` for encoding must be 'bidirectional' or 'causal', got 'hybrid'.")
    if check_backend(backend) == "onnx":
        return load_onnx_model(
            name_or_path,
            attention_mode=attention_mode,
            max_seq_length=max_seq_length,
            device=device,
            model_kwargs=model_kwargs,
        )
    path = Path(name_or_path).expanduser()
    if str(name_or_path) not in EMBEDDED_MODELS and _is_saved_magnet_model(path):
        for option, value in (("pooling", pooling), ("append_eos", None if append_eos else False)):
            if value is not None:
                raise ValueError(f"`{option}` is fixed when a MAGNET model is saved; it cannot change on load.")
        model = _load_saved(path, device, model_kwargs)
        if attention_mode is not None:
            model.decoder.attention_mode = AttentionMode.parse(attention_mode).value
        if max_seq_length is not None:
            model.decoder.max_seq_length = max_seq_length
        return model

    pooling_mode = POOLING_MODES.get(pooling or "lasttoken")
    if pooling_mode is None:
        raise ValueError(f"`pooling` must be 'lasttoken' or 'mean', got {pooling!r}.")  # before the slow load
    folder = resolve_base_model(name_or_path)
    base_name = str(name_or_path) if str(name_or_path) in EMBEDDED_MODELS else path.name
    decoder = MagnetDecoder(
        folder,
        attention_mode=attention_mode or "bidirectional",
        max_seq_length=max_seq_length,
        append_eos=append_eos,
        base_model=base_name,
        model_kwargs=model_kwargs,
    )
    if pooling_mode == "lasttoken" and not append_eos:
        raise ValueError("`pooling='lasttoken'` reads the appended EOS state; keep `append_eos=True` or use 'mean'.")
    pooling_module = sentence_pooling(decoder, pooling_mode)
    prompts = {PROMPT_NAME: prompt} if prompt else {}
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
