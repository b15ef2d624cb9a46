"""Input checks shared by the public entry points: fail early, name the argument."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def check_texts(texts: Any, argument: str, *, allow_empty_strings: bool = False) -> list[str]:
    """Return `texts` as a list of strings, or raise an error that names `argument` and the bad item."""
    if texts is None:
        raise TypeError(f"`{argument}` must be a string or a list of strings, got None.")
    if isinstance(texts, str):
        texts = [texts]
    elif not isinstance(texts, Sequence) and not hasattr(texts, "__iter__"):
        raise TypeError(f"`{argument}` must be a string or a list of strings, got {type(texts).__name__}.")
    texts = list(texts)
    if not texts:
        raise ValueError(f"`{argument}` is empty: pass at least one text.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"`{argument}[{index}]` must be a string, got {type(text).__name__}: {text!r:.60}.")
        if not allow_empty_strings and not text.strip():
            raise ValueError(f"`{argument}[{index}]` is an empty string; every text needs some content.")
    return texts


def check_positive_int(value: Any, argument: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{argument}` must be a positive integer, got {value!r}.")
    return value
