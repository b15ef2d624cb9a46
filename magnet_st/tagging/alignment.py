"""Words <-> sub-tokens: split text into words, tokenize with a prefix token, mark each word's tokens.

`WordTokenizer` builds the `word_token_mask` feature that `WordPooling` reads. Every sequence starts with
one prefix token (the tokenizer's BOS, else EOS), so the first word also has a previous position. Long
sentences are split into overlapping word windows; each word is read from the window in which it sits
most centrally.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from magnet_st.decoding import pad_sequences
from magnet_st.modules.word_pooling import check_prefix_token

# Words as CoNLL-2003 splits them: abbreviations (U.S., J., vs.), numbers (3-1, 1,000, 12:30), words with
# hyphens kept, n't and 's split off, runs of one punctuation mark (--, ...), other punctuation alone.
WORD_PATTERN = re.compile(
    r"(?:[^\W\d_]\.){2,}"  # U.S., U.N., e.g.
    r"|\b[A-Z]\.(?=\s)|\bvs\."  # initials (J. Smith), vs.
    r"|\d+(?:[.,:/]\d+)+"  # 1,000  3.5  12:30  1/2
    r"|\w+(?=n't\b)|n't\b"  # do n't
    r"|\w+(?:[-.]\w+)*"  # Brussels-Nord, 1996-08-22
    r"|'\w+"  # 's
    r"|([^\w\s])\1*"  # , . -- ...
)


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans (start, end) of the words of a raw text."""
    return [match.span() for match in WORD_PATTERN.finditer(text)]


def join_words(words: Sequence[str], index: int | None = None) -> tuple[str, list[tuple[int, int]]]:
    """Join pre-split words with single spaces; return the text and each word's character span."""
    where = "" if index is None else f" (sentence {index})"
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"Words{where} must be a list of strings, got {type(words).__name__}.")
    if len(words) == 0:
        raise ValueError(f"Empty sentence{where}: a sentence needs at least one word.")
    spans, position = [], 0
    for number, word in enumerate(words):
        if not isinstance(word, str) or not word.strip():
            raise ValueError(f"Word {number}{where} must be a non-empty string, got {word!r}.")
        spans.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), spans


def token_word_map(offsets: Sequence[tuple[int, int]], word_spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """For each token, the words it belongs to.

    A token belongs to every word whose characters it covers. Whitespace it covers counts for the
    next word (byte-level tokenizers glue a space to the following word, or emit it alone), so a
    space-only token joins the word after it. A token that merges two words belongs to both.
    """
    if not word_spans:
        return [[] for _ in offsets]
    end = max(word_spans[-1][1], max((stop for _, stop in offsets), default=0))
    char_word = [-1] * end
    for index, (start, stop) in enumerate(word_spans):
        for char in range(start, stop):
            char_word[char] = index
    # Gaps (spaces) take the next word; trailing gaps belong to none.
    following = len(word_spans) - 1
    for char in range(end - 1, -1, -1):
        if char_word[char] >= 0:
            following = char_word[char]
        else:
            char_word[char] = following if char < word_spans[following][0] else -1
    result = []
    for start, stop in offsets:
        words = sorted({char_word[char] for char in range(start, stop) if char_word[char] >= 0})
        result.append(words)
    return result


@dataclass
class Segment:
    """A window of one sentence: words [first, last) are in it; words [own_first, own_last) are read from it."""

    sentence: int
    first: int
    last: int
    own_first: int
    own_last: int


def plan_segments(sentence: int, word_token_counts: Sequence[int], max_tokens: int) -> list[Segment]:
    """Split a sentence into overlapping word windows of at most `max_tokens` tokens (half-window stride)."""
    count = len(word_token_counts)
    if sum(word_token_counts) <= max_tokens:
        return [Segment(sentence, 0, count, 0, count)]
    windows, start = [], 0
    while True:
        stop, used = start, 0
        while stop < count and (stop == start or used + word_token_counts[stop] <= max_tokens):
            used += word_token_counts[stop]
            stop += 1
        windows.append((start, stop))
        if stop >= count:
            break
        start = max(start + 1, start + (stop - start) // 2)
    # Each word is read from the window where it is farthest from an edge (most context both sides).
    owner = []
    for word in range(count):
        best = max(
            range(len(windows)),
            key=lambda k: (
                (windows[k][0] <= word < windows[k][1]) * (1 + min(word - windows[k][0], windows[k][1] - 1 - word))
            ),
        )
        owner.append(best)
    segments = []
    for k, (start, stop) in enumerate(windows):
        owned = [word for word in range(start, stop) if owner[word] == k]
        if owned:
            segments.append(Segment(sentence, start, stop, owned[0], owned[-1] + 1))
    return segments


def prefix_token_id(tokenizer, prefix_token: str) -> int | None:
    if check_prefix_token(prefix_token) == "none":
        return None
    if prefix_token == "bos" and tokenizer.bos_token_id is not None:
        return tokenizer.bos_token_id
    return tokenizer.eos_token_id


class WordTokenizer:
    """Tokenizes sentences (text + word spans) into decoder features with a word-to-token mask."""

    def __init__(self, tokenizer, max_length: int, prefix_token: str = "bos") -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("Word alignment needs a fast tokenizer (character offsets).")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.prefix_id = prefix_token_id(tokenizer, prefix_token)

    def _encode(self, text: str, spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[list[int]]]:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return encoded["input_ids"], token_word_map(encoded["offset_mapping"], spans)

    def segments(self, sentences: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> list[Segment]:
        """Windows of every sentence that fit `max_length` (prefix token included)."""
        budget = self.max_length - (self.prefix_id is not None)
        planned = []
        for index, (text, spans) in enumerate(sentences):
            _, token_words = self._encode(text, spans)
            counts = [0] * len(spans)
            for words in token_words:
                for word in words:
                    counts[word] += 1
            planned.extend(plan_segments(index, counts, budget))
        return planned

    def features(
        self, sentences: Sequence[tuple[str, Sequence[tuple[int, int]]]], segments: Sequence[Segment]
    ) -> dict[str, torch.Tensor]:
        """Right-padded `input_ids`, `attention_mask` and `word_token_mask` (B x W x T, True where word w has token t)."""
        rows, memberships = [], []
        for segment in segments:
            text, spans = sentences[segment.sentence]
            window = spans[segment.first : segment.last]
            # Keep the whitespace before the window's first word: its tokens then match the full sentence's.
            offset = spans[segment.first - 1][1] if segment.first > 0 else 0
            local = [(start - offset, stop - offset) for start, stop in window]
            ids, token_words = self._encode(text[offset : window[-1][1]], local)
            budget = self.max_length - (self.prefix_id is not None)
            ids, token_words = ids[:budget], token_words[:budget]  # only a single over-long word gets cut
            if self.prefix_id is not None:
                ids, token_words = [self.prefix_id, *ids], [[], *token_words]
            rows.append(ids)
            memberships.append(token_words)
        words = max(segment.last - segment.first for segment in segments)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        input_ids, attention_mask = pad_sequences(rows, pad)  # (B, T) each, right-padded
        word_token_mask = torch.zeros((len(rows), words, input_ids.shape[1]), dtype=torch.bool)  # (B, W, T)
        for row, token_words in enumerate(memberships):
            for position, members in enumerate(token_words):
                for word in members:
                    word_token_mask[row, word, position] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask, "word_token_mask": word_token_mask}
