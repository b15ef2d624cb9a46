"""TokenClassificationHead: per-word labels from word vectors (dropout, then one linear layer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from sentence_transformers.base.modules import Module

from magnet_st.attention import AttentionMode

SCHEMES = ("IOB2", "none")
# Keys of head folders saved before word pooling became its own module; they now configure `WordPooling`.
LEGACY_WORD_POOLING_KEYS = ("alignment", "prefix_token")


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"`scheme` must be one of {SCHEMES}, got {scheme!r}.")
    return scheme


def check_dropout(dropout: float) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout!r}.")
    return float(dropout)


def check_labels(labels: Sequence[str], scheme: str) -> list[str]:
    """Label names as a list: non-empty, unique, and 'O' / 'B-X' / 'I-X' under IOB2."""
    if isinstance(labels, str) or not labels or not all(isinstance(label, str) and label for label in labels):
        raise ValueError(f"`labels` must be a non-empty list of label names, got {labels!r}.")
    if len(set(labels)) != len(labels):
        raise ValueError(f"`labels` has duplicates: {labels!r}.")
    if check_scheme(scheme) == "IOB2":
        bad = [label for label in labels if label != "O" and label[:2] not in ("B-", "I-")]
        if bad:
            raise ValueError(f"IOB2 labels must be 'O', 'B-X' or 'I-X'; got {bad[:5]} (use scheme='none').")
    return list(labels)


class TokenClassificationHead(Module):
    """A word-level classifier on top of a MAGNET decoder and `WordPooling`, saved with its label names.

    It reads `module_input_name` (word vectors, B x W x H) and writes `module_output_name` (B x W x labels).
    Without word vectors (plain `model.encode`) it passes features through, so a tagger still embeds sentences.

    Args:
        embedding_dimension: Size of the word vectors (the decoder's hidden size).
        labels: Label names, in output order.
        dropout: Dropout before the linear layer (0.1 as in LLM2Vec's word-level probes).
        scheme: "IOB2" when labels are entity spans (NER, chunking), "none" for per-word labels (POS).
        attention_mode: Attention of the decoder pass the head was trained on ("bidirectional" for MAGNET and
            LLM2Vec models, "causal" for an unadapted base); prediction uses it unless told otherwise.
        task: Free name of the task, kept for the model card and the CLI.
        module_input_name: Feature holding the word vectors.
        module_output_name: Feature the word logits are written to.
    """

    config_keys = [
        "embedding_dimension",
        "labels",
        "dropout",
        "scheme",
        "attention_mode",
        "task",
        "module_input_name",
        "module_output_name",
    ]

    def __init__(
        self,
        embedding_dimension: int,
        labels: list[str],
        *,
        dropout: float = 0.1,
        scheme: str = "IOB2",
        attention_mode: str = "bidirectional",
        task: str | None = None,
        module_input_name: str = "word_embeddings",
        module_output_name: str = "word_logits",
    ) -> None:
        super().__init__()
        self.embedding_dimension = int(embedding_dimension)
        self.labels = check_labels(labels, scheme)
        self.dropout = check_dropout(dropout)
        self.scheme = scheme
        self.attention_mode = AttentionMode.parse_reading(attention_mode).value
        self.task = task
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name
        self.label_to_id = {label: index for index, label in enumerate(self.labels)}
        # Settings of a `WordPooling` this head was saved with, when loaded from an older folder (else None).
        self.legacy_word_pooling: dict[str, str] | None = None
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
        word_embeddings = features.get(self.module_input_name)  # (B, W, H)
        if word_embeddings is None:
            return features
        features[self.module_output_name] = self.classifier(word_embeddings.to(self.linear.weight.dtype))
        return features

    def get_config_dict(self) -> dict[str, Any]:
        # A head still carrying legacy word-pooling settings saves them again, so nothing is lost.
        return {**super().get_config_dict(), **(self.legacy_word_pooling or {})}

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> TokenClassificationHead:
        hub_kwargs = {
            key: kwargs[key] for key in ("token", "cache_folder", "revision", "local_files_only") if key in kwargs
        }
        config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub_kwargs)
        legacy = {key: config.pop(key) for key in LEGACY_WORD_POOLING_KEYS if key in config}
        head = cls(**config)
        head.legacy_word_pooling = legacy or None
        cls.load_torch_weights(model_name_or_path, subfolder=subfolder, model=head, **hub_kwargs)
        return head

    def __repr__(self) -> str:
        return (
            f"TokenClassificationHead({{'task': {self.task!r}, 'labels': {len(self.labels)}, "
            f"'scheme': {self.scheme!r}, 'dropout': {self.dropout}}})"
        )
