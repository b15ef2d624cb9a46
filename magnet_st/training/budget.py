"""Size a training run to a wall-clock budget: time the first steps, then train as many as fit.

The run starts with a generous step cap (so the trainer sizes its epochs for it); `TimeBudgetCallback`
times the first steps, sets `state.max_steps` to the number that fits the budget (the steps already
taken count towards it; nothing restarts) and re-targets the learning-rate schedule to end there. A GPU's
first steps run slower than the rest (allocator growth, kernel selection), so the estimate is refined once,
from the steps after it, when a quarter of the budget has passed.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from magnet_st.train_config import BUDGET_STEP_CAP
from magnet_st.validation import check_positive_int


@dataclass(frozen=True)
class BudgetEstimate:
    """What the first steps measured and how many steps the budget allows."""

    seconds_per_step: float
    measured_steps: int
    total_steps: int
    budget_seconds: float

    def describe(self) -> str:
        return (
            f"~{self.seconds_per_step:.1f} s/step measured over {self.measured_steps} steps -> "
            f"{self.total_steps} steps fit in {self.budget_seconds / 60:g} min"
        )


def steps_within_budget(
    budget_seconds: float,
    elapsed_seconds: float,
    steps_done: int,
    seconds_per_step: float,
    *,
    min_steps: int = 1,
    max_steps: int = BUDGET_STEP_CAP,
) -> int:
    """Total steps (those done included) that fit in `budget_seconds`, within [min_steps, max_steps]."""
    if seconds_per_step <= 0:
        raise ValueError(f"`seconds_per_step` must be > 0, got {seconds_per_step!r}.")
    remaining = max(0.0, budget_seconds - elapsed_seconds)
    total = steps_done + math.floor(remaining / seconds_per_step)
    return max(min_steps, steps_done, min(max_steps, total))


def retarget_linear_schedule(lr_scheduler, total_steps: int, warmup_ratio: float) -> None:
    """Make a transformers linear warm-up/decay schedule end at `total_steps` (warm-up: a ratio of it)."""
    lambdas = getattr(lr_scheduler, "lr_lambdas", None)
    if not lambdas or not all(isinstance(f, functools.partial) and "num_training_steps" in f.keywords for f in lambdas):
        raise ValueError(
            "A time budget needs the trainer's linear learning-rate schedule (lr_scheduler_type='linear')."
        )
    lr_scheduler.lr_lambdas = [
        functools.partial(
            f.func,
            *f.args,
            **{**f.keywords, "num_training_steps": total_steps, "num_warmup_steps": int(warmup_ratio * total_steps)},
        )
        for f in lambdas
    ]


class TimeBudgetCallback(TrainerCallback):
    """Stop a run when its wall-clock budget is spent, with a learning-rate schedule that ends there.

    Args:
        budget_seconds: Wall-clock seconds of training, from the first step.
        warmup_ratio: Warm-up as a fraction of the final step count.
        planned_steps: Step count the schedule assumes until the first steps are timed.
        measure_steps: Steps timed for the estimate, after one unmeasured step (data loader start,
            first allocations).
        min_steps: Never fewer steps than this.
        refine_after: Fraction of the budget after which the estimate is refined once from the steps
            since the first estimate (at least `measure_steps` of them).
        report: Called with the `BudgetEstimate` once it is known (e.g. `print`).
        clock: Seconds as a float (a fake clock in tests).

    `MagnetTrainer` hands it the trainer's `ProgressCallback` (`progress`), whose bar was sized for the step
    cap: each estimate re-sizes the bar too, so its count and time left are the budget's.
    """

    def __init__(
        self,
        budget_seconds: float,
        *,
        warmup_ratio: float,
        planned_steps: int,
        measure_steps: int = 3,
        min_steps: int = 5,
        refine_after: float = 0.25,
        report: Callable[[BudgetEstimate], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not budget_seconds > 0:
            raise ValueError(f"`budget_seconds` must be > 0, got {budget_seconds!r}.")
        if not 0 < refine_after < 1:
            raise ValueError(f"`refine_after` must be a fraction of the budget in (0, 1), got {refine_after!r}.")
        for name, value in (
            ("planned_steps", planned_steps),
            ("measure_steps", measure_steps),
            ("min_steps", min_steps),
        ):
            check_positive_int(value, name)
        self.budget_seconds = budget_seconds
        self.warmup_ratio = warmup_ratio
        self.planned_steps = planned_steps
        self.measure_steps = measure_steps
        self.min_steps = max(min_steps, measure_steps + 1)
        self.refine_after = refine_after
        self.report = report
        self.clock = clock
        self.estimate: BudgetEstimate | None = None
        self.refined = False
        self._started: float | None = None
        self._measure_from: float | None = None
        self._estimated_at: tuple[int, float] | None = None  # (step, clock) of the first estimate
        self._step_cap: int | None = None
        self.progress: ProgressCallback | None = None

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        retarget_linear_schedule(lr_scheduler, self.planned_steps, self.warmup_ratio)

    def on_step_begin(self, args, state, control, **kwargs):
        if self._started is None:
            self._started = self.clock()

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        steps_done, now = state.global_step, self.clock()
        if steps_done == 1 and self._measure_from is None:
            self._measure_from = now  # the first step is not representative
        if self.estimate is None:
            if steps_done >= 1 + self.measure_steps:
                self._step_cap = state.max_steps  # the trainer's own, before the budget lowers it
                self._resize(state, control, lr_scheduler, now, self._measure_from, self.measure_steps)
                self._estimated_at = (steps_done, now)
                self._report()
            return
        step_at, time_at = self._estimated_at
        if (
            not self.refined
            and steps_done - step_at >= self.measure_steps
            and now - self._started >= self.refine_after * self.budget_seconds
        ):
            self.refined = True
            previous = self.estimate.total_steps
            self._resize(state, control, lr_scheduler, now, time_at, steps_done - step_at)
            if self.estimate.total_steps != previous:
                self._report()

    def _resize(self, state, control, lr_scheduler, now: float, measured_from: float, measured_steps: int) -> None:
        """Size the run from the steps timed between `measured_from` and `now`, and end the schedule there."""
        steps_done = state.global_step
        seconds_per_step = (now - measured_from) / measured_steps
        total = steps_within_budget(
            self.budget_seconds,
            now - self._started,
            steps_done,
            seconds_per_step,
            min_steps=self.min_steps,
            max_steps=self._step_cap,
        )
        self.estimate = BudgetEstimate(seconds_per_step, measured_steps, total, self.budget_seconds)
        state.max_steps = total  # the trainer's flow callback stops there; recipe stages follow it
        retarget_linear_schedule(lr_scheduler, total, self.warmup_ratio)
        bar = getattr(self.progress, "training_bar", None)
        if bar is not None:
            bar.total = total
            bar.refresh()
        if steps_done >= total:
            control.should_training_stop = True

    def _report(self) -> None:
        if self.report is not None:
            self.report(self.estimate)
