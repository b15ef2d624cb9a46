"""The MAGNET training corpus: one text file assembled reproducibly from the local data sets.

Sources: the wiki1m Wikipedia sentences (without the lines the infilling evaluation holds out), WikiSplit's
Wikipedia sentences, the ROCStories training sample, and the NLTK corpora (ABC news, web text, Brown, State
of the Union and inaugural addresses). Every sentence is a text of its own, and documents also give
multi-sentence passages (consecutive sentences, 2 to `max_passage_sentences`), so that spans sometimes cover
whole sentences between two others, the way infilling is used.

Texts are deduplicated, and every text that shares a sentence with an evaluation set is removed: STS-B (all
splits), the CoNLL-2003 test split, the ROCStories test sample and the Story Cloze sets, the Wikipedia lines
the infilling evaluation holds out, and LAMA's evidence sentences. Sentences are compared after
`normalize` (case, punctuation and spacing ignored).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from magnet_st.data import corpus_sources as sources
from magnet_st.data.conll import conll2003_split
from magnet_st.data.paths import data_dir as resolve_data_dir
from magnet_st.data.sts import read_stsb
from magnet_st.data.wikipedia import WIKI_FILE, WIKI_HELD_OUT_LINES, held_out_lines
from magnet_st.validation import check_positive_int

NON_WORD = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lower case letters and digits only: tokenized and raw text ("every day", "everyday") compare equal."""
    return NON_WORD.sub("", text.lower())


@dataclass
class CorpusConfig:
    """How the corpus is cut: passages per document, text lengths, and the shuffle seed."""

    max_passage_sentences: int = 5
    passage_rate: float = 1.0  # passages cut per sentence of a multi-sentence document, on average
    min_words: int = 4
    max_chars: int = 600
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int(self.min_words, "min_words")
        check_positive_int(self.max_chars, "max_chars")
        passage = self.max_passage_sentences
        if isinstance(passage, bool) or not isinstance(passage, int) or passage < 2:
            raise ValueError(f"`max_passage_sentences` must be an integer >= 2, got {passage!r}.")
        if not 0.0 <= self.passage_rate <= 1.0:
            raise ValueError(f"`passage_rate` must be between 0 and 1, got {self.passage_rate!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"`seed` must be an integer, got {self.seed!r}.")


@dataclass
class CorpusStats:
    """What `build_corpus` wrote: texts per source, passages, and what was dropped."""

    path: str
    texts: int
    passages: int
    per_source: dict[str, int] = field(default_factory=dict)
    dropped_duplicates: int = 0
    dropped_evaluation_overlap: int = 0
    dropped_length: int = 0
    config: dict = field(default_factory=dict)


def source_documents(root: Path) -> dict[str, Iterator[sources.Document]]:
    """Each training source's documents, by name."""
    nltk = root / "nltk_corpora"
    return {
        "wiki1m": sources.wiki1m_documents(root.joinpath(*WIKI_FILE), WIKI_HELD_OUT_LINES),
        "wikisplit": sources.wikisplit_documents(root / "wikisplit"),
        "rocstories": sources.rocstories_documents(root / "rocstories_sample_11k" / "ROCstory_train_1w.csv"),
        "abc": sources.nltk_line_documents(nltk / "abc.zip", stories=True),
        "webtext": sources.nltk_line_documents(nltk / "webtext.zip", stories=False),
        "brown": sources.brown_documents(nltk / "brown.zip"),
        "state_union": sources.nltk_address_documents(nltk / "state_union.zip"),
        "inaugural": sources.nltk_address_documents(nltk / "inaugural.zip"),
    }


def _csv_rows(path: Path, **options) -> Iterator[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        yield from csv.reader(file, **options)


def _jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)


def evaluation_sentences(root: Path) -> Iterator[str]:
    """Every sentence the evaluation suite scores or reads, raw (normalize before comparing)."""
    for split in ("train", "dev", "test"):
        pairs = read_stsb(root / "stsbenchmark" / f"sts-{split}.csv")
        yield from pairs["sentence1"] + pairs["sentence2"]
    for sentence in conll2003_split(root, "test", None):
        yield " ".join(sentence.words)
    for row in _csv_rows(root / "rocstories_sample_11k" / "ROCstory_test_1k.csv"):
        yield from row[2:7]
    for path in sorted((root / "story_cloze_2016").glob("*.csv")):
        for row in list(_csv_rows(path))[1:]:
            yield from row[1:7]
    yield from held_out_lines(root)
    yield from _lama_sentences(root / "lama")


def _lama_sentences(folder: Path) -> Iterator[str]:
    for path in sorted(folder.glob("*/*.jsonl")):
        for row in _jsonl(path):
            label = row.get("obj_label", "")
            masked = list(row.get("masked_sentences", []))
            masked += [evidence.get("masked_sentence", "") for evidence in row.get("evidences", [])]
            for evidence in row.get("evidences", []):
                masked += evidence.get("considered_sentences", [])
            for sentence in masked:
                yield sentence.replace("[MASK]", label)


def _passages(document: list[str], config: CorpusConfig, rng: random.Random) -> Iterable[list[str]]:
    """Non-overlapping runs of 2..max consecutive sentences, covering about `passage_rate` of the document."""
    start = 0
    while start < len(document) - 1:
        size = rng.randint(2, min(config.max_passage_sentences, len(document) - start))
        if rng.random() < config.passage_rate:
            yield document[start : start + size]
        start += size


TABLE_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv", ".parquet")


def build_corpus(
    output: str | os.PathLike, data_dir: str | os.PathLike | None = None, config: CorpusConfig | None = None
) -> CorpusStats:
    """Write the training corpus to `output` (one text per line, shuffled with `config.seed`) and return its stats.

    The file is written to a temporary name and renamed, so an interrupted build leaves no partial corpus.
    """
    if Path(output).suffix.lower() in TABLE_SUFFIXES:
        raise ValueError(
            f"`output` {str(output)!r} names a table file, but the corpus is plain text, one text per line; "
            "give it a .txt name (training reads it by its extension)."
        )
    config = config or CorpusConfig()
    root = resolve_data_dir(data_dir)
    excluded = {normalize(sentence) for sentence in evaluation_sentences(root)}
    excluded.discard("")
    rng = random.Random(config.seed)
    seen: set[str] = set()
    texts: list[str] = []
    stats = CorpusStats(path=str(output), texts=0, passages=0, config=asdict(config))
    for name, documents in source_documents(root).items():
        kept = 0
        for document in documents:
            document = [sentence for sentence in document if sentence.strip()]
            pieces = [[sentence] for sentence in document] + list(_passages(document, config, rng))
            for piece in pieces:
                text = " ".join(piece)
                if len(text.split()) < config.min_words or len(text) > config.max_chars:
                    stats.dropped_length += 1
                elif any(normalize(sentence) in excluded for sentence in piece):
                    stats.dropped_evaluation_overlap += 1
                elif normalize(text) in seen:
                    stats.dropped_duplicates += 1
                else:
                    seen.add(normalize(text))
                    texts.append(text)
                    kept += 1
                    stats.passages += len(piece) > 1
        stats.per_source[name] = kept
    rng.shuffle(texts)
    stats.texts = len(texts)
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=output.parent, delete=False, suffix=".partial") as file:
        file.write("\n".join(texts) + "\n")
    os.replace(file.name, output)
    return stats
