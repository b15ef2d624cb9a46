"""Sentence-level evaluation through mteb on local files: STS (Spearman x100) and classification.

Readers cover the standard STS layouts (STS-B raw TSV, SICK, SentEval STS12-16 input/gs pairs, and a
plain sentence1/sentence2/score TSV or JSONL); each becomes an mteb task whose data is built from the
file, so `mteb.evaluate` runs offline and its own result files can be written next to ours.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import random
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from magnet_st.evaluation.data import dataset_file

STS_COLUMNS = ("sentence1", "sentence2", "score")
MAIN_STS_SCORE = "cosine_spearman"
# Built-in local data sets: name -> path parts under the data root.
STS_FILES = {"stsb": ("stsbenchmark", "sts-test.csv")}
CLASSIFICATION_TASKS = ("banking77", "sst2")


# -- readers ---------------------------------------------------------------------------------------
def _pairs(rows: list[tuple[str, str, float]], source: Path) -> dict[str, list]:
    if not rows:
        raise ValueError(f"No sentence pairs with a score found in {str(source)!r}.")
    sentence1, sentence2, score = zip(*rows)
    return {"sentence1": list(sentence1), "sentence2": list(sentence2), "score": list(score)}


def _score(value: str, source: Path, line: int) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{str(source)!r} line {line}: score {value!r} is not a number.") from None


def read_stsb(path: str | os.PathLike) -> dict[str, list]:
    """STS-B raw release TSV: genre, file, year, id, score, sentence1, sentence2 (some rows carry 2 more columns)."""
    path = Path(path)
    rows = []
    with path.open(newline="", encoding="utf-8") as file:
        for line, row in enumerate(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if len(row) < 7:
                raise ValueError(
                    f"{str(path)!r} line {line}: expected at least 7 tab-separated columns (STS-B layout)."
                )
            rows.append((row[5], row[6], _score(row[4], path, line)))
    return _pairs(rows, path)


def read_sick(path: str | os.PathLike) -> dict[str, list]:
    """SICK: tab-separated with a header naming sentence_A, sentence_B and relatedness_score.

    When the file has a SemEval_set column (the full SICK.txt), only its TEST rows are kept (SICK-R test).
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"sentence_A", "sentence_B", "relatedness_score"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{str(path)!r} is not a SICK file: header lacks {sorted(missing)}.")
        rows = [
            (row["sentence_A"], row["sentence_B"], _score(row["relatedness_score"], path, line))
            for line, row in enumerate(reader, start=2)
            if row.get("SemEval_set", "TEST") == "TEST"
        ]
    return _pairs(rows, path)


def read_senteval_sts(input_path: str | os.PathLike, gs_path: str | os.PathLike | None = None) -> dict[str, list]:
    """SentEval STS12-16: STS.input.<name>.txt (two tab-separated sentences) with STS.gs.<name>.txt (one score a line).

    Pairs whose gold score line is empty are skipped, as SentEval does.
    """
    input_path = Path(input_path)
    if gs_path is None:
        gs_path = input_path.with_name(input_path.name.replace("STS.input.", "STS.gs.", 1))
    gs_path = Path(gs_path)
    if not gs_path.is_file():
        raise FileNotFoundError(f"Missing gold score file {str(gs_path)!r} for {str(input_path)!r}.")
    inputs = input_path.read_text(encoding="utf-8").splitlines()
    scores = gs_path.read_text(encoding="utf-8").splitlines()
    if len(inputs) != len(scores):
        raise ValueError(
            f"{str(input_path)!r} has {len(inputs)} lines but {str(gs_path)!r} has {len(scores)}; they must match."
        )
    rows = []
    for line, (pair, score) in enumerate(zip(inputs, scores), start=1):
        if not score.strip():
            continue
        parts = pair.split("\t")
        if len(parts) < 2:
            raise ValueError(f"{str(input_path)!r} line {line}: expected two tab-separated sentences.")
        rows.append((parts[0], parts[1], _score(score.strip(), gs_path, line)))
    return _pairs(rows, input_path)


def read_plain_pairs(path: str | os.PathLike) -> dict[str, list]:
    """A TSV with a sentence1/sentence2/score header, or JSON Lines with those keys."""
    path = Path(path)
    rows = []
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as file:
            for line, text in enumerate(file, start=1):
                if not text.strip():
                    continue
                record = json.loads(text)
                missing = set(STS_COLUMNS) - set(record)
                if missing:
                    raise ValueError(f"{str(path)!r} line {line}: missing keys {sorted(missing)}.")
                rows.append((record["sentence1"], record["sentence2"], float(record["score"])))
        return _pairs(rows, path)
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = set(STS_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{str(path)!r}: header lacks {sorted(missing)}.")
        rows = [(row["sentence1"], row["sentence2"], _score(row["score"], path, n)) for n, row in enumerate(reader, 2)]
    return _pairs(rows, path)


def read_sts_file(path: str | os.PathLike) -> dict[str, list]:
    """Read any supported STS layout, recognised from the file name and first line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Missing STS file {str(path)!r}.")
    if path.name.startswith("STS.input."):
        return read_senteval_sts(path)
    if path.suffix == ".jsonl":
        return read_plain_pairs(path)
    with path.open(encoding="utf-8") as file:
        header = file.readline().rstrip("\n").split("\t")
    if {"sentence_A", "sentence_B", "relatedness_score"} <= set(header):
        return read_sick(path)
    if set(STS_COLUMNS) <= set(header):
        return read_plain_pairs(path)
    if len(header) >= 7:
        return read_stsb(path)
    raise ValueError(
        f"Cannot tell the layout of {str(path)!r}: expected STS-B TSV (7+ columns), SICK (sentence_A, sentence_B, "
        "relatedness_score header), SentEval STS.input.<name>.txt, or a sentence1/sentence2/score TSV/JSONL."
    )


def read_banking77(root: str | os.PathLike | None, split: str) -> dict[str, list]:
    """Banking77 CSV (text, category) -> texts and integer labels (sorted category order)."""
    path = dataset_file(root, "banking77", f"{split}.csv")
    with path.open(newline="", encoding="utf-8") as file:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(file)]
    categories = json.loads(dataset_file(root, "banking77", "categories.json").read_text())
    index = {name: i for i, name in enumerate(sorted(categories))}
    return {"text": [text for text, _ in rows], "label": [index[category] for _, category in rows]}


def read_sst2(root: str | os.PathLike | None, split: str) -> dict[str, list]:
    """SentEval SST-2 binary file: sentence<TAB>label."""
    path = dataset_file(root, "senteval_transfer", "SST", "binary", f"sentiment-{split}")
    texts, labels = [], []
    for line, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        sentence, _, label = text.rpartition("\t")
        if label not in ("0", "1"):
            raise ValueError(f"{str(path)!r} line {line}: label {label!r} is not 0 or 1.")
        texts.append(sentence)
        labels.append(int(label))
    return {"text": texts, "label": labels}


def subsample(columns: dict[str, list], limit: int | None, seed: int) -> dict[str, list]:
    """A seeded random subset of `limit` rows (all rows, in order, when limit is None or large enough)."""
    size = len(next(iter(columns.values())))
    if limit is None or limit >= size:
        return columns
    keep = sorted(random.Random(seed).sample(range(size), limit))
    return {name: [values[i] for i in keep] for name, values in columns.items()}


# -- mteb tasks ------------------------------------------------------------------------------------
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


# -- encoding variants -----------------------------------------------------------------------------
@contextlib.contextmanager
def encoding_variant(model: Any, attention_mode: str | None = None, pooling: str | None = None) -> Iterator[Any]:
    """Temporarily encode a MAGNET model with another attention mode and/or pooling; restored afterwards."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    from magnet_st.model import MagnetSentenceTransformer, sentence_pooling

    if (attention_mode or pooling) and not isinstance(model, MagnetSentenceTransformer):
        raise ValueError("`attention_mode` and `pooling` variants need a MAGNET decoder model, not a plain encoder.")
    if not (attention_mode or pooling):
        yield model
        return
    decoder, old_mode = model.decoder, model.decoder.attention_mode
    pooling_index = next(i for i, module in enumerate(model) if isinstance(module, Pooling))
    old_pooling = model[pooling_index]
    try:
        if attention_mode:
            from magnet_st.attention import AttentionMode

            mode = AttentionMode.parse(attention_mode)
            if mode is AttentionMode.HYBRID:
                raise ValueError("`attention_mode` for sentence encoding must be 'bidirectional' or 'causal'.")
            decoder.attention_mode = mode.value
        if pooling:
            model[pooling_index] = sentence_pooling(decoder, pooling)
        yield model
    finally:
        decoder.attention_mode = old_mode
        model[pooling_index] = old_pooling


def encoding_settings(model: Any) -> dict[str, Any]:
    """How a model turns a text into a vector (recorded next to every sentence-level number)."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    pooling = next((module for module in model if isinstance(module, Pooling)), None)
    decoder = getattr(model, "decoder", None)
    return {
        "attention_mode": getattr(decoder, "attention_mode", "bidirectional (encoder)"),
        "pooling": pooling.pooling_mode if pooling else None,
        "prompt": model.prompts.get(model.default_prompt_name or "", None) or None,
        "max_seq_length": model.max_seq_length,
    }


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


def run_mteb(model: Any, tasks: Sequence[Any], *, batch_size: int = 32, output_folder: str | os.PathLike | None = None):
    """`mteb.evaluate` without a cache (nothing is downloaded); writes mteb's own JSON per task when asked."""
    import mteb

    with _quiet_mteb():
        result = mteb.evaluate(
            model, list(tasks), cache=None, show_progress_bar=False, encode_kwargs={"batch_size": batch_size}
        )
    if result.exceptions:
        raise RuntimeError(f"mteb failed: {result.exceptions}")
    if output_folder is not None:
        folder = Path(output_folder)
        folder.mkdir(parents=True, exist_ok=True)
        for task_result in result.task_results:
            task_result.to_disk(folder / f"{task_result.task_name}.json")
    return {task_result.task_name: task_result for task_result in result.task_results}


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


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
        scored = run_mteb(model, sts_tasks(), batch_size=batch_size, output_folder=folder)
        for name, pairs in sts_sets.items():
            results["sts"][name] = {
                "spearman": 100 * scored[f"LocalSTS-{name}"].get_score(),
                "pairs": len(pairs["score"]),
            }
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
