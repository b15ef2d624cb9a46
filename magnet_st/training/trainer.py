"""MagnetTrainer: sentence-transformers' trainer running a recipe's loss-weight schedule, with safe checkpoints."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformerTrainer
from transformers.trainer_callback import ProgressCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints
from transformers.training_args import ParallelMode

from magnet_st.losses import MagnetLoss
from magnet_st.training.budget import TimeBudgetCallback
from magnet_st.training.callbacks import RecipeScheduleCallback
from magnet_st.training.checkpoints import (
    drop_unfinished_writes,
    publish_checkpoint,
    resume_checkpoint,
    staging_run_dir,
)
from magnet_st.training.lock import RunLock
from magnet_st.training.recipes import Recipe


class MagnetTrainer(SentenceTransformerTrainer):
    """`SentenceTransformerTrainer` for a MAGNET recipe.

    A checkpoint is written under a temporary name and renamed once complete; `train(resume_from_checkpoint=True)`
    resumes from the newest complete one (and logs what it skipped). While training, the checkpoint folder
    (`args.output_dir`) is locked: a second run on it is refused.

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
        self._writing_checkpoint_into: Path | None = None
        progress = next((c for c in self.callback_handler.callbacks if isinstance(c, ProgressCallback)), None)
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, TimeBudgetCallback):
                callback.progress = progress  # its bar then counts to the budget's steps, not the cap

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):  # noqa: D102 - as Trainer.train
        lock = RunLock(self.args.output_dir) if self.is_world_process_zero() else nullcontext()
        with lock:
            if resume_from_checkpoint is True:
                resume_from_checkpoint = str(resume_checkpoint(self.args.output_dir))
            if self.is_world_process_zero():
                drop_unfinished_writes(self.args.output_dir)  # nobody else writes here: the lock is ours
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _get_output_dir(self, trial) -> str:
        if self._writing_checkpoint_into is not None:
            return str(self._writing_checkpoint_into)
        return super()._get_output_dir(trial)

    def _wait_for_every_process(self) -> None:
        if self.args.parallel_mode == ParallelMode.DISTRIBUTED and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _save_rng_state(self, output_dir: str) -> None:
        # Process 0 saves the model into an empty folder; the other processes add their RNG state only after it.
        self._wait_for_every_process()
        super()._save_rng_state(output_dir)

    def _save_checkpoint(self, model, trial) -> None:
        """Write the checkpoint into a staging folder, then rename it: a killed write never looks complete."""
        run_dir = Path(self._get_output_dir(trial))
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        self._writing_checkpoint_into = staging_run_dir(run_dir, self.state.global_step)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            written, self._writing_checkpoint_into = self._writing_checkpoint_into, None
        self._wait_for_every_process()  # every process has written its RNG state
        if self.args.should_save:
            publish_checkpoint(written / name, run_dir / name, self.state)
            rotate_checkpoints(
                output_dir=str(run_dir),
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=True,
            )
