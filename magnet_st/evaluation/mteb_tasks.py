"""mteb tasks over in-memory data, and `mteb.evaluate` run offline.

Each task's data is built from local files (see `magnet_st.data`), so nothing is downloaded and mteb's
own result files can be written next to ours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MAIN_STS_SCORE = "cosine_spearman"


def _metadata(name: str, description: str, task_type: str, category: str, main_score: str):
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        description=description,
        dataset={"path": f"local/{name}", "revision": "local"},
        type=task_type,
        category=category,
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=main_score,
    )


def local_sts_task(
    name: str, pairs: dict[str, list], *, min_score: float | None = None, max_score: float | None = None
):
    """An mteb STS task over in-memory pairs (scores normalised by min/max, which leaves Spearman unchanged)."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS

    class LocalSTS(AbsTaskSTS):
        metadata = _metadata(name, f"Local STS file {name}", "STS", "t2t", MAIN_STS_SCORE)

        def load_data(self, **kwargs: Any) -> None:
            self.dataset = DatasetDict({"test": Dataset.from_dict(pairs)})
            self.data_loaded = True

    LocalSTS.min_score = min(pairs["score"]) if min_score is None else min_score
    LocalSTS.max_score = max(pairs["score"]) if max_score is None else max_score
    return LocalSTS()


def local_classification_task(
    name: str,
    train: dict[str, list],
    test: dict[str, list],
    *,
    samples_per_label: int = 8,
    n_experiments: int = 10,
    seed: int = 42,
):
    """An mteb classification task (logistic regression on embeddings, mteb's protocol) over in-memory data."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification

    class LocalClassification(AbsTaskClassification):
        metadata = _metadata(name, f"Local classification data {name}", "Classification", "t2c", "accuracy")

        def load_data(self, **kwargs: Any) -> None:
            self.dataset = DatasetDict({"train": Dataset.from_dict(train), "test": Dataset.from_dict(test)})
            self.data_loaded = True

    LocalClassification.samples_per_label = samples_per_label
    LocalClassification.n_experiments = n_experiments
    return LocalClassification(seed=seed)


@contextlib.contextmanager
def _quiet_mteb() -> Iterator[None]:
    # mteb warns that a "sentence" prompt is not a task name; the model applies it itself as its default prompt.
    logger = logging.getLogger("mteb")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def run_mteb(
    model: Any,
    tasks: Sequence[Any],
    *,
    batch_size: int = 32,
    output_folder: str | os.PathLike | None = None,
    prediction_folder: str | os.PathLike | None = None,
):
    """`mteb.evaluate` without a cache (nothing is downloaded); writes mteb's own JSON per task when asked.

    With `prediction_folder`, mteb also writes each task's per-example predictions there.
    """
    import mteb

    with _quiet_mteb():
        result = mteb.evaluate(
            model,
            list(tasks),
            cache=None,
            show_progress_bar=False,
            encode_kwargs={"batch_size": batch_size},
            prediction_folder=prediction_folder,
        )
    if result.exceptions:
        raise RuntimeError(f"mteb failed: {result.exceptions}")
    if output_folder is not None:
        folder = Path(output_folder)
        folder.mkdir(parents=True, exist_ok=True)
        for task_result in result.task_results:
            task_result.to_disk(folder / f"{task_result.task_name}.json")
    return {task_result.task_name: task_result for task_result in result.task_results}
