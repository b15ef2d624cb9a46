"""MagnetDecoder: a decoder-only LM (LM head kept) as a sentence-transformers input module.

Data flow: text -> preprocess (tokenize, right padding, EOS appended) -> decoder under an
attention mode -> `token_embeddings` for pooling or a head. Bidirectional and causal passes use
the model's own `is_causal` switch; the hybrid mode passes the 4D MAGNET mask (all through
`magnet_st.decoding.run_decoder`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from safetensors import SafetensorError
from sentence_transformers.base.modules import InputModule
from tokenizers.processors import TemplateProcessing
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from magnet_st.attention import AttentionMode
from magnet_st.base_models import check_decoder_folder
from magnet_st.decoding import bos_prefix, run_decoder
from magnet_st.persistence import MAGNET_CONFIG_FILE, has_adapter, save_decoder
from magnet_st.validation import check_positive_int, check_texts

DEFAULT_MAX_SEQ_LENGTH = 512


def _is_peft_model(model: torch.nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def _load_causal_lm(folder: str, model_kwargs: dict[str, Any]) -> PreTrainedModel:
    try:
        return AutoModelForCausalLM.from_pretrained(folder, **model_kwargs)
    except SafetensorError as error:
        raise ValueError(
            f"The weights in {folder!r} cannot be read ({error}): the safetensors file is corrupt or incomplete; "
            "save or copy the model again."
        ) from None


class MagnetDecoder(InputModule):
    """A decoder-only causal LM wrapped for sentence-transformers, with MAGNET attention modes.

    Args:
        model_name_or_path: Local Hugging Face folder of a decoder-only causal LM.
        attention_mode: Default mode of `forward` ("bidirectional", "causal" or "hybrid");
            `encode(..., attention_mode=...)` overrides it per call.
        max_seq_length: Longer inputs are truncated to this many tokens (EOS included).
        append_eos: Append the tokenizer's EOS token to every text (the final-token pooling reads it).
        base_model: Name of the base model, kept for the model card.
        base_model_path: Folder of the unadapted base weights (default: `model_name_or_path`).
        model_kwargs: Passed to `AutoModelForCausalLM.from_pretrained` (e.g. `attn_implementation`, `dtype`).
        processor_kwargs: Passed to `AutoTokenizer.from_pretrained`.
    """

    config_file_name = MAGNET_CONFIG_FILE
    config_keys = ["attention_mode", "append_eos", "base_model", "base_model_path"]
    forward_kwargs = {"attention_mode"}
    save_in_root = True

    def __init__(
        self,
        model_name_or_path: str,
        *,
        attention_mode: str = "bidirectional",
        max_seq_length: int | None = DEFAULT_MAX_SEQ_LENGTH,
        append_eos: bool = True,
        base_model: str | None = None,
        base_model_path: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        **_unused: Any,
    ) -> None:
        super().__init__()
        self.attention_mode = AttentionMode.parse(attention_mode).value
        self.append_eos = append_eos
        self.base_model = base_model or os.path.basename(os.path.normpath(model_name_or_path))
        # Where the unadapted weights live: resuming LoRA training re-attaches the adapter there.
        self.base_model_path = base_model_path or os.path.abspath(model_name_or_path)
        check_decoder_folder(model_name_or_path)
        model_kwargs = {"attn_implementation": "sdpa", **(model_kwargs or {})}
        self.model: PreTrainedModel = _load_causal_lm(model_name_or_path, model_kwargs)
        # The config flag mirrors the default mode, so raw access to the model behaves like `forward`.
        self.model.config.is_causal = self.attention_mode == AttentionMode.CAUSAL.value
        self.tokenizer = AutoTokenizer.from_pretrained(model_name_or_path, **(processor_kwargs or {}))
        self._prepare_tokenizer()
        if max_seq_length is not None:
            self.max_seq_length = max_seq_length
        elif self.tokenizer.model_max_length > 10**8:  # the tokenizer's "no limit" sentinel
            self.max_seq_length = DEFAULT_MAX_SEQ_LENGTH
        self._prompt_lengths: dict[str, int] = {}

    # -- tokenizer ---------------------------------------------------------------------------------
    def _prepare_tokenizer(self) -> None:
        tokenizer = self.tokenizer
        if not getattr(tokenizer, "is_fast", False) or getattr(tokenizer, "backend_tokenizer", None) is None:
            raise ValueError("MagnetDecoder needs a fast (tokenizers-backed) tokenizer.")
        if tokenizer.eos_token is None:
            raise ValueError("The tokenizer has no EOS token; set `tokenizer.eos_token` before wrapping it.")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Right padding: token states stay aligned with positions, and `token_embeddings` trims cleanly.
        tokenizer.padding_side = "right"
        if self.append_eos:
            self._install_eos_post_processor()

    def _install_eos_post_processor(self) -> None:
        """Make the tokenizer itself append EOS, so plain sentence-transformers tokenizes identically."""
        tokenizer = self.tokenizer
        if tokenizer("a")["input_ids"][-1:] == [tokenizer.eos_token_id]:
            return  # already appends EOS (saved MAGNET model, or a tokenizer that does)
        bos = tokenizer.bos_token
        adds_bos = bool(bos_prefix(tokenizer))
        eos = tokenizer.eos_token
        prefix = f"{bos} " if adds_bos else ""
        specials = [(eos, tokenizer.eos_token_id)] + ([(bos, tokenizer.bos_token_id)] if adds_bos else [])
        tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
            single=f"{prefix}$A {eos}",
            pair=f"{prefix}$A {eos} $B:1 {eos}:1",
            special_tokens=specials,
        )

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.model_max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        check_positive_int(value, "max_seq_length")
        window = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        if window is not None and value > window:
            raise ValueError(f"`max_seq_length` {value} exceeds the model's context window of {window} tokens.")
        self.tokenizer.model_max_length = value

    def preprocess(self, inputs: Sequence[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenize plain texts (never through a chat template), right-padded and truncated."""
        raw_texts = check_texts(inputs, "inputs")
        texts = [prompt + text for text in raw_texts] if prompt else raw_texts
        max_length = kwargs.get("max_length") or self.max_seq_length
        if prompt:
            self._check_prompt_room(prompt, max_length)
        features = dict(
            self.tokenizer(texts, padding=True, truncation="longest_first", max_length=max_length, return_tensors="pt")
        )
        features.pop("token_type_ids", None)
        features["texts"] = raw_texts  # unprompted, for losses that build their own views
        if prompt:
            features["prompt_length"] = self.prompt_length(prompt)
        return features

    def _check_prompt_room(self, prompt: str, max_length: int) -> None:
        """Refuse a prompt that leaves no token of `max_length` for the text: every text would embed alike."""
        used = self.prompt_length(prompt) + (1 if self.append_eos else 0)
        if used >= max_length:
            raise ValueError(
                f"The prompt takes {used} of the {max_length} tokens of `max_seq_length` (EOS included), leaving "
                f"none for the text, so every text would get the same embedding; shorten `prompt` "
                f"({prompt!r:.60}) or raise `max_seq_length`."
            )

    def prompt_length(self, prompt: str) -> int:
        """Prompt tokens at the start of a prompted text (as sentence-transformers' Transformer counts them)."""
        if prompt not in self._prompt_lengths:
            ids = self.tokenizer(prompt)["input_ids"]
            if ids and ids[-1] in self.tokenizer.all_special_ids:
                ids = ids[:-1]
            self._prompt_lengths[prompt] = len(ids)
        return self._prompt_lengths[prompt]

    # -- model -------------------------------------------------------------------------------------
    @property
    def causal_lm(self) -> PreTrainedModel:
        """The causal LM with its head (LoRA layers injected when an adapter is attached)."""
        return self.model.get_base_model() if _is_peft_model(self.model) else self.model

    @property
    def backbone(self) -> PreTrainedModel:
        """The decoder stack without the LM head."""
        return self.causal_lm.get_decoder()

    @property
    def auto_model(self) -> PreTrainedModel:
        return self.model

    @property
    def config(self):
        return self.causal_lm.config

    def get_embedding_dimension(self) -> int:
        return self.config.get_text_config().hidden_size

    def lm_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Next-token logits from token states, as the causal LM computes them."""
        logits = self.causal_lm.get_output_embeddings()(hidden_states)
        softcap = getattr(self.config.get_text_config(), "final_logit_softcapping", None)
        if softcap:  # Gemma-style logit soft-capping
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    def forward(self, features: dict[str, Any], attention_mode: str | None = None, **kwargs: Any) -> dict[str, Any]:
        mode = AttentionMode.parse(self.attention_mode if attention_mode is None else attention_mode)
        span_mask = features.get("span_mask")
        if mode is AttentionMode.HYBRID and span_mask is None:
            raise ValueError(
                "attention_mode='hybrid' needs a `span_mask` feature (True for span tokens); "
                "use 'bidirectional' or 'causal' for plain encoding."
            )
        features["token_embeddings"] = run_decoder(
            self.backbone,
            features["input_ids"],
            mode=mode,
            span_mask=span_mask if mode is AttentionMode.HYBRID else None,
            key_mask=features["attention_mask"],
            position_ids=features.get("position_ids"),
        )
        return features

    # -- persistence: the folder format and its two identities live in magnet_st.persistence -------
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        save_decoder(self, output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> MagnetDecoder:
        config = cls.load_config(model_name_or_path, subfolder=subfolder)
        path = os.path.join(model_name_or_path, subfolder)
        if not has_adapter(path):
            config["base_model_path"] = os.path.abspath(path)  # these weights are the base of any new adapter
        return cls(path, max_seq_length=None, model_kwargs=model_kwargs, processor_kwargs=processor_kwargs, **config)

    def __repr__(self) -> str:
        return (
            f"MagnetDecoder({{'architecture': {type(self.causal_lm).__name__!r}, 'base_model': {self.base_model!r}, "
            f"'attention_mode': {self.attention_mode!r}, 'max_seq_length': {self.max_seq_length}, "
            f"'append_eos': {self.append_eos}}})"
        )
