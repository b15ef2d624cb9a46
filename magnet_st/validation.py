"""Input checks shared by the public entry points: fail early, name the argument."""

from __future__ import annotations

import math
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
        if not text.isascii():
            _check_encodable(text, f"{argument}[{index}]")
    return texts


def _check_encodable(text: str, argument: str) -> None:
    """Text the tokenizer can read: no lone surrogate (e.g. half of an emoji cut from a UTF-16 string)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"`{argument}` has a lone surrogate character {text[error.start]!r} at position {error.start}; "
            "it is not valid Unicode text (decode the source with errors='replace' or fix it)."
        ) from None


def check_positive_int(value: Any, argument: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{argument}` must be a positive integer, got {value!r}.")
    return value


def check_sampling(temperature: Any = None, top_k: Any = None, top_p: Any = None) -> None:
    """Sampling settings: `temperature` a finite number > 0, `top_k` an integer >= 0, `top_p` in (0, 1]."""
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf
    ):
        raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"`top_k` must be an integer >= 0 (0 = off), got {top_k!r}.")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"`top_p` must be a number in (0, 1], got {top_p!r}.")


def check_prompt(prompt: Any, argument: str = "prompt") -> str | None:
    """An instruction prompt: a string or None."""
    if prompt is not None and not isinstance(prompt, str):
        raise TypeError(f"`{argument}` must be a string or None, got {type(prompt).__name__}: {prompt!r:.60}.")
    return prompt
