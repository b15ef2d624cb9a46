"""magnet-st: MAGNET (arXiv 2501.08648) for sentence-transformers.

One set of decoder weights for sentence embeddings, token representations, infilling and
left-to-right generation; the only architectural change is the attention mask.

    model = magnet_st.load_model("smollm2-135m")      # or a decoder folder, or a saved MAGNET model
    model.encode(texts)                                # sentence embeddings
    magnet_st.infill(model, "I was [BLANK] today.")    # hybrid attention
    magnet_st.generate(model, "The capital of France is")
    magnet_st.train(magnet_st.TrainConfig(data="texts.txt", output_dir="magnet-model"))

Losses live in `magnet_st.losses`, token tagging in `magnet_st.tagging`.

The names below are imported on first access (PEP 562), for start-up time: `import magnet_st` and the
`magnet-st` command's argument parsing do not import torch, transformers or sentence-transformers.
"""

import importlib
import typing

if typing.TYPE_CHECKING:  # type checkers and IDEs see the eager imports
    from magnet_st.attention import AttentionMode
    from magnet_st.generation import generate, infill
    from magnet_st.model import MagnetSentenceTransformer, load_model
    from magnet_st.modules import MagnetDecoder, TokenClassificationHead, WordPooling
    from magnet_st.training import TrainConfig, train

__version__ = "0.1.0"

# Public name -> the module it is imported from on first access.
_LAZY_NAMES = {
    "AttentionMode": "magnet_st.attention",
    "MagnetDecoder": "magnet_st.modules",
    "MagnetSentenceTransformer": "magnet_st.model",
    "TokenClassificationHead": "magnet_st.modules",
    "TrainConfig": "magnet_st.training",
    "WordPooling": "magnet_st.modules",
    "generate": "magnet_st.generation",
    "infill": "magnet_st.generation",
    "load_model": "magnet_st.model",
    "train": "magnet_st.training",
}

__all__ = [
    "AttentionMode",
    "MagnetDecoder",
    "MagnetSentenceTransformer",
    "TokenClassificationHead",
    "TrainConfig",
    "WordPooling",
    "__version__",
    "generate",
    "infill",
    "load_model",
    "train",
]


def __getattr__(name: str) -> typing.Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
