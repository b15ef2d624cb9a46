"""TaggerConfig: the settings of a token tagger and its training, shared by the probe and LoRA fine-tuning."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from magnet_st.attention import AttentionMode
from magnet_st.modules.token_head import check_dropout, check_labels, check_scheme
from magnet_st.modules.word_pooling import check_alignment, check_prefix_token
from magnet_st.validation import check_positive_int

# Training defaults per method; a None field of TaggerConfig takes the method's value.
PROBE_DEFAULTS = {"steps": 4000, "learning_rate": 5e-4, "batch_size": 32}  # LLM2Vec's word-level probe
LORA_DEFAULTS = {"steps": 500, "learning_rate": 2e-4, "batch_size": 8}


def check_label_all_tokens(label_all_tokens: bool | None, alignment: str) -> bool:
    """`label_all_tokens` resolved for `alignment`: None -> True for "first"; True elsewhere is refused."""
    if label_all_tokens is None:
        return alignment == "first"
    if not isinstance(label_all_tokens, bool):
        raise ValueError(f"`label_all_tokens` must be True, False or None, got {label_all_tokens!r}.")
    if label_all_tokens and alignment != "first":
        raise ValueError(
            f"`label_all_tokens` needs alignment='first', got alignment={alignment!r}: it trains the head on "
            "each sub-token's own state, which only a first-sub-token reading shares with prediction."
        )
    return label_all_tokens


@dataclass
class TaggerConfig:
    """What a tagger reads, what it predicts, and how it trains; checked once, when built.

    Args:
        task: Free name of the task (e.g. "ner"), kept with the head.
        scheme: "IOB2" when labels are entity spans (NER, chunking), "none" for per-word labels (POS).
        labels: Label names in output order; None takes the labels seen in the training tags.
        alignment: "previous" (MAGNET: the states before a word's sub-tokens), "own" or "first" (the word's first
            sub-token; the one a transformers token-classification export can express).
        label_all_tokens: Also train the head on each word's later sub-tokens, labelled I-X inside an entity of type
            X and O (or the word's own label) elsewhere, the "label all tokens" convention of transformers'
            token-classification examples; the exported checkpoint then gives the same entities under the
            pipeline's `aggregation_strategy="simple"`. Prediction still reads each word at its first sub-token.
            None: True for alignment "first", the only alignment it applies to.
        attention_mode: Decoder attention while tagging: "bidirectional" or "causal" (an unadapted base).
        prefix_token: Token before every sentence so the first word has a previous position: "bos", "eos", "none".
        dropout: Dropout before the head's linear layer.
        steps: Optimisation steps (None: 4000 for a probe, 500 for LoRA).
        learning_rate: AdamW learning rate (None: 5e-4 for a probe, 2e-4 for LoRA).
        batch_size: Sentences per step for a probe, segments per step for LoRA (None: 32 / 8).
        eval_steps: Steps between evaluations (None: a quarter of `steps`).
        seed: Seed of the head's initialisation and of batch sampling.
        show_progress_bar: Show progress bars.
    """

    task: str | None = None
    scheme: str = "IOB2"
    labels: Sequence[str] | None = None
    alignment: str = "previous"
    label_all_tokens: bool | None = None
    attention_mode: str = "bidirectional"
    prefix_token: str = "bos"
    dropout: float = 0.1
    steps: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    eval_steps: int | None = None
    seed: int = 0
    show_progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.task is not None and not isinstance(self.task, str):
            raise ValueError(f"`task` must be a string or None, got {self.task!r}.")
        check_scheme(self.scheme)
        if self.labels is not None:
            self.labels = check_labels(self.labels, self.scheme)
        check_alignment(self.alignment)
        check_label_all_tokens(self.label_all_tokens, self.alignment)
        self.attention_mode = AttentionMode.parse_reading(self.attention_mode).value
        check_prefix_token(self.prefix_token)
        self.dropout = check_dropout(self.dropout)
        for argument in ("steps", "batch_size", "eval_steps"):
            check_positive_int(getattr(self, argument), argument, allow_none=True)
        if self.learning_rate is not None and (
            isinstance(self.learning_rate, bool)
            or not isinstance(self.learning_rate, (int, float))
            or not self.learning_rate > 0
        ):
            raise ValueError(f"`learning_rate` must be a positive number, got {self.learning_rate!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"`seed` must be an integer, got {self.seed!r}.")

    @classmethod
    def build(cls, config: TaggerConfig | None, options: dict[str, Any]) -> TaggerConfig:
        """`config` with `options` (keyword arguments of `train_probe` / `finetune_lora`) applied on top."""
        if config is not None and not isinstance(config, cls):
            raise TypeError(f"`config` must be a TaggerConfig, got {type(config).__name__}.")
        return dataclasses.replace(config, **options) if config is not None else cls(**options)

    def with_defaults(self, defaults: dict[str, Any]) -> TaggerConfig:
        """A copy whose unset training fields (None) take the method's `defaults`."""
        return dataclasses.replace(
            self, **{key: value for key, value in defaults.items() if getattr(self, key) is None}
        )

    @property
    def labels_all_tokens(self) -> bool:
        """Whether the head also trains on later sub-tokens (`label_all_tokens`, None resolved for the alignment)."""
        return check_label_all_tokens(self.label_all_tokens, self.alignment)

    @property
    def eval_interval(self) -> int:
        """Steps between evaluations (and checkpoints): `eval_steps`, else a quarter of `steps`."""
        return self.eval_steps or max(1, self.steps // 4)
