"""Training: recipes, the trainer set-up and its callbacks."""

from magnet_st.training.recipes import RECIPES, Recipe, Stage, get_recipe
from magnet_st.training.train import TrainConfig, build_trainer, loss_curves, plot_loss_curves, train

__all__ = [
    "RECIPES",
    "Recipe",
    "Stage",
    "TrainConfig",
    "build_trainer",
    "get_recipe",
    "loss_curves",
    "plot_loss_curves",
    "train",
]
