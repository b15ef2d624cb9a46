"""What a training run is told: `TrainConfig` and the recipes' names.

Torch-free and outside `magnet_st.training` (whose package import loads the trainer), so that the command line
shows every default and choice without importing the training stack. `magnet_st.training` re-exports `TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from magnet_st.model_names import DEFAULT_BASE_MODEL
from magnet_st.precision import check_precision
from magnet_st.validation import check_positive_int

# Recipe name -> one-line description, in the order help texts list them (`training.recipes.RECIPES` builds each).
RECIPE_DESCRIPTIONS: dict[str, str] = {
    "magnet": "MAGNET: MNTP + SSCL + MSG together (weights 1, 1, 1)",
    "llm2vec": "LLM2Vec: bidirectional MNTP for the first half, then unsupervised SimCSE with mean pooling",
    "mntp": "Ablation: bidirectional MNTP alone",
    "sscl": "Ablation: SSCL (unsupervised SimCSE, final-token pooling) alone",
    "msg": "Ablation: missing-span generation alone",
}
# Where the contrastive pass's attention dropout also applies (`losses.MagnetLoss`).
DROPOUT_SCOPES = ("contrastive", "all")

BUDGET_STEP_CAP = 100_000  # the trainer's nominal max_steps in a budgeted run; the callback lowers it


@dataclass
class TrainConfig:
    """Everything a training run needs (the CLI maps its flags onto this)."""

    data: str
    output_dir: str
    base: str = DEFAULT_BASE_MODEL
    recipe: str = "magnet"
    mntp_weight: float | None = None  # None: the recipe's schedule
    sscl_weight: float | None = None
    msg_weight: float | None = None
    objectives: list[str] | None = None  # train only these ("mntp", "sscl", "msg"), weight 1 each
    sentence_span_rate: float | None = None  # None: the recipe's views (`ViewConfig.sentence_span_rate`)
    dropout_scope: str = "contrastive"  # attention dropout on the contrastive pass only, or on "all" passes
    max_steps: int = 200
    batch_size: int = 16
    learning_rate: float = 5e-4  # LoRA on short runs: 2e-4 barely moves STS, 1e-3 starts to hurt generation
    max_seq_length: int = 64
    max_texts: int | None = None
    text_column: str = "text"
    positive_column: str | None = None
    lora: bool = True
    lora_r: int = 16
    lora_dropout: float = 0.05  # on each LoRA input: a mask per projection and pass (time; memory fused on CPU)
    gradient_checkpointing: bool = False
    checkpoint_every: int = 1  # with gradient_checkpointing: recompute every N-th decoder layer (1: all)
    return_freed_memory: bool = False  # glibc: hand freed activation pages back at once (training/memory.py)
    warmup_ratio: float = 0.05
    logging_steps: int = 10
    save_steps: int = 50
    seed: int = 42
    resume: bool = False
    overwrite: bool = False
    keep_checkpoints: bool = False
    drop_cut_last_line: bool = False
    precision: str = "auto"  # "bf16" mixed precision, "fp32", or "auto" (magnet_st.precision)

    def __post_init__(self) -> None:
        for name in (
            "max_steps",
            "batch_size",
            "max_seq_length",
            "logging_steps",
            "save_steps",
            "lora_r",
            "checkpoint_every",
        ):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.max_texts, "max_texts", allow_none=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"`seed` must be an integer in [0, 2**32), got {self.seed!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be > 0, got {self.learning_rate!r}.")
        if isinstance(self.lora_dropout, bool) or not 0 <= self.lora_dropout < 1:
            raise ValueError(f"`lora_dropout` must be a probability in [0, 1), got {self.lora_dropout!r}.")
        if self.sentence_span_rate is not None and (
            isinstance(self.sentence_span_rate, bool) or not 0 <= self.sentence_span_rate <= 1
        ):
            raise ValueError(f"`sentence_span_rate` must be a probability in [0, 1], got {self.sentence_span_rate!r}.")
        if self.dropout_scope not in DROPOUT_SCOPES:
            raise ValueError(f"`dropout_scope` must be one of {DROPOUT_SCOPES}, got {self.dropout_scope!r}.")
        check_precision(self.precision)
        self.data = str(Path(self.data).expanduser()) if self.data else self.data
        self.output_dir = str(Path(self.output_dir).expanduser()) if self.output_dir else self.output_dir

    def checkpoint_dir(self) -> Path:
        output = Path(self.output_dir)
        return output.parent / f"{output.name}-checkpoints"
