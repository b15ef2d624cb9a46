"""Raw training sources of the MAGNET corpus, each read as documents: lists of sentences in order.

A document keeps its sentences in order so the corpus can cut multi-sentence passages from it (infilling a
missing sentence is only learnable from passages). Sources whose lines are unrelated sentences (the wiki1m
sample, WikiSplit) give one-sentence documents.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

# Abbreviations after which a period does not end a sentence (State of the Union, Brown, ABC).
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof gen col lt sgt capt gov sen rep rev hon messrs no vs etc inc co corp ltd "
    "jan feb mar apr jun jul aug sep sept oct nov dec u.s u.n a.m p.m i.e e.g".split()
)
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]*[A-Z0-9])")
NO_SPACE_BEFORE = frozenset(
    {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}
)
NO_SPACE_AFTER = frozenset({"(", "[", "{", "$"})
ENDS_WITH_PUNCTUATION = re.compile(r"[.!?][\"')\]]*$")
QUOTES = frozenset({"``", "''", '"'})

Document = list[str]


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of a raw paragraph: split after . ! ? before a capital, unless the word is an abbreviation."""
    sentences, start = [], 0
    for match in SENTENCE_END.finditer(paragraph):
        last_word = paragraph[start : match.start()].rsplit(None, 1)[-1].rstrip(".!?\"')]").lower()
        if last_word in ABBREVIATIONS or len(last_word) == 1:  # "Mr. Smith", "J. Smith"
            continue
        sentences.append(paragraph[start : match.start()].strip())
        start = match.end()
    sentences.append(paragraph[start:].strip())
    return [sentence for sentence in sentences if sentence]


def detokenize(tokens: list[str]) -> str:
    """Penn-Treebank-style tokens back to plain text (quotes paired, no space before punctuation)."""
    out: list[str] = []
    open_quote = False
    glue_next = False
    for token in tokens:
        if token in QUOTES or token == "'" and not out:
            token, opening = '"', not open_quote
            open_quote = not open_quote
            if opening:
                out.append((" " if out else "") + token)
                glue_next = True
            else:
                out.append(token)
            continue
        attach = not out or glue_next or token in NO_SPACE_BEFORE
        out.append(token if attach else " " + token)
        glue_next = token in NO_SPACE_AFTER
    return "".join(out).strip()


def wiki1m_documents(path: Path, held_out_lines: int) -> Iterator[Document]:
    """wiki1m sentences, without the cut last line and the last `held_out_lines` (the evaluation's spans)."""
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]
    for line in lines[: len(lines) - held_out_lines]:
        if line.strip():
            yield [line.strip()]


def wikisplit_documents(folder: Path) -> Iterator[Document]:
    """WikiSplit's complex sentences (column 1), detokenized."""
    for name in ("validation.tsv", "tune.tsv", "test.tsv"):
        with (folder / name).open(encoding="utf-8") as file:
            for line in file:
                sentence = line.split("\t", 1)[0].strip()
                if sentence:
                    yield [detokenize(sentence.split())]


def rocstories_documents(path: Path) -> Iterator[Document]:
    """ROCStories rows without a header: storyid, title, sentence1..sentence5."""
    with path.open(encoding="utf-8", newline="") as file:
        for row in csv.reader(file):
            if len(row) >= 7:
                yield [sentence.strip() for sentence in row[2:7] if sentence.strip()]


def _zip_texts(path: Path) -> Iterator[tuple[str, str]]:
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            base = name.rsplit("/", 1)[-1]
            if name.endswith("/") or base.upper().startswith("README") or base.startswith(("cats", "CONTENTS")):
                continue
            yield name, archive.read(name).decode("utf-8", errors="replace")


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, each joined into one line."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def nltk_line_documents(path: Path, *, stories: bool) -> Iterator[Document]:
    """ABC (`stories=True`: blank lines separate stories, whose first line is a headline without final
    punctuation) and web text (`stories=False`: every line stands alone)."""
    for _, text in _zip_texts(path):
        blocks = re.split(r"\n\s*\n", text) if stories else text.splitlines()
        for block in blocks:
            lines = [" ".join(line.split()) for line in block.splitlines() if line.strip()]
            if stories:
                lines = [line for line in lines if ENDS_WITH_PUNCTUATION.search(line)]
            if lines:
                yield lines


def nltk_address_documents(path: Path) -> Iterator[Document]:
    """State of the Union and inaugural addresses: one document per address, its paragraphs split into
    sentences (title and date lines without final punctuation dropped)."""
    for _, text in _zip_texts(path):
        sentences = [s for paragraph in paragraphs(text) for s in split_sentences(paragraph)]
        sentences = [sentence for sentence in sentences if ENDS_WITH_PUNCTUATION.search(sentence)]
        if sentences:
            yield sentences


def brown_documents(path: Path) -> Iterator[Document]:
    """Brown corpus files, one sentence per line: tags stripped (`word/tag` -> `word`), headlines (`-hl`)
    dropped, tokens detokenized."""
    for _, text in _zip_texts(path):
        sentences = []
        for line in text.splitlines():
            pairs = [token.rsplit("/", 1) for token in line.split() if "/" in token]
            if pairs and not all(tag.endswith("-hl") for _, tag in pairs):
                sentences.append(detokenize([word for word, _ in pairs]))
        if sentences:
            yield sentences
