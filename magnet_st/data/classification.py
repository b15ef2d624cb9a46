"""Text classification sets: Banking77 (77 intents) and SentEval SST-2 (binary sentiment) -> text / label columns."""

from __future__ import annotations

import csv
import json
import os

from magnet_st.data.paths import dataset_file

CLASSIFICATION_TASKS = ("banking77", "sst2")
# Files each set reads, as path parts under the data root.
CLASSIFICATION_FILES = {
    "banking77": [("banking77", "train.csv"), ("banking77", "test.csv"), ("banking77", "categories.json")],
    "sst2": [("senteval_transfer", "SST", "binary", f"sentiment-{split}") for split in ("train", "test")],
}


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
