"""MTEB registration for a saved MAGNET folder: a `mteb.ModelMeta` filled from the folder, and its loader.

`magnet_model_meta(folder)` reads the folder's files (no model is loaded) for the parameter count, embedding
dimension, max tokens, similarity, base model and training data; `MagnetMtebEncoder` is the loader it names:
it loads the folder with `magnet_st.load_model` and encodes each task with MAGNET's instruction for the task's
type (the instruction the model was trained with, unless overridden per task type or task name).
"""

from __future__ import annotations

import datetime
import json
import os
import struct
from pathlib import Path
from typing import Any

from mteb.models.abs_encoder import AbsEncoder

from magnet_st.citation import MAGNET_ARXIV, MAGNET_CITATION
from magnet_st.folders import files_digest

# Embedded base models -> (Hub id, licence) for `adapted_from` and `license`.
EMBEDDED_BASES = {"smollm2-135m": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0")}
TEXT_TASK_TYPES = (
    "STS",
    "Classification",
    "MultilabelClassification",
    "PairClassification",
    "Clustering",
    "Retrieval",
    "Reranking",
    "Summarization",
    "BitextMining",
)


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _safetensors_sizes(folder: Path) -> tuple[int, int]:
    """(parameters, bytes) summed over the folder's safetensors headers, without reading the weights."""
    parameters = size = 0
    for path in sorted(folder.glob("*.safetensors")):
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in tensor["shape"]:
                count *= dim
            parameters += count
            size += tensor["data_offsets"][1] - tensor["data_offsets"][0]
    return parameters, size


def default_instructions(prompt: str) -> dict[str, str]:
    """Task type -> instruction: MAGNET trains one instruction, so every text task type gets it."""
    return {task_type: prompt for task_type in TEXT_TASK_TYPES}


def magnet_model_meta(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    revision: str | None = None,
    license: str | None = None,
    instructions: dict[str, str] | None = None,
    languages: list[str] | None = None,
):
    """A `mteb.ModelMeta` for a saved MAGNET folder, its loader `MagnetMtebEncoder` included.

    Args:
        path: A folder written by `MagnetSentenceTransformer.save` (or `magnet-st train` / `quickstart`).
        name: "organisation/model" (mteb requires the slash); default "magnet-st/<folder name>".
        revision: Default: the first 12 hex digits of the weights' SHA-256.
        license: Default: the embedded base model's licence, else None.
        instructions: Task type or task name -> instruction, over MAGNET's own instruction for every type.
        languages: ISO language-script codes; default ["eng-Latn"].
    """
    from mteb.models.model_meta import ModelMeta

    folder = Path(path)
    magnet = _json(folder / "magnet_config.json")
    if not magnet:
        raise FileNotFoundError(f"`path` {str(folder)!r} is not a saved MAGNET folder (no magnet_config.json).")
    settings = _json(folder / "config_sentence_transformers.json")
    pooling = _json(folder / "1_Pooling" / "config.json")
    config = _json(folder / "config.json")
    tokenizer = _json(folder / "tokenizer_config.json")
    base = magnet.get("base_model")
    adapted_from, base_license = EMBEDDED_BASES.get(base, (base, None))
    parameters, size = _safetensors_sizes(folder)
    training = _json(folder / "training_log.json")
    weights = sorted(folder.glob("*.safetensors"))
    released = datetime.date.fromtimestamp(weights[0].stat().st_mtime) if weights else None
    return ModelMeta(
        loader=MagnetMtebEncoder,
        loader_kwargs={"model_path": str(folder.resolve()), "instructions": instructions},
        name=name or f"magnet-st/{folder.name}",
        revision=revision or (files_digest(sorted(folder.glob("*.safetensors"))) if weights else None),
        release_date=released.isoformat() if released else None,
        languages=languages or ["eng-Latn"],
        n_parameters=parameters or None,
        memory_usage_mb=round(size / 2**20, 1) if size else None,
        max_tokens=tokenizer.get("model_max_length") or config.get("max_position_embeddings"),
        embed_dim=pooling.get("embedding_dimension") or config.get("hidden_size"),
        license=license or base_license,
        open_weights=True,
        public_training_code=None,
        # Unlabelled text only: no MTEB task's data was trained on (an empty set marks the model zero-shot).
        public_training_data=Path(training["config"]["data"]).name if training.get("config") else None,
        training_datasets=set() if training else None,
        framework=["Sentence Transformers", "PyTorch", "Transformers", "safetensors"],
        reference=MAGNET_ARXIV,
        similarity_fn_name=settings.get("similarity_fn_name") or "cosine",
        use_instructions=True,
        adapted_from=adapted_from,
        citation=MAGNET_CITATION,
        modalities=["text"],
        model_type=["dense"],
    )


class MagnetMtebEncoder(AbsEncoder):
    """mteb loader for a MAGNET folder: `magnet_st.load_model` plus MAGNET's instruction per task type.

    The instruction for a task is looked up by task name, then task type, in `instructions`; MAGNET's own
    instruction (the folder's default prompt) applies to every type not listed. Queries and documents get the
    same instruction: MAGNET was trained with one, symmetric instruction.
    """

    def __init__(
        self,
        model_name: str,
        revision: str | None = None,
        *,
        model_path: str | None = None,
        instructions: dict[str, str] | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        from magnet_st.model import load_model

        self.model = load_model(model_path or model_name, device=device, **kwargs)
        self.model.eval()
        own = self.model.prompts.get(self.model.default_prompt_name or "", "")
        self.instructions = {**default_instructions(own), **(instructions or {})}
        self.default_instruction = own

    def instruction_for(self, task_metadata) -> str:
        """The instruction for a task: by task name, else by task type, else MAGNET's own."""
        for key in (task_metadata.name, task_metadata.type):
            if key in self.instructions:
                return self.instructions[key]
        return self.default_instruction

    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str, prompt_type=None, **kwargs: Any):
        sentences = [text for batch in inputs for text in batch["text"]]
        return self.model.encode(sentences, prompt=self.instruction_for(task_metadata), **kwargs)
