"""How a MAGNET model is saved and loaded: one folder, two identities.

A saved folder is plain sentence-transformers. Its `modules.json` names the built-in `Transformer` for
the decoder, and the decoder's folder holds what that class loads: a causal-LM checkpoint whose
`config.json` sets `is_causal` to the default attention mode (False: bidirectional), the tokenizer
(which appends EOS itself), and a `sentence_bert_config.json` that pins plain text and the last hidden
state. So `SentenceTransformer(path)` encodes exactly as magnet_st does, with no `trust_remote_code`
and without magnet_st installed.

The same decoder folder also holds `magnet_config.json` (the `MagnetDecoder` config keys). magnet_st
recognises its decoder by that file, never by the type in `modules.json`: that entry is rebuilt as a
`MagnetDecoder` (LM head kept, for generation and infilling), every other entry with its own class's
public `load`. Saving writes the type the other way round, by the same file.

A decoder with a LoRA adapter saves the adapter merged into a copy (what both identities load) and the
adapter alone under `lora_adapter/`, so training resumes on the unmerged base weights plus the adapter:
the layout, and state dict, of the live model.

Saves are staged: the folder is written into a staging sibling and only then moved into the target, replacing
just the model's own files there (`magnet_st.folders`), so a crash leaves any earlier save whole and a user's
other files are never touched.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from peft import PeftModel
from sentence_transformers import SentenceTransformerModelCardData
from sentence_transformers.base.modules import Module, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from sentence_transformers.util import import_from_string
from transformers import AutoModelForCausalLM, PreTrainedModel

from magnet_st.attention import AttentionMode
from magnet_st.folders import EXTRA_MODULES_FILE, MODULES_FILE, atomic_folder  # noqa: F401 - atomic_folder: base_models imports it here

MAGNET_CONFIG_FILE = "magnet_config.json"
LORA_ADAPTER_FOLDER = "lora_adapter"
SETTINGS_FILE = "config_sentence_transformers.json"
PLAIN_TRANSFORMER_TYPE = f"{Transformer.__module__}.{Transformer.__name__}"
# What plain sentence-transformers needs to rebuild the decoder as its own `Transformer`:
# the forward's last hidden state on plain text, never a chat template.
PLAIN_TRANSFORMER_CONFIG = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}


# -- the decoder's folder --------------------------------------------------------------------------
def exportable_model(model: PreTrainedModel) -> PreTrainedModel:
    """The plain causal LM to save: a LoRA adapter is merged into a copy, the live model untouched."""
    if isinstance(model, PeftModel):
        return copy.deepcopy(model).merge_and_unload()
    return model


def save_decoder(decoder, output_path: str, *, safe_serialization: bool = True) -> None:
    """Write a `MagnetDecoder`'s folder: a plain checkpoint both identities load, plus magnet_st's extras."""
    model = exportable_model(decoder.model)
    previous = model.config.is_causal
    # Saved with the default mode, so plain sentence-transformers loads the same attention.
    model.config.is_causal = decoder.attention_mode == AttentionMode.CAUSAL.value
    try:
        model.save_pretrained(output_path, safe_serialization=safe_serialization)
    finally:
        model.config.is_causal = previous
    decoder.tokenizer.save_pretrained(output_path)
    if isinstance(decoder.model, PeftModel):  # the adapter too, so LoRA training can resume from this folder
        decoder.model.save_pretrained(os.path.join(output_path, LORA_ADAPTER_FOLDER))
    decoder.save_config(output_path)  # magnet_config.json: how magnet_st finds its decoder again
    with open(os.path.join(output_path, "sentence_bert_config.json"), "w", encoding="utf-8") as file:
        json.dump(PLAIN_TRANSFORMER_CONFIG, file, indent=2)


def has_adapter(folder: str | os.PathLike) -> bool:
    """Whether a saved decoder folder also holds the LoRA adapter it was trained with."""
    return os.path.isdir(os.path.join(folder, LORA_ADAPTER_FOLDER))


def restore_adapter(decoder, folder: str | os.PathLike) -> None:
    """Put a decoder loaded from `folder` back in LoRA training's layout: base weights plus the adapter, trainable."""
    base_path = Path(decoder.base_model_path)
    if not (base_path / "config.json").is_file():
        raise FileNotFoundError(
            f"Resuming LoRA training from {str(folder)!r} needs its base weights at {str(base_path)!r}, which are gone."
        )
    base = AutoModelForCausalLM.from_pretrained(base_path, attn_implementation=decoder.config._attn_implementation)
    decoder.model = PeftModel.from_pretrained(base, os.path.join(folder, LORA_ADAPTER_FOLDER), is_trainable=True)


# -- the model's folder ----------------------------------------------------------------------------
def write_plain_module_types(folder: Path) -> None:
    """Name `Transformer` for every module whose folder holds a MAGNET config; move other packages' modules out.

    modules.json then lists only sentence-transformers' own classes, so plain `SentenceTransformer(folder)`
    loads the encoder without trust_remote_code; magnet_st reads the rest back from magnet_modules.json.
    """
    modules_file = folder / MODULES_FILE
    modules, extra = [], []
    for entry in json.loads(modules_file.read_text()):
        if (folder / entry["path"] / MAGNET_CONFIG_FILE).is_file():
            entry["type"] = PLAIN_TRANSFORMER_TYPE
        (modules if entry["type"].startswith("sentence_transformers.") else extra).append(entry)
    modules_file.write_text(json.dumps(modules, indent=2))
    if extra:
        (folder / EXTRA_MODULES_FILE).write_text(json.dumps(extra, indent=2))


def is_saved_magnet_model(path: Path) -> bool:
    return (path / MODULES_FILE).is_file() and (path / MAGNET_CONFIG_FILE).is_file()


def load_modules(path: Path, decoder_class: type[Module], model_kwargs: dict[str, Any] | None = None) -> list[Module]:
    """The saved module list, the entry whose folder holds a MAGNET config rebuilt as `decoder_class`."""
    entries = json.loads((path / MODULES_FILE).read_text())
    if (path / EXTRA_MODULES_FILE).is_file():
        entries += json.loads((path / EXTRA_MODULES_FILE).read_text())
    modules = []
    for entry in sorted(entries, key=lambda entry: int(entry["idx"])):
        subfolder = entry["path"]
        if not (path / subfolder).is_dir():
            raise FileNotFoundError(
                f"{str(path / MODULES_FILE)!r} names module folder {subfolder!r}, which is missing."
            )
        if (path / subfolder / MAGNET_CONFIG_FILE).is_file():
            module = decoder_class.load(str(path), subfolder=subfolder, model_kwargs=model_kwargs)
        else:
            module = import_from_string(entry["type"]).load(str(path), subfolder=subfolder)
        modules.append(module)
    return modules


def saved_settings(path: Path) -> dict[str, Any]:
    """The model-level settings of a saved folder, as `SentenceTransformer(modules=...)` keywords."""
    settings = json.loads((path / SETTINGS_FILE).read_text())
    return {
        "prompts": settings.get("prompts") or {},
        "default_prompt_name": settings.get("default_prompt_name"),
        "similarity_fn_name": settings.get("similarity_fn_name"),
        "model_card_data": SentenceTransformerModelCardData(model_name=f"MAGNET {path.name}"),
    }


def append_magnet_card(model, folder: Path) -> None:
    """Add a MAGNET section to the model card sentence-transformers wrote (README.md), if any."""
    card = folder / "README.md"
    if not card.exists():
        return
    decoder = model.decoder
    pooling = next((module for module in model if isinstance(module, Pooling)), None)
    prompt = model.prompts.get(model.default_prompt_name or "", "")
    lines = [
        "",
        "## MAGNET",
        "",
        "This model was built with [magnet-st](https://github.com/magnet-st/magnet-st), an implementation of "
        "MAGNET (Khosla et al., *MAGNET: Augmenting Generative Decoders with Representation Learning and "
        "Infilling Capabilities*, ACL 2025, arXiv 2501.08648).",
        "",
        f"- Base model: `{decoder.base_model}` ({type(decoder.causal_lm).__name__})",
        f"- Attention when encoding: {decoder.attention_mode}",
        f"- Pooling: {pooling.pooling_mode if pooling else 'none'}"
        + (f" (include_prompt={pooling.include_prompt})" if pooling else ""),
        f"- Prompt (`{model.default_prompt_name}`): `{prompt}`" if prompt else "- Prompt: none",
        f"- EOS appended by the tokenizer: {decoder.append_eos}",
        f"- Max sequence length: {decoder.max_seq_length}",
        "",
        "It loads in plain sentence-transformers (`SentenceTransformer(path)`); `magnet_st.load_model(path)` "
        "also restores the LM head for `magnet_st.generate` and `magnet_st.infill`.",
        "",
    ]
    card.write_text(card.read_text(encoding="utf-8") + "\n".join(lines), encoding="utf-8")
