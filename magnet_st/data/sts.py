"""Sentence-pair similarity (STS) files in the standard layouts -> sentence1 / sentence2 / score columns.

Layouts: the STS-B raw TSV, SICK, SentEval STS12-16 input/gs pairs, and a plain sentence1/sentence2/score
TSV or JSON Lines file; `read_sts_file` recognises the layout from the file name and first line.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

STS_COLUMNS = ("sentence1", "sentence2", "score")
# Built-in STS sets: name -> path parts under the data root.
STS_FILES = {"stsb": ("stsbenchmark", "sts-test.csv")}


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
