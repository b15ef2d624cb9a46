"""The decoding core: every pass through a MAGNET decoder, and the mechanics all of them share.

Shared mechanics, defined once: `eval_mode` (train/eval state saved and restored), `pad_sequences`
(right padding for encoder passes, left padding for generation), `bos_prefix` (the start tokens the
tokenizer itself puts before a text).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch


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
