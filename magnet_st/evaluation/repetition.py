"""Repetition of generated text (MAGNET's generation claim).

rep-n = 1 - unique n-grams / all n-grams; rep-sen = 1 - unique sentences / all sentences; each computed
per continuation and averaged over the continuations that have at least one n-gram (sentence).
"""

from __future__ import annotations

from collections.abc import Sequence

from magnet_st.generation.lengths import split_sentences
from magnet_st.validation import check_positive_int, check_texts


def _tokens(sequence: str | Sequence) -> list:
    return sequence.split() if isinstance(sequence, str) else list(sequence)


def rep_n(continuations: Sequence[str | Sequence], n: int = 4) -> float:
    """Mean over continuations of 1 - unique n-grams / all n-grams (strings split on whitespace, or token lists)."""
    check_positive_int(n, "n")
    if isinstance(continuations, str) or not isinstance(continuations, Sequence):
        raise TypeError("`continuations` must be a list of texts or of token lists.")
    values = []
    for sequence in continuations:
        tokens = _tokens(sequence)
        ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        if ngrams:
            values.append(1.0 - len(set(ngrams)) / len(ngrams))
    return sum(values) / len(values) if values else 0.0


def rep_sen(continuations: Sequence[str]) -> float:
    """Mean over continuations of 1 - unique sentences / all sentences."""
    continuations = check_texts(continuations, "continuations", allow_empty_strings=True)
    values = []
    for text in continuations:
        sentences = split_sentences(text)
        if sentences:
            values.append(1.0 - len(set(sentences)) / len(sentences))
    return sum(values) / len(values) if values else 0.0
