"""Trainer callbacks: the recipe's loss-weight schedule and per-step view seeding."""

from __future__ import annotations

from transformers import TrainerCallback

from magnet_st.losses import MagnetLoss
from magnet_st.training.recipes import Recipe


class RecipeScheduleCallback(TrainerCallback):
    """Sets the loss weights of the recipe's stage at every step (e.g. LLM2Vec: MNTP, then SimCSE).

    It also reseeds the view sampler per step, so a resumed run samples the views the first run would have.
    """

    def __init__(self, loss: MagnetLoss, recipe: Recipe) -> None:
        self.loss = loss
        self.recipe = recipe

    def on_step_begin(self, args, state, control, **kwargs):
        progress = state.global_step / max(1, state.max_steps)
        stage = self.recipe.weights_at(progress)
        self.loss.set_weights(mntp=stage.mntp, sscl=stage.sscl, msg=stage.msg)
        self.loss.reseed(state.global_step)
