"""Sentence-encoding variants of a MAGNET model: which attention mode and pooling turn a text into a vector.

`set_encoding` switches a model for good (an evaluation spec such as `smollm2-135m@causal/mean`);
`encoding_variant` switches it for a `with` block and restores it afterwards (the quick start's
unadapted baselines, the suite's STS variants). `encoding_settings` records how any model encodes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sentence_transformers.sentence_transformer.modules import Pooling

from magnet_st.attention import AttentionMode
from magnet_st.model import MagnetSentenceTransformer, sentence_pooling


def _pooling_index(model: Any) -> int:
    return next(index for index, module in enumerate(model) if isinstance(module, Pooling))


def _require_magnet(model: Any) -> None:
    if not isinstance(model, MagnetSentenceTransformer):
        raise ValueError("`attention_mode` and `pooling` variants need a MAGNET decoder model, not a plain encoder.")


def set_encoding(model: Any, attention_mode: str | None = None, pooling: str | None = None) -> None:
    """Encode a MAGNET model's sentences with `attention_mode` ('bidirectional' / 'causal') and/or `pooling`."""
    if not (attention_mode or pooling):
        return
    _require_magnet(model)
    mode = AttentionMode.parse_reading(attention_mode) if attention_mode else None
    if mode is not None:
        model.decoder.attention_mode = mode.value
    if pooling:
        model[_pooling_index(model)] = sentence_pooling(model.decoder, pooling)


@contextlib.contextmanager
def encoding_variant(model: Any, attention_mode: str | None = None, pooling: str | None = None) -> Iterator[Any]:
    """Temporarily encode a MAGNET model with another attention mode and/or pooling; restored afterwards."""
    if not (attention_mode or pooling):
        yield model
        return
    _require_magnet(model)
    decoder, pooling_index = model.decoder, _pooling_index(model)
    old_mode, old_pooling = decoder.attention_mode, model[pooling_index]
    try:
        set_encoding(model, attention_mode, pooling)
        yield model
    finally:
        decoder.attention_mode = old_mode
        model[pooling_index] = old_pooling


def encoding_settings(model: Any) -> dict[str, Any]:
    """How a model turns a text into a vector (recorded next to every sentence-level number)."""
    pooling = next((module for module in model if isinstance(module, Pooling)), None)
    decoder = getattr(model, "decoder", None)
    return {
        "attention_mode": getattr(decoder, "attention_mode", "bidirectional (encoder)"),
        "pooling": pooling.pooling_mode if pooling else None,
        "prompt": model.prompts.get(model.default_prompt_name or "", None) or None,
        "max_seq_length": model.max_seq_length,
    }
