"""Training views of a tokenized batch: the masked-and-spanned view (MNTP + MSG) of MAGNET.md.

Every token of a text is context or span. Spans keep their original tokens and positions (teacher
forcing); a fraction of the context tokens is corrupted for MNTP. Labels are aligned to token
positions (label at p is the target for token p); the losses predict token p from the state at p-1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

IGNORE_INDEX = -100


@dataclass
class ViewConfig:
    """How the masked-and-spanned view is sampled (MAGNET.md defaults; the paper leaves these open).

    Args:
        mask_rate: Fraction of eligible context tokens selected as MNTP targets (0 disables MNTP).
        mask_token_rate: Of the selected, the fraction replaced by the mask token.
        random_token_rate: Of the selected, the fraction replaced by a random token (the rest stay unchanged).
        max_spans: Spans per text are drawn from 1..max_spans (0 disables spans, hence MSG).
        span_fraction: The spans of a text cover a fraction of its tokens drawn from this range.
        long_span_length: On long texts each span is clamped to this length range (tokens).
        long_text_tokens: Texts with at least this many tokens count as long.
        pure_lm_rate: Fraction of texts that are all span: plain left-to-right LM examples.
        sentence_span_rate: Fraction of multi-sentence texts whose one span is a whole sentence (not the
            first), as infilling a missing sentence between others is used; needs the batch's sentence starts.
            Off by default: token spans alone learned both-context infilling faster (evaluation/README.md).
        mask_token: The token that replaces masked context ("_" as LLM2Vec does for Llama).
        seed: Seed of the sampler, so views are reproducible.
    """

    mask_rate: float = 0.2
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    max_spans: int = 3
    span_fraction: tuple[float, float] = (0.15, 0.30)
    long_span_length: tuple[int, int] = (8, 32)
    long_text_tokens: int = 64
    pure_lm_rate: float = 0.1
    sentence_span_rate: float = 0.0
    mask_token: str = "_"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("mask_rate", "mask_token_rate", "random_token_rate", "pure_lm_rate", "sentence_span_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"`{name}` must be in [0, 1], got {value!r}.")
        if self.mask_token_rate + self.random_token_rate > 1.0:
            raise ValueError("`mask_token_rate + random_token_rate` must be at most 1.")
        if self.max_spans < 0:
            raise ValueError(f"`max_spans` must be >= 0, got {self.max_spans!r}.")
        low, high = self.span_fraction = tuple(self.span_fraction)
        if not 0.0 < low <= high < 1.0:
            raise ValueError(
                f"`span_fraction` must be (low, high) with 0 < low <= high < 1, got {self.span_fraction!r}."
            )
        shortest, longest = self.long_span_length = tuple(self.long_span_length)
        if not 1 <= shortest <= longest:
            raise ValueError(
                f"`long_span_length` must be (min, max) with 1 <= min <= max, got {self.long_span_length!r}."
            )

    @property
    def uses_spans(self) -> bool:
        return self.max_spans > 0 or self.pure_lm_rate > 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MaskedSpanView:
    """One batch under the hybrid mask: corrupted inputs, roles, and the two label sets."""

    input_ids: torch.Tensor  # (B, T) with MNTP corruption applied to context tokens
    attention_mask: torch.Tensor  # (B, T)
    span_mask: torch.Tensor  # (B, T) bool, True for span tokens
    mntp_labels: torch.Tensor  # (B, T) original ids at MNTP targets, else IGNORE_INDEX
    msg_labels: torch.Tensor  # (B, T) original ids at span tokens that are targets, else IGNORE_INDEX


def _uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=generator).item())


def sample_spans(length: int, config: ViewConfig, generator: torch.Generator) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans inside positions 1..length-1, separated by context tokens.

    Position 0 stays context: it has no previous state to be predicted from.
    """
    slots = length - 1
    if slots < 1 or config.max_spans == 0:
        return []
    budget = max(1, round(_uniform(generator, *config.span_fraction) * length))
    count = min(_randint(generator, 1, config.max_spans), budget)
    if length >= config.long_text_tokens:
        shortest, longest = config.long_span_length
        count = max(1, min(count, budget // shortest))
        sizes = [min(longest, max(shortest, budget // count)) for _ in range(count)]
    else:
        sizes = [budget // count + (1 if i < budget % count else 0) for i in range(count)]
    while sizes and sum(sizes) + len(sizes) - 1 > slots:  # too long for this text: shrink
        sizes[sizes.index(max(sizes))] -= 1
        sizes = [size for size in sizes if size > 0]
    if not sizes:
        return []
    free = slots - sum(sizes) - (len(sizes) - 1)
    # Spread the free context tokens over the len(sizes)+1 gaps (stars and bars).
    cuts = sorted(_randint(generator, 0, free) for _ in range(len(sizes)))
    gaps = [cuts[0]] + [cuts[i] - cuts[i - 1] for i in range(1, len(cuts))]
    spans, position = [], 1
    for index, (gap, size) in enumerate(zip(gaps, sizes)):
        position += gap + (1 if index else 0)
        spans.append((position, position + size))
        position += size
    return spans


def sentence_span(starts: list[int], length: int, generator: torch.Generator) -> tuple[int, int]:
    """One whole sentence, other than the first, as (start, end): from its start to the next start or the end."""
    index = _randint(generator, 0, len(starts) - 1)
    end = starts[index + 1] if index + 1 < len(starts) else length
    return starts[index], end


def sentence_starts(input_ids: torch.Tensor, ends_sentence: torch.Tensor, starts_word: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: True where a token opens a new sentence (the previous token ends one, this one starts a word).

    `ends_sentence` and `starts_word` are (V,) bool tables over the vocabulary.
    """
    starts = torch.zeros_like(input_ids, dtype=torch.bool)  # (B, T); position 0 never opens a *later* sentence
    starts[:, 1:] = ends_sentence[input_ids[:, :-1]] & starts_word[input_ids[:, 1:]]
    return starts


def make_masked_span_view(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    config: ViewConfig,
    mask_token_id: int,
    vocab_size: int,
    special_ids: set[int],
    generator: torch.Generator,
    sentence_start_mask: torch.Tensor | None = None,
) -> MaskedSpanView:
    """Sample the MAGNET view of a right-padded batch (MNTP selection, spans, pure-LM examples).

    `sentence_start_mask` (B, T) marks tokens that open a sentence after the first (`sentence_starts`); without
    it, or for a text with one sentence, spans are drawn by `sample_spans` alone.
    """
    batch, width = input_ids.shape
    device = input_ids.device
    # Built on the CPU and moved once: per-element writes into a GPU tensor would each launch a kernel.
    ids_cpu, lengths = input_ids.cpu(), attention_mask.sum(dim=1).tolist()
    corrupted = ids_cpu.clone()
    span_mask = torch.zeros(batch, width, dtype=torch.bool)
    mntp_labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    msg_labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    for row, length in enumerate(lengths):
        length = int(length)
        if config.uses_spans and length < 2:
            raise ValueError(
                f"Text {row} of the batch has {length} token(s): too short for a span (a span needs one context "
                "token before it). Drop such texts or disable spans (max_spans=0, pure_lm_rate=0)."
            )
        if config.pure_lm_rate > 0 and _uniform(generator) < config.pure_lm_rate:
            span_mask[row, :length] = True  # all span: the original causal LM
            msg_labels[row, 1:length] = ids_cpu[row, 1:length]
            continue
        starts = [] if sentence_start_mask is None else sentence_start_mask[row, :length].nonzero().flatten().tolist()
        if (
            starts
            and config.max_spans
            and config.sentence_span_rate
            and _uniform(generator) < config.sentence_span_rate
        ):
            spans = [sentence_span(starts, length, generator)]
        else:
            spans = sample_spans(length, config, generator)
        for start, end in spans:
            span_mask[row, start:end] = True
            msg_labels[row, start:end] = ids_cpu[row, start:end]
        if config.mask_rate == 0:
            continue
        # MNTP targets: context tokens, not special, not position 0, not right after a span.
        eligible = [
            p
            for p in range(1, length)
            if not span_mask[row, p] and not span_mask[row, p - 1] and int(ids_cpu[row, p]) not in special_ids
        ]
        if not eligible:
            continue
        picks = max(1, round(config.mask_rate * len(eligible)))
        order = torch.randperm(len(eligible), generator=generator)[:picks].tolist()
        for index in order:
            p = eligible[index]
            mntp_labels[row, p] = ids_cpu[row, p]
            draw = _uniform(generator)
            if draw < config.mask_token_rate:
                corrupted[row, p] = mask_token_id
            elif draw < config.mask_token_rate + config.random_token_rate:
                corrupted[row, p] = int(torch.randint(0, vocab_size, (), generator=generator))
    return MaskedSpanView(
        input_ids=corrupted.to(device),
        attention_mask=attention_mask,
        span_mask=span_mask.to(device),
        mntp_labels=mntp_labels.to(device),
        msg_labels=msg_labels.to(device),
    )
