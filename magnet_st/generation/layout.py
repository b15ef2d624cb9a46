"""The in-place blank layout: a text with `[BLANK]`s -> context tokens with a gap of positions per blank.

Layout (MAGNET.md): a text "A [BLANK] B" becomes the context tokens of A and B with a gap of L positions
between them; the span tokens later take those positions. The state at p-1 predicts token p, so the first
span token of a blank is predicted from the last context token before its gap (`predictor_index`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from magnet_st.decoding import bos_prefix

BLANK = "[BLANK]"


@dataclass
class BlankLayout:
    """Context tokens of one text with a gap for each of its blanks (positions are in-place)."""

    pieces: list[str]  # text around the blanks, for rebuilding the filled text
    context_ids: list[int] = field(default_factory=list)
    context_positions: list[int] = field(default_factory=list)
    gap_starts: list[int] = field(default_factory=list)  # position of each blank's first span token
    lengths: list[int] = field(default_factory=list)  # span tokens per blank
    predictor_index: list[int] = field(default_factory=list)  # index into context_ids of the token before each gap
    at_end: list[bool] = field(default_factory=list)  # no text after the blank: it may end with EOS
    automatic: list[bool] = field(default_factory=list)  # the length was chosen automatically


@dataclass
class BlankText:
    """A text tokenized around its blanks, once: the layout for any lengths is built from it."""

    pieces: list[str]  # the text split at its blanks
    start: list[int]  # tokens before the first piece (BOS, or a start token before a leading blank)
    segments: list[list[int]]  # token ids of each piece

    def layout(self, decoder, lengths: Sequence[int], *, ends: bool = True) -> BlankLayout:
        """`start` and the segments with a gap of `lengths[i]` positions after segment i; EOS last if `ends`."""
        layout = BlankLayout(self.pieces, lengths=list(lengths), automatic=[False] * len(lengths))
        position = 0
        for index, ids in enumerate([self.start, *self.segments]):
            for token in ids:
                layout.context_ids.append(token)
                layout.context_positions.append(position)
                position += 1
            gap = index - 1  # segment `index - 1` is followed by blank `gap`
            if 0 <= gap < len(lengths):
                layout.predictor_index.append(len(layout.context_ids) - 1)
                layout.gap_starts.append(position)
                layout.at_end.append(gap == len(self.segments) - 2 and not self.segments[-1] and ends)
                position += lengths[gap]
        if ends and decoder.append_eos:
            layout.context_ids.append(decoder.tokenizer.eos_token_id)
            layout.context_positions.append(position)
        return layout


def start_token(tokenizer) -> int:
    """A token to put before a blank with no text before it: its first token needs a state to be predicted from."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def tokenize_blanks(tokenizer, text: str, *, blank: str = BLANK, text_index: int = 0) -> BlankText:
    """Split a text at its blanks and tokenize the text around them."""
    pieces = text.split(blank)
    start = bos_prefix(tokenizer) or ([start_token(tokenizer)] if not pieces[0].strip() else [])
    segments = []
    for index, piece in enumerate(pieces):
        # The space before a blank belongs to the fill (BPE puts it on the next word).
        piece = piece.rstrip() if index < len(pieces) - 1 else piece
        if index == 0:
            piece = piece.lstrip() if not piece.strip() else piece
        ids = tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"] if piece.strip() else []
        if not ids and 0 < index < len(pieces) - 1:
            raise ValueError(
                f"`texts[{text_index}]` has two {blank} markers with no text between them; "
                "merge them into one blank (with a longer length)."
            )
        segments.append(ids)
    return BlankText(pieces, start, segments)


def check_window(decoder, layout: BlankLayout, text_index: int) -> BlankLayout:
    """The layout, if its positions fit in the model's window."""
    window = getattr(decoder.config.get_text_config(), "max_position_embeddings", None)
    needed = len(layout.context_ids) + sum(layout.lengths)  # every position holds a context or a span token
    if window is not None and needed > window:
        raise ValueError(
            f"`texts[{text_index}]` needs {needed} positions ({len(layout.context_ids)} context tokens plus blank "
            f"lengths {layout.lengths}), beyond the model's window of {window} tokens; shorten the text or the "
            "`length` / `max_auto_length`."
        )
    return layout


def build_layout(decoder, text: str, lengths: Sequence[int], *, blank: str = BLANK, text_index: int = 0) -> BlankLayout:
    """Tokenize a text with blanks into in-place context tokens and gaps (`lengths[i]` positions for blank i)."""
    blank_text = tokenize_blanks(decoder.tokenizer, text, blank=blank, text_index=text_index)
    return check_window(decoder, blank_text.layout(decoder, lengths), text_index)


def fill_text(pieces: list[str], fills: list[str]) -> str:
    """The text with each blank replaced by its fill."""
    parts = []
    for index, piece in enumerate(pieces):
        if index < len(pieces) - 1:
            piece = piece.rstrip()
        parts.append(piece)
        if index < len(fills):
            fill = fills[index]
            parts.append(fill.lstrip() if not "".join(parts).strip() else fill)
    return "".join(parts)
