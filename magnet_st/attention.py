"""MAGNET attention: per-token roles (context / span / padding) -> the attention mask.

Rule (MAGNET.md), for query i and key j, padding keys always excluded:
    C -> C allowed, C -> S never, S -> C allowed, S -> S iff j <= i.
All-context is a bidirectional encoder, all-span is the original causal LM.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import torch
from transformers import Cache, PretrainedConfig
from transformers.masking_utils import create_bidirectional_mask


class AttentionMode(str, Enum):
    """How tokens attend to each other in one forward pass."""

    BIDIRECTIONAL = "bidirectional"  # every token is context
    CAUSAL = "causal"  # every token is span: the original LM
    HYBRID = "hybrid"  # roles given per token by a span mask

    @classmethod
    def parse(cls, value: str | AttentionMode, argument: str = "attention_mode") -> AttentionMode:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(mode.value) for mode in cls)
            raise ValueError(f"`{argument}` must be one of {choices}, got {value!r}.") from None

    @classmethod
    def parse_reading(cls, value: str | AttentionMode, argument: str = "attention_mode") -> AttentionMode:
        """Parse a mode for reading whole texts (encoding, tagging, probing): hybrid needs span positions."""
        mode = cls.parse(value, argument)
        if mode is cls.HYBRID:
            raise ValueError(
                f"`{argument}` must be 'bidirectional' or 'causal' here, got 'hybrid': hybrid attention needs "
                "span positions and is for training and infilling."
            )
        return mode


def hybrid_mask_function(span_mask: torch.Tensor) -> Callable:
    """The MAGNET rule as a `masking_utils` mask function over (batch, head, query, key) indices.

    `span_mask` is (batch, seq) bool, True where a token belongs to a span. Padding is handled by
    `masking_utils` itself and is neither context nor span here.
    """
    is_context = ~span_mask

    def magnet_rule(batch_idx, head_idx, q_idx, kv_idx):
        return is_context[batch_idx, kv_idx] | (~is_context[batch_idx, q_idx] & (kv_idx <= q_idx))

    return magnet_rule


def check_mask_backend(config: PretrainedConfig, purpose: str) -> None:
    """Raise when the attention backend takes no 4D mask (flash attention), which `purpose` needs."""
    implementation = config._attn_implementation
    if implementation not in ("eager", "sdpa"):
        raise ValueError(
            f"{purpose} needs a 4D mask, which attn_implementation={implementation!r} does not take; "
            "load the model with 'sdpa' or 'eager'."
        )


def hybrid_attention_mask(
    config: PretrainedConfig,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    span_mask: torch.Tensor,
    cache: Cache | None = None,
) -> torch.Tensor:
    """4D mask (batch, 1, seq, keys) for the hybrid mode, in the dtype the config's attention backend needs.

    `attention_mask` and `span_mask` cover every key: the cached ones (if `cache` is given), then the new
    tokens. Built on a bidirectional base with an AND overlay: a causal base with an OR overlay would let
    right context see the span, which is wrong for spans kept in place.
    """
    if span_mask.shape != attention_mask.shape:
        raise ValueError(
            f"`span_mask` must have the shape of `attention_mask` {tuple(attention_mask.shape)}, "
            f"got {tuple(span_mask.shape)}."
        )
    check_mask_backend(config, "Hybrid MAGNET attention")
    span_mask = span_mask.to(device=inputs_embeds.device, dtype=torch.bool)
    return create_bidirectional_mask(
        config=config,
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        cache=cache,
        and_mask_function=hybrid_mask_function(span_mask),
    )
