"""MAGNET infilling: fill `[BLANK]`s from both sides with a context cache encoded once per text.

Layout (MAGNET.md): a text "A [BLANK] B" becomes the context tokens of A and B with a gap of L positions
between them; the span tokens keep those in-place positions. Context attends to all context and never to
the span, so the context's keys and values do not depend on the span: it is prefilled once per text
into a `DynamicCache` (bidirectional among context, position ids that leave the gap), then the span
tokens are decoded one by one at their gap positions, each seeing every context key plus the earlier
span tokens (causal across spans too). The state at p-1 predicts token p, so the first span token is
predicted from the prefilled state of the last context token before the gap.

Automatic length (a blank with no length): the length is chosen first (`magnet_st.generation.lengths`:
the mean sentence length for a blank between sentences; for a blank inside a sentence, the prefix of one
greedy fill that makes the completed text most probable), then the blank is decoded in place like a given
length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache, LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from magnet_st.attention import attention_bias
from magnet_st.generation.lengths import (
    DEFAULT_PHRASE_LENGTHS,
    LENGTH_WINDOW,
    check_phrase_lengths,
    completion_scores,
    is_sentence_blank,
    sentence_blank_length,
)
from magnet_st.validation import check_texts

BLANK = "[BLANK]"
DEFAULT_MAX_AUTO_LENGTH = 32


@dataclass
class BlankFill:
    """The fill of one blank: its text, tokens and length-normalised score (mean log-probability)."""

    text: str
    token_ids: list[int]
    score: float
    logprob: float
    auto_length: bool = False
    logits: torch.Tensor | None = field(default=None, repr=False)  # (length, vocab) raw logits, if asked for

    @property
    def length(self) -> int:
        return len(self.token_ids)


@dataclass
class InfillCandidate:
    """One complete filling of a text (all its blanks) and its score (mean log-probability per span token)."""

    text: str
    fills: list[BlankFill]
    score: float


@dataclass
class InfillResult:
    """The filled text (best candidate first) and every candidate of one input text."""

    text: str
    candidates: list[InfillCandidate]

    @property
    def fills(self) -> list[BlankFill]:
        return self.candidates[0].fills


@dataclass
class _Layout:
    """Context tokens of one text with gaps for its blanks (positions are in-place)."""

    pieces: list[str]  # text around the blanks, for rebuilding the filled text
    context_ids: list[int]
    context_positions: list[int]
    gap_starts: list[int]  # position of each blank's first span token
    lengths: list[int]  # span tokens per blank
    predictor_index: list[int]  # index into context_ids of the token right before each gap
    at_end: list[bool]  # no text after the blank: it may end with EOS
    automatic: list[bool]  # the length was chosen automatically


def _check_options(
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    num_candidates: int,
    max_auto_length: int,
    batch_size: int,
    seed: int | None,
) -> None:
    if not isinstance(do_sample, bool):
        raise TypeError(f"`do_sample` must be True or False, got {do_sample!r}.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"`temperature` must be a number > 0, got {temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"`top_k` must be an integer >= 0 (0 = off), got {top_k!r}.")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"`top_p` must be a number in (0, 1], got {top_p!r}.")
    for value, name in (
        (num_candidates, "num_candidates"),
        (max_auto_length, "max_auto_length"),
        (batch_size, "batch_size"),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    if num_candidates > 1 and not do_sample:
        raise ValueError("`num_candidates` > 1 needs `do_sample=True`: greedy decoding gives one candidate.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"`seed` must be an integer or None, got {seed!r}.")


def _lengths_per_text(lengths: Any, blank_counts: list[int], single: bool) -> list[list[int | None]]:
    """Normalise `length` to one list (an entry per blank, None = automatic) per text."""

    def check(value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`length`{where} must be a positive number of tokens or None (automatic), got {value!r}.")
        return value

    if lengths is None or isinstance(lengths, (int, bool)):
        value = check(lengths, "")
        return [[value] * count for count in blank_counts]
    if not isinstance(lengths, Sequence) or isinstance(lengths, str):
        raise TypeError(
            f"`length` must be an int, None, or a list (one entry per blank), got {type(lengths).__name__}."
        )
    nested = any(isinstance(item, Sequence) and not isinstance(item, str) for item in lengths)
    if not nested:  # one entry per blank, shared by every text
        per_blank = [check(value, f"[{index}]") for index, value in enumerate(lengths)]
        for text_index, count in enumerate(blank_counts):
            if count != len(per_blank):
                raise ValueError(
                    f"`length` has {len(per_blank)} entries but text {text_index} has {count} blank(s); "
                    "give one length per blank (or one list per text)."
                )
        return [list(per_blank) for _ in blank_counts]
    if single:
        raise ValueError("`length` as a list of lists needs a list of texts.")
    if len(lengths) != len(blank_counts):
        raise ValueError(f"`length` has {len(lengths)} lists but there are {len(blank_counts)} texts.")
    result = []
    for text_index, (per_text, count) in enumerate(zip(lengths, blank_counts)):
        if not isinstance(per_text, Sequence) or len(per_text) != count:
            raise ValueError(f"`length[{text_index}]` must list {count} length(s), one per blank, got {per_text!r}.")
        result.append([check(value, f"[{text_index}][{index}]") for index, value in enumerate(per_text)])
    return result


def _window(config) -> int | None:
    return getattr(config.get_text_config(), "max_position_embeddings", None)


def _start_token(tokenizer) -> int:
    """A token to put before a blank that has no text before it: its first token needs a state to be
    predicted from."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def _segments(tokenizer, pieces: list[str], blank: str, text_index: int) -> tuple[list[int], list[list[int]]]:
    """Token ids of the text around the blanks: (start tokens, one id list per piece)."""
    start: list[int] = []
    probe = tokenizer("a")["input_ids"]
    if tokenizer.bos_token_id is not None and probe and probe[0] == tokenizer.bos_token_id:
        start.append(tokenizer.bos_token_id)
    elif not pieces[0].strip():
        start.append(_start_token(tokenizer))
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
    return start, segments


def _assemble(
    decoder, pieces: list[str], start: list[int], segments: list[list[int]], lengths: Sequence[int], ends: bool
) -> _Layout:
    """Lay out context tokens with a gap of `lengths[i]` positions after segment i; EOS last if `ends`."""
    layout = _Layout(pieces, [], [], [], list(lengths), [], [], [False] * len(lengths))
    position = 0
    for index, ids in enumerate([start, *segments]):
        for token in ids:
            layout.context_ids.append(token)
            layout.context_positions.append(position)
            position += 1
        gap = index - 1  # segment `index - 1` is followed by blank `gap`
        if 0 <= gap < len(lengths):
            layout.predictor_index.append(len(layout.context_ids) - 1)
            layout.gap_starts.append(position)
            layout.at_end.append(gap == len(segments) - 2 and not segments[-1] and ends)
            position += lengths[gap]
    if ends and decoder.append_eos:
        layout.context_ids.append(decoder.tokenizer.eos_token_id)
        layout.context_positions.append(position)
    return layout


def build_layout(decoder, text: str, lengths: Sequence[int], *, blank: str = BLANK, text_index: int = 0) -> _Layout:
    """Tokenize a text with blanks into in-place context tokens and gaps (one gap of `lengths[i]` positions
    for blank i)."""
    pieces = text.split(blank)
    start, segments = _segments(decoder.tokenizer, pieces, blank, text_index)
    return _checked(decoder, _assemble(decoder, pieces, start, segments, lengths, ends=True), text_index)


def _checked(decoder, layout: _Layout, text_index: int) -> _Layout:
    """The layout, if its positions fit in the model's window."""
    window = _window(decoder.config)
    needed = len(layout.context_ids) + sum(layout.lengths)  # every position holds a context or a span token
    if window is not None and needed > window:
        raise ValueError(
            f"`texts[{text_index}]` needs {needed} positions ({len(layout.context_ids)} context tokens plus blank "
            f"lengths {layout.lengths}), beyond the model's window of {window} tokens; shorten the text or the "
            "`length` / `max_auto_length`."
        )
    return layout


def prefill_context(decoder, layouts: list[_Layout], device: torch.device):
    """Encode the context tokens of a batch of layouts once (bidirectional among context, gapped positions).

    Returns (cache, key_valid (B, Tc) bool, hidden states (B, Tc, D)).
    """
    batch = len(layouts)
    width = max(len(layout.context_ids) for layout in layouts)
    pad = decoder.tokenizer.pad_token_id
    input_ids = torch.full((batch, width), pad, dtype=torch.long, device=device)
    positions = torch.zeros((batch, width), dtype=torch.long, device=device)
    key_valid = torch.zeros((batch, width), dtype=torch.bool, device=device)
    for row, layout in enumerate(layouts):
        count = len(layout.context_ids)
        input_ids[row, :count] = torch.tensor(layout.context_ids, device=device)
        positions[row, :count] = torch.tensor(layout.context_positions, device=device)
        key_valid[row, :count] = True
    # Padding queries look at themselves only, so no row of the mask is empty (sdpa would give NaN).
    eye = torch.eye(width, dtype=torch.bool, device=device)
    allowed = key_valid[:, None, None, :] | eye[None, None]
    dtype = decoder.backbone.get_input_embeddings().weight.dtype
    cache = DynamicCache(config=decoder.config)
    output = decoder.backbone(
        input_ids=input_ids,
        position_ids=positions,
        attention_mask=attention_bias(allowed, decoder.config, dtype),
        cache=cache,
        use_cache=True,
    )
    return cache, key_valid, output.last_hidden_state


def _sampler(do_sample: bool, temperature: float, top_k: int | None, top_p: float | None, seed: int | None, device):
    processors = LogitsProcessorList()
    if do_sample:
        if temperature != 1.0:
            processors.append(TemperatureLogitsWarper(float(temperature)))
        if top_k:
            processors.append(TopKLogitsWarper(top_k))
        if top_p is not None and top_p < 1.0:
            processors.append(TopPLogitsWarper(float(top_p)))
    generator = None
    if do_sample and seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)

    def choose(logits: torch.Tensor) -> torch.Tensor:
        if not do_sample:
            return logits.argmax(dim=-1)
        scores = processors(None, logits.float())
        probs = torch.softmax(scores, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    return choose


@dataclass
class _RowState:
    layout: _Layout
    blank: int = 0
    done: bool = False
    tokens: list[int] = field(default_factory=list)
    logps: list[float] = field(default_factory=list)
    logits: list[torch.Tensor] = field(default_factory=list)
    fills: list[tuple[list[int], list[float], list[torch.Tensor]]] = field(default_factory=list)


@torch.no_grad()
def decode_blanks(
    decoder,
    layouts: list[_Layout],
    *,
    num_candidates: int,
    choose,
    output_logits: bool,
    device: torch.device,
) -> list[_RowState]:
    """Prefill the contexts once, then decode every blank of every row (text x candidate) in lockstep."""
    cache, key_valid, hidden = prefill_context(decoder, layouts, device)
    # The state before each gap predicts its first span token: only those logits are needed.
    blank_logits = [
        decoder.lm_logits(hidden[row, layout.predictor_index]).float() for row, layout in enumerate(layouts)
    ]
    if num_candidates > 1:
        cache.batch_repeat_interleave(num_candidates)
        key_valid = key_valid.repeat_interleave(num_candidates, dim=0)
    rows = [_RowState(layout) for layout in layouts for _ in range(num_candidates)]
    starting = [blank_logits[index // num_candidates] for index in range(len(rows))]
    next_logits = torch.stack([logits[0] for logits in starting])
    pad = decoder.tokenizer.pad_token_id
    dtype = decoder.backbone.get_input_embeddings().weight.dtype

    def finish_blank(index: int, state: _RowState) -> None:
        state.fills.append((state.tokens, state.logps, state.logits))
        state.tokens, state.logps, state.logits = [], [], []
        state.blank += 1
        if state.blank == len(state.layout.gap_starts):
            state.done = True
        else:
            next_logits[index] = starting[index][state.blank]

    special = torch.tensor(sorted(decoder.tokenizer.all_special_ids), device=next_logits.device)
    while not all(state.done for state in rows):
        # A blank with text after it never picks a special token (EOS would end the text mid-way); the
        # scores stay the model's own probabilities.
        candidates = next_logits.clone()
        for index, state in enumerate(rows):
            if not state.done and not state.layout.at_end[state.blank]:
                candidates[index, special] = float("-inf")
        chosen = choose(candidates)
        raw_logp = torch.log_softmax(next_logits, dim=-1)
        feed = torch.full((len(rows),), pad, dtype=torch.long, device=device)
        feed_positions = torch.zeros((len(rows),), dtype=torch.long, device=device)
        feeding = torch.zeros((len(rows),), dtype=torch.bool, device=device)
        for index, state in enumerate(rows):
            if state.done:
                continue
            token = int(chosen[index])
            layout, blank = state.layout, state.blank
            state.tokens.append(token)
            state.logps.append(float(raw_logp[index, token]))
            if output_logits:
                state.logits.append(next_logits[index].clone())
            if len(state.tokens) == layout.lengths[blank] and blank == len(layout.gap_starts) - 1:
                finish_blank(index, state)  # nothing later attends to this token
                continue
            feed[index], feeding[index] = token, True
            feed_positions[index] = layout.gap_starts[blank] + len(state.tokens) - 1
        if not bool(feeding.any()):
            break
        key_valid = torch.cat([key_valid, feeding[:, None]], dim=1)
        # Every valid key is allowed: context always, span tokens already decoded come earlier (causal).
        allowed = key_valid.clone()
        allowed[~feeding, -1] = True  # an idle row's dummy query sees itself, never an empty row
        output = decoder.backbone(
            input_ids=feed[:, None],
            position_ids=feed_positions[:, None],
            attention_mask=attention_bias(allowed[:, None, None, :], decoder.config, dtype),
            cache=cache,
            use_cache=True,
        )
        out_logits = decoder.lm_logits(output.last_hidden_state[:, -1]).float()
        for index, state in enumerate(rows):
            if not bool(feeding[index]) or state.done:
                continue
            if len(state.tokens) == state.layout.lengths[state.blank]:
                finish_blank(index, state)
            else:
                next_logits[index] = out_logits[index]
    return rows


def choose_lengths(
    decoder,
    texts: Sequence[tuple[list[str], list[int], list[list[int]]]],
    lengths: Sequence[Sequence[int | None]],
    *,
    max_auto_length: int,
    phrase_lengths: Sequence[int],
    batch_size: int,
    device: torch.device,
) -> list[list[int]]:
    """Replace every automatic (None) length by a chosen one (`magnet_st.generation.lengths` explains how).

    `texts` holds each text tokenized around its blanks: (pieces, start tokens, segments) from `_segments`.
    """
    chosen = [list(per_text) for per_text in lengths]
    windows = []  # (text index, blank index, window layout) of each blank inside a sentence
    candidates = [length for length in phrase_lengths if length <= max_auto_length] or [max_auto_length]
    for text_index, (pieces, start, segments) in enumerate(texts):
        if None not in chosen[text_index]:
            continue
        sentence_blanks = [is_sentence_blank(pieces[i], pieces[i + 1]) for i in range(len(pieces) - 1)]
        sentence_length = sentence_blank_length(decoder.tokenizer, pieces, sentence_blanks)
        for index, value in enumerate(chosen[text_index]):
            if value is not None:
                continue
            if sentence_blanks[index] and sentence_length is not None:
                chosen[text_index][index] = min(sentence_length, max_auto_length)
                continue
            # The text between this blank and its neighbours, cut to LENGTH_WINDOW tokens on each side.
            left = segments[index][-LENGTH_WINDOW:]
            right = segments[index + 1][:LENGTH_WINDOW]
            ends = index + 1 == len(segments) - 1 and len(segments[index + 1]) <= LENGTH_WINDOW
            head = start if len(left) == len(segments[index]) and index == 0 else []
            if not head and not left:  # a blank right after the window's cut
                head = [_start_token(decoder.tokenizer)]
            layout = _assemble(decoder, ["", ""], head, [left, right], [max(candidates)], ends=ends)
            windows.append((text_index, index, layout))
    greedy = _sampler(False, 1.0, None, None, None, device)
    for begin in range(0, len(windows), batch_size):
        chunk = windows[begin : begin + batch_size]
        states = decode_blanks(
            decoder,
            [layout for *_, layout in chunk],
            num_candidates=1,
            choose=greedy,
            output_logits=False,
            device=device,
        )
        for (text_index, index, layout), state in zip(chunk, states):
            before = layout.context_ids[: layout.predictor_index[0] + 1]
            after = layout.context_ids[len(before) :]
            scores = completion_scores(decoder, before, state.fills[0][0], after, candidates)
            chosen[text_index][index] = candidates[max(range(len(scores)), key=scores.__getitem__)]  # ties: shorter
    return chosen


def _fill_text(pieces: list[str], fills: list[str]) -> str:
    parts = []
    for index, piece in enumerate(pieces):
        if index < len(pieces) - 1:
            piece = piece.rstrip()
        parts.append(piece)
        if index < len(fills):
            fill = fills[index]
            parts.append(fill.lstrip() if not "".join(parts).strip() else fill)
    return "".join(parts)


def infill(
    model,
    texts: str | Sequence[str],
    *,
    length: int | Sequence[int | None] | Sequence[Sequence[int | None]] | None = None,
    blank: str = BLANK,
    max_auto_length: int = DEFAULT_MAX_AUTO_LENGTH,
    phrase_lengths: Sequence[int] = DEFAULT_PHRASE_LENGTHS,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    num_candidates: int = 1,
    batch_size: int = 8,
    output_logits: bool = False,
) -> InfillResult | list[InfillResult]:
    """Fill every blank of each text using its left and right context (MAGNET hybrid attention).

    Args:
        model: A `MagnetSentenceTransformer` (from `magnet_st.load_model`) or a `MagnetDecoder`.
        texts: A text or a list of texts, each with at least one `blank` marker.
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

    Returns:
        An `InfillResult` (for one text) or a list of them: the filled text plus, per candidate and blank,
        the fill, its tokens and its score (mean log-probability per token).
    """
    decoder = getattr(model, "decoder", model)
    if not hasattr(decoder, "lm_logits"):
        raise TypeError(f"`model` must be a MAGNET model from `magnet_st.load_model`, got {type(model).__name__}.")
    single = isinstance(texts, str)
    texts = check_texts(texts, "texts")
    if not isinstance(blank, str) or not blank.strip():
        raise ValueError(f"`blank` must be a non-empty marker string, got {blank!r}.")
    _check_options(do_sample, temperature, top_k, top_p, num_candidates, max_auto_length, batch_size, seed)
    blank_counts = [text.count(blank) for text in texts]
    for index, count in enumerate(blank_counts):
        if count == 0:
            raise ValueError(f"`texts[{index}]` has no {blank} marker to fill: {texts[index]!r:.80}.")
    lengths = _lengths_per_text(length, blank_counts, single)
    phrase_lengths = check_phrase_lengths(phrase_lengths)
    tokenized = []
    for index, (text, per_text) in enumerate(zip(texts, lengths)):  # each text tokenized once, checked early
        pieces = text.split(blank)
        start, segments = _segments(decoder.tokenizer, pieces, blank, index)
        longest = [max_auto_length if value is None else value for value in per_text]
        _checked(decoder, _assemble(decoder, pieces, start, segments, longest, ends=True), index)
        tokenized.append((pieces, start, segments))
    device = next(decoder.parameters()).device
    choose = _sampler(do_sample, temperature, top_k, top_p, seed, device)
    tokenizer = decoder.tokenizer
    was_training = decoder.training
    decoder.eval()
    results = []
    try:
        chosen = choose_lengths(
            decoder,
            tokenized,
            lengths,
            max_auto_length=max_auto_length,
            phrase_lengths=phrase_lengths,
            batch_size=batch_size,
            device=device,
        )
        layouts = []
        for (pieces, start, segments), final, given in zip(tokenized, chosen, lengths):
            layout = _assemble(decoder, pieces, start, segments, final, ends=True)
            layout.automatic = [value is None for value in given]
            layouts.append(layout)
        for start in range(0, len(layouts), batch_size):
            chunk = layouts[start : start + batch_size]
            rows = decode_blanks(
                decoder, chunk, num_candidates=num_candidates, choose=choose, output_logits=output_logits, device=device
            )
            for text_offset, layout in enumerate(chunk):
                candidates = []
                for state in rows[text_offset * num_candidates : (text_offset + 1) * num_candidates]:
                    fills = []
                    for (token_ids, logps, logits), auto in zip(state.fills, layout.automatic):
                        fills.append(
                            BlankFill(
                                text=tokenizer.decode(token_ids, skip_special_tokens=False),
                                token_ids=token_ids,
                                score=sum(logps) / len(logps),
                                logprob=sum(logps),
                                auto_length=auto,
                                logits=torch.stack(logits) if output_logits else None,
                            )
                        )
                    all_logps = sum(fill.logprob for fill in fills)
                    score = all_logps / sum(fill.length for fill in fills)
                    text = _fill_text(layout.pieces, [fill.text for fill in fills])
                    candidates.append(InfillCandidate(text=text, fills=fills, score=score))
                candidates.sort(key=lambda candidate: candidate.score, reverse=True)
                results.append(InfillResult(text=candidates[0].text, candidates=candidates))
    finally:
        decoder.train(was_training)
    return results[0] if single else results
