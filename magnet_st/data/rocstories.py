"""ROCStories infilling examples: five-sentence stories with the middle sentence blanked out."""

from __future__ import annotations

import csv
import os

from magnet_st.data.paths import dataset_file

ROCSTORIES_TEST = ("rocstories_sample_11k", "ROCstory_test_1k.csv")


def rocstories_examples(data_dir: str | os.PathLike | None = None, limit: int | None = None) -> list[tuple[str, str]]:
    """(text with one blank, reference middle sentence) pairs from the ROCStories test part.

    The file has no header: storyid, title, s1..s5. The blank replaces s3, between s1 s2 and s4 s5.
    """
    from magnet_st.generation import BLANK  # here: this module's file names must load without torch

    path = dataset_file(data_dir, *ROCSTORIES_TEST)
    examples = []
    with open(path, encoding="utf-8", newline="") as file:
        for row in csv.reader(file):
            if len(row) < 7:
                continue
            sentences = [sentence.strip() for sentence in row[2:7]]
            text = f"{sentences[0]} {sentences[1]} {BLANK} {sentences[3]} {sentences[4]}"
            examples.append((text, " " + sentences[2]))
            if limit is not None and len(examples) >= limit:
                break
    return examples
