"""Reading training texts: a text file (one per line) or a local CSV / JSON / Parquet file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from datasets import Dataset, load_dataset
from datasets.exceptions import DatasetGenerationError

logger = logging.getLogger(__name__)

TABLE_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def load_texts(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    positive_column: str | None = None,
    max_texts: int | None = None,
    drop_cut_last_line: bool = False,
) -> Dataset:
    """A `datasets.Dataset` with a "text" column (and "positive" when a paraphrase column is named).

    Args:
        path: `.txt` (one text per line) or `.csv`/`.tsv`/`.json`/`.jsonl`/`.parquet`.
        text_column, positive_column: Column names in a table file.
        max_texts: Keep only the first this many texts.
        drop_cut_last_line: Drop a last line that has no newline (a file cut mid-sentence).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`data` file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix in TABLE_FORMATS:
        options = {"delimiter": "\t"} if suffix == ".tsv" else {}
        table = _read_table(path, suffix, options)
        for column in (text_column, positive_column):
            if column is not None and column not in table.column_names:
                raise ValueError(f"`data` file {str(path)!r} has no column {column!r}; columns: {table.column_names}.")
        columns = {"text": [str(value or "").strip() for value in table[text_column]]}
        if positive_column:
            columns["positive"] = [str(value or "").strip() for value in table[positive_column]]
    else:
        raw = path.read_text(encoding="utf-8")
        lines = raw.split("\n")
        if drop_cut_last_line and raw and not raw.endswith("\n"):
            lines = lines[:-1]
        columns = {"text": [line.strip() for line in lines]}
    keep = [i for i, text in enumerate(columns["text"]) if text and (not positive_column or columns["positive"][i])]
    if not keep:
        raise ValueError(f"`data` file {str(path)!r} has no texts.")
    if max_texts is not None:
        keep = keep[:max_texts]
    return Dataset.from_dict({name: [values[i] for i in keep] for name, values in columns.items()})


def _read_table(path: Path, suffix: str, options: dict[str, str]) -> Dataset:
    """A table file through `datasets`; a malformed file is a ValueError naming the file (and line for JSON Lines)."""
    try:
        return load_dataset(TABLE_FORMATS[suffix], data_files=str(path), split="train", **options)
    except DatasetGenerationError as error:
        detail = _bad_json_line(path) if suffix == ".jsonl" else None
        cause = detail or str(error.__cause__ or error).strip().splitlines()[-1]
        raise ValueError(f"`data` file {str(path)!r} is not a valid {suffix[1:].upper()} file: {cause}") from None


def _bad_json_line(path: Path) -> str | None:
    """'line N: <JSON error>' for the first line of a JSON Lines file that is not a JSON object."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                return f"line {number}: {error}"
            if not isinstance(record, dict):
                return f"line {number}: expected a JSON object, got {type(record).__name__}"
    return None


def drop_short_texts(dataset: Dataset, tokenizer, min_tokens: int) -> Dataset:
    """Drop texts with fewer than `min_tokens` tokens (too short for a span); error if none is left."""
    # Truncated at min_tokens: only "long enough?" matters, and long texts need not be tokenized whole.
    encoded = tokenizer(list(dataset["text"]), add_special_tokens=False, truncation=True, max_length=min_tokens)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    keep = [i for i, length in enumerate(lengths) if length >= min_tokens]
    if not keep:
        raise ValueError(f"Every text is shorter than {min_tokens} tokens: too short for a masked span view.")
    if len(keep) < len(lengths):
        logger.warning("Dropped %d texts shorter than %d tokens.", len(lengths) - len(keep), min_tokens)
    return dataset.select(keep)
