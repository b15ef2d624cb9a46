"""TokenClassificationHead: per-word labels from MAGNET token states (dropout, then one linear layer)."""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.base.modules import Module

from magnet_st.attention import AttentionMode
from magnet_st.tagging.alignment import ALIGNMENTS, PREFIX_TOKENS, check_alignment, word_states

SCHEMES = ("IOB2", "none")


class TokenClassificationHead(Module):
    """A word-level classifier on top of a MAGNET decoder, saved with its label names.

    It reads `token_embeddings` and `word_token_mask` (B x W x T, built by `magnet_st.tagging`), averages
    each word's sub-token states (alignment "previous": the positions before them, as MNTP aligns
    i-1 with i; "own": their own positions) and writes `word_embeddings` (B x W x H) and
    `word_logits` (B x W x labels). Without `word_token_mask` (plain `model.encode`) it passes
    features through, so a tagger still embeds sentences.

    Args:
        embedding_dimension: Hidden size of the decoder.
        labels: Label names, in output order.
        alignment: "previous" (default, MAGNET) or "own".
        dropout: Dropout before the linear layer (0.1 as in LLM2Vec's word-level probes).
        prefix_token: Token put before every sentence so the first word has a previous position:
            "bos" (the tokenizer's BOS, else EOS), "eos" or "none".
        scheme: "IOB2" when labels are entity spans (NER, chunking), "none" for per-word labels (POS).
        attention_mode: Attention of the decoder pass the head was trained on ("bidirectional" for MAGNET and
            LLM2Vec models, "causal" for an unadapted base); prediction uses it unless told otherwise.
        task: Free name of the task, kept for the model card and the CLI.
    """

    config_keys = [
        "embedding_dimension",
        "labels",
        "alignment",
        "dropout",
        "prefix_token",
        "scheme",
        "attention_mode",
        "task",
    ]

    def __init__(
        self,
        embedding_dimension: int,
        labels: list[str],
        *,
        alignment: str = "previous",
        dropout: float = 0.1,
        prefix_token: str = "bos",
        scheme: str = "IOB2",
        attention_mode: str = "bidirectional",
        task: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(labels, str) or not labels or not all(isinstance(label, str) and label for label in labels):
            raise ValueError(f"`labels` must be a non-empty list of label names, got {labels!r}.")
        if len(set(labels)) != len(labels):
            raise ValueError(f"`labels` has duplicates: {labels!r}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}.")
        if prefix_token not in PREFIX_TOKENS:
            raise ValueError(f"`prefix_token` must be one of {PREFIX_TOKENS}, got {prefix_token!r}.")
        if scheme not in SCHEMES:
            raise ValueError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}.")
        if scheme == "IOB2":
            bad = [label for label in labels if label != "O" and label[:2] not in ("B-", "I-")]
            if bad:
                raise ValueError(f"IOB2 labels must be 'O', 'B-X' or 'I-X'; got {bad[:5]} (use scheme='none').")
        self.embedding_dimension = int(embedding_dimension)
        self.labels = list(labels)
        self.alignment = check_alignment(alignment)
        self.dropout = float(dropout)
        self.prefix_token = prefix_token
        self.scheme = scheme
        mode = AttentionMode.parse(attention_mode)
        if mode is AttentionMode.HYBRID:
            raise ValueError("`attention_mode` of a token head must be 'bidirectional' or 'causal', got 'hybrid'.")
        self.attention_mode = mode.value
        self.task = task
        self.label_to_id = {label: index for index, label in enumerate(self.labels)}
        self.classifier = torch.nn.Sequential(
            torch.nn.Dropout(self.dropout), torch.nn.Linear(self.embedding_dimension, len(self.labels))
        )

    @property
    def linear(self) -> torch.nn.Linear:
        return self.classifier[1]

    def label_ids(self, tags: list[str], where: str = "") -> list[int]:
        """Label ids of tag names; a tag outside the label set raises an error that names it."""
        ids = []
        for tag in tags:
            if tag not in self.label_to_id:
                raise ValueError(
                    f"Tag {tag!r}{where} is not in the model's label set ({len(self.labels)} labels: "
                    f"{', '.join(self.labels[:12])}{', ...' if len(self.labels) > 12 else ''})."
                )
            ids.append(self.label_to_id[tag])
        return ids

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "word_token_mask" not in features:
            return features
        states = word_states(features["token_embeddings"], features["word_token_mask"], self.alignment)
        features["word_embeddings"] = states
        features["word_mask"] = features["word_token_mask"].any(-1)
        features["word_logits"] = self.classifier(states.to(self.linear.weight.dtype))
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> TokenClassificationHead:
        hub_kwargs = {
            key: kwargs[key] for key in ("token", "cache_folder", "revision", "local_files_only") if key in kwargs
        }
        config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub_kwargs)
        head = cls(**config)
        cls.load_torch_weights(model_name_or_path, subfolder=subfolder, model=head, **hub_kwargs)
        return head

    def __repr__(self) -> str:
        return (
            f"TokenClassificationHead({{'task': {self.task!r}, 'labels': {len(self.labels)}, "
            f"'alignment': {self.alignment!r}, 'dropout': {self.dropout}, 'prefix_token': {self.prefix_token!r}}})"
        )


__all__ = ["ALIGNMENTS", "TokenClassificationHead"]
