"""What `infill` returns: the fill of each blank, each candidate filling of a text, and the result per text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from magnet_st.generation.decode import RowState
from magnet_st.generation.layout import BlankLayout, fill_text


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


def collect_result(tokenizer, layout: BlankLayout, rows: Sequence[RowState], *, output_logits: bool) -> InfillResult:
    """The decoded rows (candidates) of one text as an `InfillResult`, best candidate first."""
    candidates = []
    for state in rows:
        fills = [
            BlankFill(
                text=tokenizer.decode(token_ids, skip_special_tokens=False),
                token_ids=token_ids,
                score=sum(logps) / len(logps),
                logprob=sum(logps),
                auto_length=automatic,
                logits=torch.stack(logits) if output_logits else None,
            )
            for (token_ids, logps, logits), automatic in zip(state.fills, layout.automatic)
        ]
        score = sum(fill.logprob for fill in fills) / sum(fill.length for fill in fills)
        text = fill_text(layout.pieces, [fill.text for fill in fills])
        candidates.append(InfillCandidate(text=text, fills=fills, score=score))
    candidates.sort(key=lambda candidate: candidate.score, reverse=True)
    return InfillResult(text=candidates[0].text, candidates=candidates)
