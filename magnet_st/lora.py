"""LoRA adapters on the decoder through peft: attach, save adapter-only, reload, merge for export."""

from __future__ import annotations

import os

from peft import LoraConfig, PeftModel, get_peft_model

from magnet_st.modules.decoder import MagnetDecoder

# MAGNET.md default: r=16 on every attention and MLP projection.
DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def default_lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05) -> LoraConfig:
    """The project's default LoRA config (r=16 on q, k, v, o, gate, up, down)."""
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=DEFAULT_TARGET_MODULES)


def _decoder(model) -> MagnetDecoder:
    decoder = model[0] if not isinstance(model, MagnetDecoder) else model
    if not isinstance(decoder, MagnetDecoder):
        raise TypeError(f"`model` must be a MAGNET model from magnet_st.load_model, got {type(model).__name__}.")
    return decoder


def has_lora(model) -> bool:
    """Whether the decoder carries a LoRA adapter."""
    return isinstance(_decoder(model).model, PeftModel)


def add_lora(model, config: LoraConfig | None = None):
    """Attach a fresh LoRA adapter to the decoder (in place) and return the model."""
    decoder = _decoder(model)
    if has_lora(decoder):
        raise ValueError("`model` already has a LoRA adapter; merge it with merge_lora(model) first.")
    config = config or default_lora_config()
    present = {name.rsplit(".", 1)[-1] for name, _ in decoder.model.named_modules()}
    targets = config.target_modules if not isinstance(config.target_modules, str) else None
    if targets is not None and not set(targets) & present:
        raise ValueError(f"None of the LoRA `target_modules` {sorted(targets)} exist in this decoder.")
    decoder.model = get_peft_model(decoder.model, config)
    return model


def save_adapter(model, path: str | os.PathLike) -> None:
    """Write only the adapter weights and config (peft's format) to `path`."""
    decoder = _decoder(model)
    if not has_lora(decoder):
        raise ValueError("`model` has no LoRA adapter to save; call add_lora(model) first.")
    decoder.model.save_pretrained(str(path))


def load_adapter(model, path: str | os.PathLike, *, is_trainable: bool = False):
    """Attach a saved adapter (from save_adapter) to a model without one, in place."""
    decoder = _decoder(model)
    if has_lora(decoder):
        raise ValueError("`model` already has a LoRA adapter; merge it with merge_lora(model) first.")
    if not os.path.isfile(os.path.join(path, "adapter_config.json")):
        raise FileNotFoundError(f"`path` {str(path)!r} holds no adapter_config.json (not a saved adapter).")
    decoder.model = PeftModel.from_pretrained(decoder.model, str(path), is_trainable=is_trainable)
    return model


def merge_lora(model):
    """Merge the adapter into the base weights, in place, leaving a plain decoder."""
    decoder = _decoder(model)
    if not has_lora(decoder):
        raise ValueError("`model` has no LoRA adapter to merge.")
    decoder.model = decoder.model.merge_and_unload()
    return model
