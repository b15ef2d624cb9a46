"""The MAGNET mask against a brute-force reference, for every backend that takes a 4D mask; the decoding
core's masks and its cached decode against written-out references."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import DynamicCache, LlamaConfig, LlamaModel

from magnet_st.attention import AttentionMode, hybrid_attention_mask
from magnet_st.decoding import run_decoder


def allowed_attention(mask: torch.Tensor) -> torch.Tensor:
    """Boolean view (True = may attend) of a 4D mask, bool (sdpa) or additive float (eager)."""
    return mask if mask.dtype == torch.bool else mask == 0


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


# MAGNET.md's worked example: positions 4-5 are a span in an 8-token text.
WORKED_SPAN = [False] * 4 + [True, True] + [False] * 2
WORKED_EXAMPLE = torch.tensor(
    [
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 1, 0, 1, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 0, 0, 1, 1],
    ]
).bool()


def tiny_backbone(backend: str) -> LlamaModel:
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, vocab_size=50
    )
    config._attn_implementation = backend
    return LlamaModel(config).eval()


def masks_seen_by_attention(backbone: LlamaModel, call) -> list:
    """Run `call` and return the attention mask each call of the first attention layer received."""
    seen = []
    hook = backbone.layers[0].self_attn.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("attention_mask")), with_kwargs=True
    )
    try:
        with torch.no_grad():
            call()
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_core_hybrid_mask_is_the_worked_example(backend):
    backbone = tiny_backbone(backend)
    ids = torch.arange(3, 11)[None]
    (mask,) = masks_seen_by_attention(
        backbone, lambda: run_decoder(backbone, ids, mode="hybrid", span_mask=torch.tensor([WORKED_SPAN]))
    )
    assert mask.shape == (1, 1, 8, 8)
    assert mask.dtype == (torch.bool if backend == "sdpa" else torch.float32)
    assert torch.equal(allowed_attention(mask)[0, 0], WORKED_EXAMPLE)


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_core_plain_modes_and_key_validity(backend):
    backbone = tiny_backbone(backend)
    ids = torch.arange(3, 8)[None]
    keys = torch.tensor([[1, 1, 0, 1, 1]])  # key 2 is invalid (padding)
    (bidirectional,) = masks_seen_by_attention(backbone, lambda: run_decoder(backbone, ids, key_mask=keys))
    (causal,) = masks_seen_by_attention(backbone, lambda: run_decoder(backbone, ids, mode="causal", key_mask=keys))
    assert torch.equal(allowed_attention(bidirectional)[0, 0], torch.tensor([[1, 1, 0, 1, 1]] * 5).bool())
    expected_causal = [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 0, 1, 0], [1, 1, 0, 1, 1]]
    assert torch.equal(allowed_attention(causal)[0, 0], torch.tensor(expected_causal).bool())


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_core_cached_decode_equals_a_full_pass(backend):
    """Context prefilled into a cache with a gap, span tokens decoded one by one at their gap positions:
    the same states as one hybrid pass over the whole in-place sequence (the worked example's layout)."""
    backbone = tiny_backbone(backend)
    ids = torch.tensor([[5, 9, 2, 7, 11, 13, 4, 8]])  # positions 0-7; 4-5 are the span
    span = torch.tensor([WORKED_SPAN])
    with torch.no_grad():
        full = run_decoder(backbone, ids, mode="hybrid", span_mask=span)  # (1, 8, D)
        context = [0, 1, 2, 3, 6, 7]
        cache = DynamicCache(config=backbone.config)
        prefill = run_decoder(
            backbone, ids[:, context], position_ids=torch.tensor([context]), cache=cache
        )  # bidirectional among context
        steps = []
        for offset, position in enumerate([4, 5]):
            step = run_decoder(
                backbone,
                ids[:, position : position + 1],
                mode="causal",
                position_ids=torch.tensor([[position]]),
                cache=cache,
                key_mask=torch.ones(1, len(context) + offset + 1),
            )
            steps.append(step[0, 0])
    torch.testing.assert_close(prefill[0], full[0, context], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(steps), full[0, 4:6], atol=1e-5, rtol=0)
    # and a plain causal continuation: prefill 5 tokens, decode the 6th, against one causal pass
    with torch.no_grad():
        causal = run_decoder(backbone, ids[:, :6], mode="causal")
        cache = DynamicCache(config=backbone.config)
        run_decoder(backbone, ids[:, :5], mode="causal", cache=cache)
        last = run_decoder(backbone, ids[:, 5:6], mode="causal", cache=cache)
    torch.testing.assert_close(last[0, 0], causal[0, 5], atol=1e-5, rtol=0)


def test_core_names_bad_arguments():
    backbone = tiny_backbone("sdpa")
    ids = torch.arange(3, 8)[None]
    with pytest.raises(ValueError, match="span_mask"):
        run_decoder(backbone, ids, mode="hybrid")
    with pytest.raises(ValueError, match="key_mask"):
        run_decoder(backbone, ids, key_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match="mode"):
        run_decoder(backbone, ids, mode="sideways")
