"""Infilling (MAGNET hybrid attention, cached context) and ordinary left-to-right generation."""

from magnet_st.generation.generate import generate
from magnet_st.generation.infill import BLANK, BlankFill, InfillCandidate, InfillResult, infill

__all__ = ["BLANK", "BlankFill", "InfillCandidate", "InfillResult", "generate", "infill"]
