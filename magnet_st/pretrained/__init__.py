"""Pretrained MAGNET models shipped inside the package: a LoRA adapter over an embedded base model.

The adapter is small enough to ship; the first `load_model(name)` merges it into the base once and saves the
result in the cache (`magnet_st.base_models.cache_dir()`), so later loads read a saved model. The cache folder is
named by the adapter's hash: a new release of the adapter builds a new folder.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magnet_st.base_models import cache_dir
from magnet_st.folders import files_digest
from magnet_st.model_names import REFERENCE_MODEL
from magnet_st.persistence import is_saved_magnet_model

logger = logging.getLogger(__name__)
ADAPTER_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class PretrainedModel:
    """A MAGNET model shipped as a LoRA adapter (peft format) in `folder`, over the embedded `base`.

    `folder` defaults to the package's own `pretrained/<name>/`.
    """

    name: str
    base: str
    description: str
    pooling: str = "lasttoken"
    folder: Path | None = None

    def __post_init__(self) -> None:
        if self.folder is None:
            object.__setattr__(self, "folder", Path(__file__).parent / self.name)


PRETRAINED_MODELS: dict[str, PretrainedModel] = {
    REFERENCE_MODEL: PretrainedModel(
        name=REFERENCE_MODEL,
        base="smollm2-135m",
        description="SmolLM2-135M-Instruct adapted with the MAGNET recipe on the project's corpus (LoRA r=16)",
    ),
}


def trained_steps(name: str) -> int | None:
    """Training steps of a shipped adapter, from its training log."""
    log = PRETRAINED_MODELS[name].folder / "training_log.json"
    return json.loads(log.read_text()).get("steps") if log.is_file() else None


def model_from_adapter(base: str, adapter: str | os.PathLike, *, pooling: str = "lasttoken", **kwargs: Any):
    """A MAGNET model: `base` (embedded name or folder) with a saved LoRA adapter merged in."""
    from magnet_st.lora import load_adapter, merge_lora
    from magnet_st.model import load_model

    model = load_model(base, pooling=pooling, **kwargs)
    load_adapter(model, adapter)
    return merge_lora(model)


def pretrained_model_folder(name: str) -> Path:
    """The saved MAGNET folder of a pretrained model, built into the cache on first use."""
    spec = PRETRAINED_MODELS[name]
    adapter = spec.folder / ADAPTER_FILE
    if not adapter.is_file():
        raise FileNotFoundError(
            f"The pretrained model {name!r} has no adapter in this installation ({adapter} is missing); "
            "reinstall magnet-st."
        )
    target = cache_dir() / "pretrained" / f"{name}-{files_digest([adapter])}"
    if is_saved_magnet_model(target):
        return target
    logger.info("Building %s from %s and its adapter into %s (once)", name, spec.base, target)
    model = model_from_adapter(spec.base, spec.folder, pooling=spec.pooling)
    model.model_card_data.model_name = name
    model.save(str(target))
    return target
