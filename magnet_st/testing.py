"""Tiny randomly initialised decoders for tests and smoke runs (no download, seconds to build)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from magnet_st.base_models import DEFAULT_BASE_MODEL, resolve_base_model

TINY_ARCHITECTURES = ("llama", "mistral", "qwen2", "gemma3_text")


def tiny_config(architecture: str, vocab_size: int, **overrides):
    """A 2-layer, hidden-64 config of a transformers architecture."""
    from transformers import AutoConfig

    sizes = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    if architecture == "gemma3_text":
        sizes.update(sliding_window=512, layer_types=["sliding_attention", "full_attention"])
    sizes.update(overrides)
    return AutoConfig.for_model(architecture, **sizes)


def base_tokenizer() -> PreTrainedTokenizerBase:
    """The embedded default's real tokenizer, so tiny models read real text."""
    return AutoTokenizer.from_pretrained(resolve_base_model(DEFAULT_BASE_MODEL))


def make_tiny_decoder(folder: str | Path, architecture: str = "llama", seed: int = 0, **overrides) -> str:
    """Save a tiny random causal LM with the default tokenizer into `folder` and return its path."""
    tokenizer = base_tokenizer()
    config = tiny_config(architecture, vocab_size=len(tokenizer), **overrides)
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
