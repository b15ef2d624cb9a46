"""Named training recipes, so evaluations compare like for like on one base and budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from magnet_st.data.views import ViewConfig
from magnet_st.losses import objective_weights
from magnet_st.train_config import RECIPE_DESCRIPTIONS


@dataclass(frozen=True)
class Stage:
    """Loss weights from `start` (a fraction of the run's steps) until the next stage."""

    start: float
    mntp: float
    sscl: float
    msg: float


@dataclass(frozen=True)
class Recipe:
    """What a training run optimises: the objectives' weights over time, the views, and the pooling."""

    name: str
    description: str
    stages: tuple[Stage, ...]
    views: ViewConfig = field(default_factory=ViewConfig)
    pooling: str = "lasttoken"

    def weights_at(self, progress: float) -> Stage:
        """The stage in force at `progress` (0 = first step, 1 = end of run)."""
        current = self.stages[0]
        for stage in self.stages:
            if progress >= stage.start:
                current = stage
        return current

    def with_objectives(self, objectives: list[str] | None) -> Recipe:
        """The same recipe training only the named objectives, each with weight 1."""
        if objectives is None:
            return self
        return self.with_weights(**objective_weights(objectives))

    def with_weights(self, mntp: float | None, sscl: float | None, msg: float | None) -> Recipe:
        """The same recipe with fixed weights (a single stage) where any weight is given."""
        if mntp is None and sscl is None and msg is None:
            return self
        base = self.stages[0]
        stage = Stage(
            0.0,
            base.mntp if mntp is None else mntp,
            base.sscl if sscl is None else sscl,
            base.msg if msg is None else msg,
        )
        return Recipe(self.name, self.description + " (custom weights)", (stage,), self.views, self.pooling)


NO_SPANS = ViewConfig(max_spans=0, pure_lm_rate=0.0)
NO_MASKING = ViewConfig(mask_rate=0.0)

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("magnet", RECIPE_DESCRIPTIONS["magnet"], (Stage(0.0, 1.0, 1.0, 1.0),)),
        Recipe(
            "llm2vec",
            RECIPE_DESCRIPTIONS["llm2vec"],
            (Stage(0.0, 1.0, 0.0, 0.0), Stage(0.5, 0.0, 1.0, 0.0)),
            views=NO_SPANS,
            pooling="mean",
        ),
        Recipe("mntp", RECIPE_DESCRIPTIONS["mntp"], (Stage(0.0, 1.0, 0.0, 0.0),), views=NO_SPANS),
        Recipe("sscl", RECIPE_DESCRIPTIONS["sscl"], (Stage(0.0, 0.0, 1.0, 0.0),)),
        Recipe("msg", RECIPE_DESCRIPTIONS["msg"], (Stage(0.0, 0.0, 0.0, 1.0),), views=NO_MASKING),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    return RECIPES[name]
