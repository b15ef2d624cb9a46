"""MagnetTrainer: sentence-transformers' trainer running a recipe's loss-weight schedule."""

from __future__ import annotations

from typing import Any

from sentence_transformers import SentenceTransformerTrainer

from magnet_st.losses import MagnetLoss
from magnet_st.training.callbacks import RecipeScheduleCallback
from magnet_st.training.recipes import Recipe


class MagnetTrainer(SentenceTransformerTrainer):
    """`SentenceTransformerTrainer` for a MAGNET recipe.

    Args:
        loss: The `MagnetLoss` whose weights follow the recipe's stages.
        recipe: The recipe; a `RecipeScheduleCallback` applies its stage weights at every step.
        export_max_seq_length: The encoding length the finished model is saved with (training may cut
            texts shorter than the model encodes).
        **kwargs: As `SentenceTransformerTrainer` (model, args, train_dataset, callbacks, ...).
    """

    def __init__(
        self,
        *,
        loss: MagnetLoss,
        recipe: Recipe,
        export_max_seq_length: int,
        callbacks: list | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(loss=loss, callbacks=[RecipeScheduleCallback(loss, recipe), *(callbacks or [])], **kwargs)
        self.recipe = recipe
        self.export_max_seq_length = export_max_seq_length
