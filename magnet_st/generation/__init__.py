"""Infilling (MAGNET hybrid attention, cached context), span scoring and ordinary left-to-right generation."""

from magnet_st.generation.generate import generate
from magnet_st.generation.infill import InfillOptions, infill
from magnet_st.generation.layout import BLANK, BlankLayout
from magnet_st.generation.results import BlankFill, InfillCandidate, InfillResult
from magnet_st.generation.scoring import span_log_likelihoods, span_perplexity

__all__ = [
    "BLANK",
    "BlankFill",
    "BlankLayout",
    "InfillCandidate",
    "InfillOptions",
    "InfillResult",
    "generate",
    "infill",
    "span_log_likelihoods",
    "span_perplexity",
]
