"""The MAGNET mask against a brute-force reference, for every backend that takes a 4D mask."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig

from magnet_st.attention import AttentionMode, allowed_attention, hybrid_attention_mask


def reference_mask(attention_mask: torch.Tensor, span_mask: torch.Tensor) -> torch.Tensor:
    """MAGNET.md, one (query, key) pair at a time."""
    batch, length = attention_mask.shape
    allowed = torch.zeros(batch, 1, length, length, dtype=torch.bool)
    for b in range(batch):
        for q in range(length):
            for k in range(length):
                if not attention_mask[b, k]:
                    continue  # padding keys: never
                q_span, k_span = bool(span_mask[b, q]), bool(span_mask[b, k])
                if not k_span:
                    allowed[b, 0, q, k] = True  # anyone -> context
                elif q_span:
                    allowed[b, 0, q, k] = k <= q  # span -> span: causal
                # context -> span: never
    return allowed


def config_for(backend: str) -> LlamaConfig:
    config = LlamaConfig(hidden_size=8, num_attention_heads=2, num_hidden_layers=1, vocab_size=10)
    config._attn_implementation = backend
    return config


@st.composite
def role_layouts(draw):
    batch = draw(st.integers(1, 3))
    length = draw(st.integers(1, 9))
    lengths = [draw(st.integers(1, length)) for _ in range(batch)]
    attention_mask = torch.tensor([[1] * n + [0] * (length - n) for n in lengths])
    span = torch.tensor([[draw(st.booleans()) for _ in range(length)] for _ in range(batch)])
    return attention_mask, span & attention_mask.bool()


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@settings(max_examples=60, deadline=None)
@given(layout=role_layouts())
def test_hybrid_mask_matches_reference(backend, layout):
    attention_mask, span_mask = layout
    embeds = torch.zeros(*attention_mask.shape, 8)
    mask = hybrid_attention_mask(config_for(backend), embeds, attention_mask, span_mask)
    assert mask.shape == (attention_mask.shape[0], 1, attention_mask.shape[1], attention_mask.shape[1])
    assert torch.equal(allowed_attention(mask), reference_mask(attention_mask, span_mask))
    if backend == "eager":  # eager needs an additive float mask: a bool one would leak
        assert mask.dtype == torch.float32


def test_worked_example_from_magnet_md():
    # positions 4-5 are a span in an 8-token text
    span = torch.tensor([[False] * 4 + [True, True] + [False] * 2])
    mask = allowed_attention(hybrid_attention_mask(config_for("sdpa"), torch.zeros(1, 8, 8), torch.ones(1, 8), span))
    expected = torch.tensor(
        [[1, 1, 1, 1, 0, 0, 1, 1]] * 4
        + [[1, 1, 1, 1, 1, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]]
        + [[1, 1, 1, 1, 0, 0, 1, 1]] * 2
    ).bool()
    assert torch.equal(mask[0, 0], expected)


def test_all_context_is_bidirectional_and_all_span_is_causal():
    padding = torch.tensor([[1, 1, 1, 1, 0]])
    config = config_for("sdpa")
    embeds = torch.zeros(1, 5, 8)
    everything_context = allowed_attention(hybrid_attention_mask(config, embeds, padding, torch.zeros(1, 5).bool()))
    everything_span = allowed_attention(hybrid_attention_mask(config, embeds, padding, padding.bool()))
    valid_keys = padding.bool()[:, None, None, :]
    assert torch.equal(everything_context, valid_keys.expand(1, 1, 5, 5))
    causal = torch.ones(5, 5).tril().bool()
    assert torch.equal(everything_span[0, 0, :4, :4], causal[:4, :4])


def test_unknown_mode_and_bad_shapes_are_named():
    with pytest.raises(ValueError, match="attention_mode.*'bidirectional'"):
        AttentionMode.parse("sideways")
    with pytest.raises(ValueError, match="span_mask"):
        hybrid_attention_mask(config_for("sdpa"), torch.zeros(1, 3, 8), torch.ones(1, 3), torch.zeros(1, 4).bool())
    flash = config_for("sdpa")
    flash._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="4D mask"):
        hybrid_attention_mask(flash, torch.zeros(1, 3, 8), torch.ones(1, 3), torch.zeros(1, 3).bool())
