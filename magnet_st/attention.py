"""MAGNET attention: per-token roles (context / span / padding) -> the attention mask.

Rule (MAGNET.md), for query i and key j, padding keys always excluded:
    C -> C allowed, C -> S never, S -> C allowed, S -> S iff j <= i.
All-context is a bidirectional encoder, all-span is the original causal LM.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import torch
from transformers import PretrainedConfig
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


def hybrid_attention_mask(
    config: PretrainedConfig,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    span_mask: torch.Tensor,
) -> torch.Tensor:
    """4D mask (batch, 1, seq, seq) for the hybrid mode, in the dtype the config's attention backend needs.

    Built on a bidirectional base with an AND overlay: a causal base with an OR overlay would let
    right context see the span, which is wrong for spans kept in place.
    """
    if span_mask.shape != attention_mask.shape:
        raise ValueError(
            f"`span_mask` must have the shape of `attention_mask` {tuple(attention_mask.shape)}, "
            f"got {tuple(span_mask.shape)}."
        )
    if config._attn_implementation not in ("eager", "sdpa"):
        raise ValueError(
            f"Hybrid MAGNET attention needs a 4D mask, which attn_implementation="
            f"{config._attn_implementation!r} does not take; load the model with 'sdpa' or 'eager'."
        )
    span_mask = span_mask.to(device=inputs_embeds.device, dtype=torch.bool)
    mask = create_bidirectional_mask(
        config=config,
        inputs_embeds=inputs_embeds,
        attention_mask=attention_mask,
        and_mask_function=hybrid_mask_function(span_mask),
    )
    return mask


def allowed_attention(mask: torch.Tensor) -> torch.Tensor:
    """Boolean view (True = may attend) of a 4D mask from `masking_utils`, bool or additive float."""
    if mask.dtype == torch.bool:
        return mask
    return mask == 0


def attention_bias(allowed: torch.Tensor, config, dtype: torch.dtype) -> torch.Tensor:
    """A 4D boolean `allowed` mask in the form the attention backend takes (bool for sdpa, additive for eager)."""
    implementation = config._attn_implementation
    if implementation not in ("sdpa", "eager"):
        raise ValueError(
            f"Infilling needs a 4D attention mask, which attn_implementation={implementation!r} does not take; "
            "load the model with 'sdpa' or 'eager'."
        )
    if implementation == "sdpa":
        return allowed
    bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min)
