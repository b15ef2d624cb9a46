"""Reader of CoNLL-format files: one token per line, columns named by the caller, blank lines between sentences."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONLL2003_COLUMNS = ("word", "pos", "chunk", "ner")
DOCSTART = "-DOCSTART-"


@dataclass
class ConllSentence:
    """One sentence: its words, a tag list per named column, and the file line where it starts."""

    words: list[str]
    tags: dict[str, list[str]] = field(default_factory=dict)
    line: int = 0


def read_conll(
    path: str | os.PathLike,
    columns: Sequence[str] = CONLL2003_COLUMNS,
    *,
    word_column: str = "word",
    delimiter: str | None = None,
    encoding: str = "utf-8",
    max_sentences: int | None = None,
) -> list[ConllSentence]:
    """Read a CoNLL file whose columns are named by `columns` (default: CoNLL-2003's word, POS, chunk, NER).

    `delimiter` None splits on any whitespace; "\\t" suits files whose words contain spaces.
    `-DOCSTART-` lines are skipped. A line with the wrong number of columns raises a ValueError with
    its line number.
    """
    columns = list(columns)
    if isinstance(columns, str) or not columns or len(set(columns)) != len(columns):
        raise ValueError(f"`columns` must be distinct column names, got {columns!r}.")
    if word_column not in columns:
        raise ValueError(f"`word_column` {word_column!r} is not one of the columns {columns}.")
    if max_sentences is not None and (not isinstance(max_sentences, int) or max_sentences <= 0):
        raise ValueError(f"`max_sentences` must be a positive integer or None, got {max_sentences!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CoNLL file {str(path)!r} does not exist.")
    tag_columns = [name for name in columns if name != word_column]
    sentences: list[ConllSentence] = []
    current: ConllSentence | None = None

    def close() -> None:
        nonlocal current
        if current is not None and current.words:
            sentences.append(current)
        current = None

    with open(path, encoding=encoding) as file:
        for number, raw in enumerate(file, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                close()
                if max_sentences is not None and len(sentences) >= max_sentences:
                    break
                continue
            parts = line.split(delimiter) if delimiter else line.split()
            if parts[0] == DOCSTART:
                close()
                continue
            if len(parts) != len(columns):
                raise ValueError(
                    f"{path.name}, line {number}: expected {len(columns)} columns ({' '.join(columns)}), "
                    f"got {len(parts)}: {line!r:.80}"
                )
            if current is None:
                current = ConllSentence(words=[], tags={name: [] for name in tag_columns}, line=number)
            row = dict(zip(columns, parts))
            current.words.append(row[word_column])
            for name in tag_columns:
                current.tags[name].append(row[name])
    close()
    return sentences[:max_sentences] if max_sentences else sentences


def check_tagged(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]], argument: str = "tags") -> None:
    """Raise a clear error when word and tag lists do not pair up one to one."""
    if len(words) != len(tags):
        raise ValueError(f"Got {len(words)} sentences but {len(tags)} tag sequences in `{argument}`.")
    for index, (sentence_words, sentence_tags) in enumerate(zip(words, tags)):
        if len(sentence_words) == 0:
            raise ValueError(f"Sentence {index} is empty: every sentence needs at least one word.")
        if len(sentence_words) != len(sentence_tags):
            raise ValueError(
                f"Sentence {index} has {len(sentence_words)} words but {len(sentence_tags)} tags in `{argument}`."
            )


def conll2003_split(
    root: str | os.PathLike | None, split: str, max_sentences: int | None = None
) -> list[ConllSentence]:
    """CoNLL-2003 (IOB2) from the data folder: split "train", "valid" or "test"."""
    from magnet_st.data.paths import dataset_file

    if split not in ("train", "valid", "test"):
        raise ValueError(f"`split` must be 'train', 'valid' or 'test', got {split!r}.")
    return read_conll(dataset_file(root, "conll2003", f"{split}.txt"), max_sentences=max_sentences)
