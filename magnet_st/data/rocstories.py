"""ROCStories infilling examples: five-sentence stories with the middle sentence blanked out.

The evaluation suite scores the ROCStories test part; the Story Cloze validation stories (the four given
sentences and the right ending) are a disjoint set of the same kind, for choosing among checkpoints
without touching what the suite reports.
"""

from __future__ import annotations

import csv
import os

from magnet_st.data.paths import dataset_file

ROCSTORIES_TEST = ("rocstories_sample_11k", "ROCstory_test_1k.csv")
STORY_CLOZE_VAL = ("story_cloze_2016", "cloze_test_val__spring2016 - cloze_test_ALL_val.csv")


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
            examples.append(_blank_middle(row[2:7], BLANK))
            if limit is not None and len(examples) >= limit:
                break
    return examples


def story_cloze_examples(data_dir: str | os.PathLike | None = None, limit: int | None = None) -> list[tuple[str, str]]:
    """(text with one blank, reference middle sentence) pairs from the Story Cloze validation stories.

    Columns: InputStoryid, InputSentence1..4, RandomFifthSentenceQuiz1, RandomFifthSentenceQuiz2,
    AnswerRightEnding (1 or 2). The story is the four sentences and the right ending; the blank replaces the
    third sentence, as in `rocstories_examples`.
    """
    from magnet_st.generation import BLANK

    path = dataset_file(data_dir, *STORY_CLOZE_VAL, hub=False)
    examples = []
    with open(path, encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            ending = row[f"RandomFifthSentenceQuiz{row['AnswerRightEnding']}"]
            examples.append(_blank_middle([row[f"InputSentence{i}"] for i in range(1, 5)] + [ending], BLANK))
            if limit is not None and len(examples) >= limit:
                break
    return examples


def _blank_middle(sentences: list[str], blank: str) -> tuple[str, str]:
    first, second, middle, fourth, fifth = (sentence.strip() for sentence in sentences)
    return f"{first} {second} {blank} {fourth} {fifth}", " " + middle
