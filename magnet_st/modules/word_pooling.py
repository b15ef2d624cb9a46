"""WordPooling: one vector per word from token states (the word-level counterpart of `Pooling`).

A word's representation is the mean of token states over its sub-tokens. With alignment "previous"
(MAGNET, following MNTP where the state at i-1 predicts token i) the states of positions i-1..j-1 are
averaged for a word on positions i..j; with "own" the states i..j; with "first" the state at i alone, the
first-sub-token convention of BERT-style token classification, which a transformers token-classification
checkpoint expresses exactly (`magnet_st.tagging.export`).
"""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.base.modules import Module

ALIGNMENTS = ("previous", "own", "first")
PREFIX_TOKENS = ("bos", "eos", "none")


def check_alignment(alignment: str) -> str:
    if alignment not in ALIGNMENTS:
        raise ValueError(f"`alignment` must be one of {ALIGNMENTS}, got {alignment!r}.")
    return alignment


def check_prefix_token(prefix_token: str) -> str:
    if prefix_token not in PREFIX_TOKENS:
        raise ValueError(f"`prefix_token` must be one of {PREFIX_TOKENS}, got {prefix_token!r}.")
    return prefix_token


def word_states(token_embeddings: torch.Tensor, word_token_mask: torch.Tensor, alignment: str) -> torch.Tensor:
    """Mean token state per word (B, W, H); "previous" reads positions shifted one to the left, "first" one position.

    `token_embeddings` is (B, T, H), `word_token_mask` (B, W, T) with True where word w has token t.
    A word starting at position 0 (no prefix token) has no previous position; it reads its own first position.
    """
    check_alignment(alignment)
    if alignment == "first":  # only the word's first token: cumsum is 1 from it up to the next token
        word_token_mask = word_token_mask & (word_token_mask.cumsum(-1) == 1)
    weights = word_token_mask.to(token_embeddings.dtype)  # (B, W, T)
    if alignment == "previous":
        shifted = torch.zeros_like(weights)
        shifted[..., :-1] = weights[..., 1:]
        shifted[..., 0] = torch.maximum(shifted[..., 0], weights[..., 0])
        weights = shifted
    counts = weights.sum(-1, keepdim=True).clamp(min=1)  # (B, W, 1)
    return torch.bmm(weights, token_embeddings) / counts  # (B, W, H)


class WordPooling(Module):
    """Averages each word's token states into a word vector, as `Pooling` does for a whole sentence.

    It reads `module_input_name` (token states, B x T x H) and `word_token_mask_name` (B x W x T, True
    where word w has token t; built by `magnet_st.tagging`) and writes `module_output_name` (B x W x H)
    and `word_mask_name` (B x W, True for real words). Without a word-token mask (plain `model.encode`)
    it passes features through, so a tagger still embeds sentences.

    Args:
        alignment: "previous" (default, MAGNET: the positions before a word's sub-tokens), "own" (the word's
            sub-tokens) or "first" (the word's first sub-token, as transformers' token classification reads it).
        prefix_token: Token put before every sentence so the first word has a previous position:
            "bos" (the tokenizer's BOS, else EOS), "eos" or "none". Read by the word tokenizer.
        module_input_name: Feature holding the token states.
        word_token_mask_name: Feature holding the word-to-token mask.
        module_output_name: Feature the word vectors are written to.
        word_mask_name: Feature the real-word mask is written to.
    """

    config_keys = [
        "alignment",
        "prefix_token",
        "module_input_name",
        "word_token_mask_name",
        "module_output_name",
        "word_mask_name",
    ]

    def __init__(
        self,
        alignment: str = "previous",
        prefix_token: str = "bos",
        *,
        module_input_name: str = "token_embeddings",
        word_token_mask_name: str = "word_token_mask",
        module_output_name: str = "word_embeddings",
        word_mask_name: str = "word_mask",
    ) -> None:
        super().__init__()
        self.alignment = check_alignment(alignment)
        self.prefix_token = check_prefix_token(prefix_token)
        self.module_input_name = module_input_name
        self.word_token_mask_name = word_token_mask_name
        self.module_output_name = module_output_name
        self.word_mask_name = word_mask_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        word_token_mask = features.get(self.word_token_mask_name)  # (B, W, T)
        if word_token_mask is None:
            return features
        features[self.module_output_name] = word_states(
            features[self.module_input_name], word_token_mask, self.alignment
        )
        features[self.word_mask_name] = word_token_mask.any(-1)  # (B, W)
        return features

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        self.save_config(output_path)

    def __repr__(self) -> str:
        return f"WordPooling({{'alignment': {self.alignment!r}, 'prefix_token': {self.prefix_token!r}}})"
