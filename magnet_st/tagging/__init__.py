"""Token-level tasks (NER, chunking, POS) on MAGNET token representations.

    from magnet_st import load_model
    from magnet_st.data.conll import conll2003_split
    from magnet_st.tagging import train_probe, predict

Names are imported lazily: the token head module imports the alignment helpers of this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ALIGNMENTS": "magnet_st.tagging.alignment",
    "WordTokenizer": "magnet_st.tagging.alignment",
    "split_words": "magnet_st.tagging.alignment",
    "word_states": "magnet_st.tagging.alignment",
    "tagging_scores": "magnet_st.tagging.metrics",
    "encode_words": "magnet_st.tagging.inference",
    "find_head": "magnet_st.tagging.inference",
    "predict": "magnet_st.tagging.inference",
    "predict_logits": "magnet_st.tagging.inference",
    "ProbeResult": "magnet_st.tagging.training",
    "attach_head": "magnet_st.tagging.training",
    "evaluate_cached": "magnet_st.tagging.training",
    "finetune_lora": "magnet_st.tagging.training",
    "label_set": "magnet_st.tagging.training",
    "train_probe": "magnet_st.tagging.training",
    "train_probe_on_features": "magnet_st.tagging.training",
    "evaluate_tagger": "magnet_st.tagging.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'magnet_st.tagging' has no attribute {name!r}")
