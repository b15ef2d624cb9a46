"""The decoding core: every pass through a MAGNET decoder, and the mechanics all of them share.

`run_decoder` is the one routine that runs the decoder stack: encoding (`MagnetDecoder.forward`), the
infilling prefill and decode steps, automatic length choice and span scoring all go through it. It takes
ids, positions, roles (an `AttentionMode`, plus a span mask for the hybrid mode), an optional KV cache and
the validity of every key, and every mask it uses comes from `transformers.masking_utils`:

- bidirectional: the model's own `is_causal=False` path (`create_bidirectional_mask`);
- causal: the model's own `is_causal=True` path (`create_causal_mask`); with a cache, queries sit after the
  cached keys, so a decode step sees every valid cached key;
- hybrid: `create_bidirectional_mask` with the MAGNET rule as its AND overlay (`attention.hybrid_attention_mask`).

Shared mechanics, defined once: `eval_mode` (train/eval state saved and restored), `pad_sequences`
(right padding for encoder passes, left padding for generation), `bos_prefix` (the start tokens the
tokenizer itself puts before a text).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from transformers import Cache, PreTrainedModel

from magnet_st.attention import AttentionMode, hybrid_attention_mask


def run_decoder(
    backbone: PreTrainedModel,
    input_ids: torch.Tensor,
    *,
    mode: str | AttentionMode = AttentionMode.BIDIRECTIONAL,
    span_mask: torch.Tensor | None = None,
    key_mask: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    cache: Cache | None = None,
) -> torch.Tensor:
    """One pass of the decoder stack (no LM head): (B, T) ids -> (B, T, D) last hidden states.

    Args:
        backbone: The decoder stack (`MagnetDecoder.backbone`).
        input_ids: (B, T) the new tokens.
        mode: Roles of the tokens: all context (bidirectional), all span (causal), or per token (hybrid).
        span_mask: (B, K) bool, True for span tokens; hybrid mode only. K = cached keys + T.
        key_mask: (B, K) validity of every key (cached ones first); False keys are never attended to.
            Default: all valid.
        position_ids: (B, T) positions of the new tokens (default: right after the cached ones).
        cache: A `DynamicCache` the pass reads and extends in place.
    """
    mode = AttentionMode.parse(mode, "mode")
    batch, length = input_ids.shape
    past = cache.get_seq_length() if cache is not None else 0
    if key_mask is None:
        key_mask = torch.ones((batch, past + length), dtype=torch.long, device=input_ids.device)  # (B, K)
    if key_mask.shape != (batch, past + length):
        raise ValueError(
            f"`key_mask` must cover the {past} cached and {length} new keys, shape {(batch, past + length)}, "
            f"got {tuple(key_mask.shape)}."
        )
    attention_mask = key_mask.to(input_ids.device)  # 2D: the model builds its own mask from it
    if mode is AttentionMode.HYBRID:
        if span_mask is None:
            raise ValueError("The hybrid mode needs `span_mask` (True for span tokens).")
        # masking_utils reads batch, length, dtype and device from the embeddings; an empty last dim carries them.
        dtype = backbone.get_input_embeddings().weight.dtype
        carrier = torch.empty((batch, length, 0), dtype=dtype, device=input_ids.device)  # (B, T, 0)
        attention_mask = hybrid_attention_mask(backbone.config, carrier, attention_mask, span_mask, cache=cache)
    output = backbone(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        cache=cache,
        use_cache=cache is not None,
        is_causal=mode is AttentionMode.CAUSAL,
    )
    return output.last_hidden_state


@contextmanager
def eval_mode(module: torch.nn.Module, *, no_grad: bool = True) -> Iterator[torch.nn.Module]:
    """Run `module` in eval mode (no dropout), without gradients by default; its mode is restored after."""
    was_training = module.training
    module.eval()
    try:
        if no_grad:
            with torch.no_grad():
                yield module
        else:
            yield module
    finally:
        module.train(was_training)


def pad_sequences(
    sequences: Sequence[Sequence[int]], pad_id: int, *, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (input_ids, attention_mask), both (batch, longest) long tensors.

    Right padding keeps token states aligned with positions (encoders, MNTP, MSG, scoring); left
    padding keeps every prompt's last token in the final column (generation).
    """
    if side not in ("left", "right"):
        raise ValueError(f"`side` must be 'left' or 'right', got {side!r}.")
    if not sequences:
        raise ValueError("`sequences` is empty: pass at least one token id list.")
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)  # (B, T)
    for row, ids in enumerate(sequences):
        columns = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
        input_ids[row, columns] = torch.as_tensor(list(ids), dtype=torch.long)
        attention_mask[row, columns] = 1
    return input_ids, attention_mask


def bos_prefix(tokenizer) -> list[int]:
    """The BOS id when the tokenizer puts one before every text (Llama does, SmolLM2 does not), else []."""
    probe = tokenizer("a")["input_ids"]
    bos = tokenizer.bos_token_id
    return [bos] if bos is not None and probe and probe[0] == bos else []
