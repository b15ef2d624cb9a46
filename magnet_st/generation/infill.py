"""MAGNET infilling: fill `[BLANK]`s from both sides with a context cache encoded once per text.

The pieces, one concept per module: `layout` (a text with blanks -> in-place context tokens and gaps),
`lengths` (a length for every blank given none), `decode` (context prefill, lockstep span decoding, the
sampler), `results` (what comes back). This module holds the options, checked once, and the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from magnet_st.attention import check_mask_backend
from magnet_st.decoding import eval_mode
from magnet_st.generation.decode import decode_blanks, make_sampler
from magnet_st.generation.layout import BLANK, check_window, tokenize_blanks
from magnet_st.generation.lengths import DEFAULT_PHRASE_LENGTHS, choose_lengths
from magnet_st.generation.results import InfillResult, collect_result
from magnet_st.seeding import check_seed
from magnet_st.validation import check_positive_int, check_sampling, check_texts

DEFAULT_MAX_AUTO_LENGTH = 32
Lengths = int | None | Sequence[int | None] | Sequence[Sequence[int | None]]

__all__ = ["BLANK", "DEFAULT_MAX_AUTO_LENGTH", "InfillOptions", "infill"]


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


@dataclass
class InfillOptions:
    """Every option of `infill`, validated once when built (bad values raise an error naming the option).

    Args:
        length: Tokens per blank: an int for every blank, a list with one entry per blank (shared by all
            texts), or a list of such lists (one per text). None (default, or a None entry) picks the length
            automatically: a blank between sentences gets the mean sentence length of the text; a blank inside
            a sentence gets the one of `phrase_lengths` whose prefix of a greedy fill makes the completed
            text most probable under the model with causal attention (see `magnet_st.generation.lengths`).
        blank: The blank marker.
        max_auto_length: Largest length chosen automatically.
        phrase_lengths: Candidate lengths for an automatic blank inside a sentence.
        do_sample: Sample (with `temperature`, `top_k`, `top_p`) instead of greedy decoding.
        seed: Seed of the sampler, for reproducible samples.
        num_candidates: Candidate fillings per text (needs `do_sample=True`), best first.
        batch_size: Texts encoded and decoded together.
        output_logits: Keep the raw logits that predicted each fill token (`BlankFill.logits`).
    """

    length: Lengths = None
    blank: str = BLANK
    max_auto_length: int = DEFAULT_MAX_AUTO_LENGTH
    phrase_lengths: Sequence[int] = DEFAULT_PHRASE_LENGTHS
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    num_candidates: int = 1
    batch_size: int = 8
    output_logits: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.blank, str) or not self.blank.strip():
            raise ValueError(f"`blank` must be a non-empty marker string, got {self.blank!r}.")
        if not isinstance(self.do_sample, bool):
            raise TypeError(f"`do_sample` must be True or False, got {self.do_sample!r}.")
        check_sampling(self.temperature, self.top_k, self.top_p)
        for name in ("num_candidates", "max_auto_length", "batch_size"):
            check_positive_int(getattr(self, name), name)
        if self.num_candidates > 1 and not self.do_sample:
            raise ValueError("`num_candidates` > 1 needs `do_sample=True`: greedy decoding gives one candidate.")
        check_seed(self.seed)
        if not _is_list(self.phrase_lengths) or not self.phrase_lengths:
            raise ValueError(
                f"`phrase_lengths` must be a non-empty list of positive integers, got {self.phrase_lengths!r}."
            )
        self.phrase_lengths = tuple(
            sorted({check_positive_int(value, "phrase_lengths") for value in self.phrase_lengths})
        )
        self.length = self._checked_length(self.length)

    @staticmethod
    def _checked_length(length: Any) -> Lengths:
        """`length` with every entry checked: an int or None, a tuple of them, or a tuple of such tuples."""
        if length is None or isinstance(length, (int, bool)):
            return check_positive_int(length, "length", allow_none=True)
        if not _is_list(length):
            raise TypeError(
                f"`length` must be an int, None, or a list (one entry per blank), got {type(length).__name__}."
            )
        if not any(_is_list(item) for item in length):  # one entry per blank, shared by every text
            return tuple(check_positive_int(value, f"length[{i}]", allow_none=True) for i, value in enumerate(length))
        for text_index, per_text in enumerate(length):
            if not _is_list(per_text):
                raise ValueError(f"`length[{text_index}]` must be a list of lengths (one per blank), got {per_text!r}.")
        return tuple(
            tuple(check_positive_int(value, f"length[{t}][{i}]", allow_none=True) for i, value in enumerate(per_text))
            for t, per_text in enumerate(length)
        )

    def lengths_per_text(self, blank_counts: Sequence[int], single: bool) -> list[list[int | None]]:
        """`length` as one list per text (an entry per blank, None = automatic), checked against the blanks."""
        length = self.length
        if length is None or isinstance(length, int):
            return [[length] * count for count in blank_counts]
        if not any(isinstance(item, tuple) for item in length):
            for text_index, count in enumerate(blank_counts):
                if count != len(length):
                    raise ValueError(
                        f"`length` has {len(length)} entries but text {text_index} has {count} blank(s); "
                        "give one length per blank (or one list per text)."
                    )
            return [list(length) for _ in blank_counts]
        if single:
            raise ValueError("`length` as a list of lists needs a list of texts.")
        if len(length) != len(blank_counts):
            raise ValueError(f"`length` has {len(length)} lists but there are {len(blank_counts)} texts.")
        for text_index, (per_text, count) in enumerate(zip(length, blank_counts)):
            if len(per_text) != count:
                raise ValueError(
                    f"`length[{text_index}]` must list {count} length(s), one per blank, got {per_text!r}."
                )
        return [list(per_text) for per_text in length]


def infill(
    model, texts: str | Sequence[str], *, length: Lengths = None, **options: Any
) -> InfillResult | list[InfillResult]:
    """Fill every blank of each text using its left and right context (MAGNET hybrid attention).

    Args:
        model: A `MagnetSentenceTransformer` (from `magnet_st.load_model`) or a `MagnetDecoder`.
        texts: A text or a list of texts, each with at least one blank marker.
        length: Tokens per blank (None: automatic); see `InfillOptions`.
        **options: The other fields of `InfillOptions` (`blank`, `max_auto_length`, `phrase_lengths`,
            `do_sample`, `temperature`, `top_k`, `top_p`, `seed`, `num_candidates`, `batch_size`,
            `output_logits`).

    Returns:
        An `InfillResult` (for one text) or a list of them: the filled text plus, per candidate and blank,
        the fill, its tokens and its score (mean log-probability per token).
    """
    decoder = getattr(model, "decoder", model)
    if not hasattr(decoder, "lm_logits"):
        raise TypeError(f"`model` must be a MAGNET model from `magnet_st.load_model`, got {type(model).__name__}.")
    single = isinstance(texts, str)
    texts = check_texts(texts, "texts")
    settings = InfillOptions(length=length, **options)
    blank_counts = [text.count(settings.blank) for text in texts]
    for index, count in enumerate(blank_counts):
        if count == 0:
            raise ValueError(f"`texts[{index}]` has no {settings.blank} marker to fill: {texts[index]!r:.80}.")
    lengths = settings.lengths_per_text(blank_counts, single)
    blank_texts = []
    for index, (text, per_text) in enumerate(zip(texts, lengths)):  # each text tokenized once, checked early
        blank_text = tokenize_blanks(decoder.tokenizer, text, blank=settings.blank, text_index=index)
        longest = [settings.max_auto_length if value is None else value for value in per_text]
        check_window(decoder, blank_text.layout(decoder, longest), index)
        blank_texts.append(blank_text)
    check_mask_backend(decoder.config, "Infilling")
    device = next(decoder.parameters()).device
    choose = make_sampler(
        do_sample=settings.do_sample,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        seed=settings.seed,
        device=device,
    )
    results = []
    with eval_mode(decoder):
        chosen = choose_lengths(
            decoder,
            blank_texts,
            lengths,
            max_auto_length=settings.max_auto_length,
            phrase_lengths=settings.phrase_lengths,
            batch_size=settings.batch_size,
            device=device,
        )
        layouts = []
        for blank_text, final, given in zip(blank_texts, chosen, lengths):
            layout = blank_text.layout(decoder, final)
            layout.automatic = [value is None for value in given]
            layouts.append(layout)
        per_text = settings.num_candidates
        for begin in range(0, len(layouts), settings.batch_size):
            chunk = layouts[begin : begin + settings.batch_size]
            rows = decode_blanks(
                decoder,
                chunk,
                num_candidates=per_text,
                choose=choose,
                output_logits=settings.output_logits,
                device=device,
                first_text=begin,
            )
            for offset, layout in enumerate(chunk):
                candidates = rows[offset * per_text : (offset + 1) * per_text]
                results.append(
                    collect_result(decoder.tokenizer, layout, candidates, output_logits=settings.output_logits)
                )
    return results[0] if single else results
