"""Sentence-level evaluation through mteb on local files: STS (Spearman x100) and classification.

The readers live in `magnet_st.data` (`sts`, `classification`); each set becomes an mteb task whose data
is built from its file (`magnet_st.evaluation.mteb_tasks`), so `mteb.evaluate` runs offline.
Each STS score carries a 95% bootstrap interval over the pairs, from mteb's per-pair similarities.
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magnet_st.data.classification import CLASSIFICATION_TASKS, read_banking77, read_sst2
from magnet_st.data.paths import dataset_file
from magnet_st.data.sts import STS_FILES, read_sts_file, read_stsb
from magnet_st.encoding_variants import encoding_settings, encoding_variant
from magnet_st.evaluation.bootstrap import per_example_record, record_interval
from magnet_st.evaluation.mteb_tasks import local_classification_task, local_sts_task, run_mteb


def subsample(columns: dict[str, list], limit: int | None, seed: int) -> dict[str, list]:
    """A seeded random subset of `limit` rows (all rows, in order, when limit is None or large enough)."""
    size = len(next(iter(columns.values())))
    if limit is None or limit >= size:
        return columns
    keep = sorted(random.Random(seed).sample(range(size), limit))
    return {name: [values[i] for i in keep] for name, values in columns.items()}


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def sts_pairs_record(model: Any, pairs: dict[str, list], batch_size: int = 32) -> dict:
    """Per-pair record (Spearman x100) of the model's own similarity on STS pairs, scored directly, without mteb."""
    first = model.encode(pairs["sentence1"], convert_to_tensor=True, batch_size=batch_size)
    second = model.encode(pairs["sentence2"], convert_to_tensor=True, batch_size=batch_size)
    predicted = model.similarity_pairwise(first, second).float().cpu().numpy()
    keys = list(zip(pairs["sentence1"], pairs["sentence2"]))
    return per_example_record("spearman", keys, scale=100, predicted=predicted, gold=pairs["score"])


def sts_records(model: Any, sts_sets: dict[str, dict[str, list]], batch_size: int, output_folder) -> tuple[dict, dict]:
    """mteb's STS results per set, and per set a record of the per-pair similarities (for intervals)."""
    tasks = [local_sts_task(f"LocalSTS-{name}", pairs) for name, pairs in sts_sets.items()]
    with tempfile.TemporaryDirectory() as predictions:
        scored = run_mteb(
            model, tasks, batch_size=batch_size, output_folder=output_folder, prediction_folder=predictions
        )
        records = {}
        for task, (name, pairs) in zip(tasks, sts_sets.items()):
            with open(Path(predictions) / task.prediction_file_name, encoding="utf-8") as file:
                split = json.load(file)["default"]["test"]
            # mteb's main score uses the model's own similarity when it has one, cosine otherwise
            predicted = (
                split["similarity_scores"] if split.get("similarity_scores") is not None else split["cosine_scores"]
            )
            keys = list(zip(pairs["sentence1"], pairs["sentence2"], pairs["score"]))
            records[name] = per_example_record("spearman", keys, scale=100, predicted=predicted, gold=pairs["score"])
    return scored, records


def evaluate_sentence(
    model: Any,
    data_dir: str | os.PathLike | None = None,
    *,
    sts: Sequence[str] = ("stsb",),
    sts_files: Sequence[str | os.PathLike] = (),
    classification: Sequence[str] = CLASSIFICATION_TASKS,
    sts_limit: int | None = None,
    classification_test_limit: int | None = None,
    classification_train_limit: int | None = None,
    samples_per_label: int = 8,
    n_experiments: int = 10,
    variants: Sequence[tuple[str, str]] = (),
    batch_size: int = 32,
    seed: int = 0,
    output_folder: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """STS Spearman x100 and classification accuracy x100 through mteb, on local data.

    Args:
        model: A SentenceTransformer (MAGNET or any other encoder).
        data_dir: Data root (default: $MAGNET_ST_DATA or ../shared/datasets).
        sts: Built-in STS sets by name ("stsb": the STS-B test split).
        sts_files: Extra STS files in any supported layout (see `read_sts_file`), named by file stem.
        classification: Built-in classification sets: "banking77", "sst2".
        sts_limit / classification_*_limit: Seeded random subsets (None = all rows).
        samples_per_label, n_experiments: mteb's classification protocol (logistic regression on
            `samples_per_label` training examples per label, averaged over `n_experiments` draws).
        variants: (attention_mode, pooling) pairs also scored on the STS sets (MAGNET models only).
        output_folder: Where mteb's own result JSON files go (one per task).
    """
    unknown = set(sts) - set(STS_FILES)
    if unknown:
        raise ValueError(f"`sts` names must be among {sorted(STS_FILES)}, got {sorted(unknown)}.")
    unknown = set(classification) - set(CLASSIFICATION_TASKS)
    if unknown:
        raise ValueError(f"`classification` names must be among {list(CLASSIFICATION_TASKS)}, got {sorted(unknown)}.")

    sts_sets: dict[str, dict[str, list]] = {}
    for name in sts:
        path = dataset_file(data_dir, *STS_FILES[name])
        sts_sets[name] = subsample(read_stsb(path), sts_limit, seed)
    for path in sts_files:
        sts_sets[_safe_name(Path(path).stem)] = subsample(read_sts_file(path), sts_limit, seed)

    def sts_tasks():
        return [local_sts_task(f"LocalSTS-{name}", pairs) for name, pairs in sts_sets.items()]

    results: dict[str, Any] = {"encoding": encoding_settings(model), "sts": {}, "classification": {}, "variants": {}}
    folder = Path(output_folder) if output_folder is not None else None
    if sts_sets:
        scored, records = sts_records(model, sts_sets, batch_size, folder)
        for name, pairs in sts_sets.items():
            results["sts"][name] = {
                "spearman": 100 * scored[f"LocalSTS-{name}"].get_score(),
                "pairs": len(pairs["score"]),
                "interval": record_interval(records[name]),
            }
        results["per_example"] = records
        results["sts_average"] = sum(entry["spearman"] for entry in results["sts"].values()) / len(results["sts"])

    for name in classification:
        reader = read_banking77 if name == "banking77" else read_sst2
        train = subsample(reader(data_dir, "train"), classification_train_limit, seed)
        test = subsample(reader(data_dir, "test"), classification_test_limit, seed)
        task = local_classification_task(
            f"Local-{name}", train, test, samples_per_label=samples_per_label, n_experiments=n_experiments, seed=seed
        )
        scored = run_mteb(model, [task], batch_size=batch_size, output_folder=folder)
        results["classification"][name] = {
            "accuracy": 100 * scored[f"Local-{name}"].get_score(),
            "test_examples": len(test["label"]),
            "samples_per_label": samples_per_label,
            "n_experiments": n_experiments,
        }

    for attention_mode, pooling in variants:
        key = f"{attention_mode}/{pooling}"
        with encoding_variant(model, attention_mode, pooling):
            variant_folder = folder / _safe_name(key) if folder is not None else None
            scored = run_mteb(model, sts_tasks(), batch_size=batch_size, output_folder=variant_folder)
        results["variants"][key] = {name: 100 * scored[f"LocalSTS-{name}"].get_score() for name in sts_sets}
    return results
