"""Public Hub copies of the data sets, converted into the project's own file layout.

When no local folder has a data file, `magnet_st.data.paths.dataset_file` asks `hub_file` for it: the data
set's Hub copy is loaded with `datasets.load_dataset` (for STS-B and Banking77 the id and revision pinned by
mteb's own task), written once under ``<cache>/datasets/<folder>/`` in the layout the readers expect, and that
file is returned. Offline (or with ``HF_HUB_OFFLINE=1``) it raises `HubUnavailable`, naming the Hub id.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WIKI_HEAD_LINES = 11_914  # the complete lines of the local wiki1m head: the same sentences from either source


class HubUnavailable(RuntimeError):
    """The Hub copy could not be had (offline, unknown data set, or a load error); the message names it."""


@dataclass(frozen=True)
class HubCopy:
    """One data set's public copy: a `datasets.load_dataset` id (or an mteb task pinning one) and its converter."""

    dataset: str  # Hub id passed to `datasets.load_dataset`
    write: Callable[[Any, Path], None] | None  # (loaded DatasetDict, folder) -> files in the project's layout
    config: str | None = None
    data_files: str | None = None
    mteb_task: str | None = None  # load at the revision this mteb task pins
    note: str = ""

    def describe(self) -> str:
        source = f"mteb task {self.mteb_task} -> " if self.mteb_task else ""
        config = f" (config {self.config!r})" if self.config else ""
        files = f" (file {self.data_files!r})" if self.data_files else ""
        return f"{source}Hub dataset {self.dataset!r}{config}{files}"

    def load(self) -> Any:
        from datasets import load_dataset

        kwargs: dict[str, Any] = {}
        if self.mteb_task:
            import mteb

            kwargs["revision"] = mteb.get_task(self.mteb_task).metadata.dataset.get("revision")
        if self.data_files:
            kwargs["data_files"] = self.data_files
        return load_dataset(self.dataset, self.config, **kwargs)


def _write_stsb(data, folder: Path) -> None:
    # The raw release's columns: genre, file, year, id, score (0-5), sentence1, sentence2.
    for split, name in (("train", "sts-train.csv"), ("validation", "sts-dev.csv"), ("test", "sts-test.csv")):
        with (folder / name).open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
            for i, row in enumerate(data[split]):
                writer.writerow(["hub", split, "-", i, row["score"], row["sentence1"], row["sentence2"]])


def _write_wiki1m(data, folder: Path) -> None:
    lines = data["train"]["text"][:WIKI_HEAD_LINES]
    (folder / "wiki1m_for_simcse.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_conll2003(data, folder: Path) -> None:
    # One token per line, "word POS chunk NER", a blank line between sentences; tags as names (IOB2).
    for split, name in (("train", "train.txt"), ("validation", "valid.txt"), ("test", "test.txt")):
        features = data[split].features
        names = {column: features[column].feature.names for column in ("pos_tags", "chunk_tags", "ner_tags")}
        with (folder / name).open("w", encoding="utf-8") as file:
            for row in data[split]:
                for i, word in enumerate(row["tokens"]):
                    tags = (names[column][row[column][i]] for column in names)
                    file.write(" ".join((word, *tags)) + "\n")
                file.write("\n")


def _label_names(split) -> list[str]:
    if "label_text" in split.column_names:
        return [str(name) for name in split["label_text"]]
    return [str(label) for label in split["label"]]


def _write_banking77(data, folder: Path) -> None:
    categories: set[str] = set()
    for split in ("train", "test"):
        labels = _label_names(data[split])
        categories.update(labels)
        with (folder / f"{split}.csv").open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["text", "category"])
            writer.writerows(zip(data[split]["text"], labels))
    (folder / "categories.json").write_text(json.dumps(sorted(categories), indent=1), encoding="utf-8")


def _write_sst2(data, folder: Path) -> None:
    # SentEval's binary layout: sentence<TAB>label, one per line.
    target = folder / "SST" / "binary"
    target.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "sentiment-train"), ("validation", "sentiment-dev"), ("test", "sentiment-test")):
        rows = (f"{text.strip()}\t{label}\n" for text, label in zip(data[split]["text"], data[split]["label"]))
        (target / name).write_text("".join(rows), encoding="utf-8")


# Data root folder -> its public copy. The README's "Where data comes from" table lists the same ids.
HUB_COPIES: dict[str, HubCopy] = {
    "stsbenchmark": HubCopy("mteb/stsbenchmark-sts", _write_stsb, mteb_task="STSBenchmark"),
    "wiki1m_for_simcse_head": HubCopy(
        "princeton-nlp/datasets-for-simcse",
        _write_wiki1m,
        data_files="wiki1m_for_simcse.txt",
        note=f"first {WIKI_HEAD_LINES} lines",
    ),
    "conll2003": HubCopy("eriktks/conll2003", _write_conll2003),
    # No loadable public copy: named in the error so users know what to fetch by hand.
    "rocstories_sample_11k": HubCopy(
        "Ximing/ROCStories", None, note="a third-party upload; ROCStories itself is handed out by a request form"
    ),
    "lama": HubCopy("facebook/lama", None, note="a loading-script data set that datasets>=4 no longer runs"),
    "banking77": HubCopy("mteb/banking77", _write_banking77, mteb_task="Banking77Classification"),
    "senteval_transfer": HubCopy("SetFit/sst2", _write_sst2, note="SST-2 only: 6,920 training sentences, not phrases"),
}


def hub_cache_dir() -> Path:
    """Where converted Hub copies are kept: <magnet-st cache>/datasets."""
    from magnet_st.base_models import cache_dir

    return cache_dir() / "datasets"


def hub_file(parts: tuple[str, ...] | list[str]) -> Path:
    """The file at `parts` from the data set's Hub copy, converted once into the cache folder."""
    copy = HUB_COPIES.get(parts[0])
    if copy is None:
        raise HubUnavailable(f"Hub: no public copy known for the folder {parts[0]!r}")
    if copy.write is None:
        raise HubUnavailable(f"Hub: {copy.describe()} not loaded automatically ({copy.note}); fetch it by hand")
    target = hub_cache_dir().joinpath(*parts)
    if target.is_file():
        return target
    folder = hub_cache_dir() / parts[0]
    staging = folder.with_name(f".{parts[0]}.{os.getpid()}.tmp")
    try:
        data = copy.load()
        staging.mkdir(parents=True, exist_ok=True)
        copy.write(data, staging)
    except Exception as error:  # offline, a moved data set, a changed schema: all end the search here
        _remove(staging)
        raise HubUnavailable(f"Hub: {copy.describe()}: {type(error).__name__}: {error}") from error
    _remove(folder)
    staging.replace(folder)  # atomic: a reader never sees a half-written copy
    if not target.is_file():
        raise HubUnavailable(f"Hub: {copy.describe()} has no file {'/'.join(parts[1:])!r}")
    return target


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
