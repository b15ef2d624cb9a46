"""magnet-st: MAGNET (arXiv 2501.08648) for sentence-transformers.

One set of decoder weights for sentence embeddings, token representations, infilling and
left-to-right generation; the only architectural change is the attention mask.

    model = magnet_st.load_model("smollm2-135m")      # or a decoder folder, or a saved MAGNET model
    model.encode(texts)                                # sentence embeddings
    magnet_st.infill(model, "I was [BLANK] today.")    # hybrid attention
    magnet_st.generate(model, "The capital of France is")
    magnet_st.train(magnet_st.TrainConfig(data="texts.txt", output_dir="magnet-model"))

Losses live in `magnet_st.losses`, token tagging in `magnet_st.tagging`.
"""

from magnet_st.attention import AttentionMode
from magnet_st.generation import generate, infill
from magnet_st.model import MagnetSentenceTransformer, load_model
from magnet_st.modules import MagnetDecoder, TokenClassificationHead, WordPooling
from magnet_st.training import TrainConfig, train

__version__ = "0.1.0"

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
