"""magnet-st: MAGNET (arXiv 2501.08648) for sentence-transformers.

One set of decoder weights for sentence embeddings, token representations, infilling and
left-to-right generation; the only architectural change is the attention mask.
"""

from magnet_st.attention import AttentionMode
from magnet_st.base_models import DEFAULT_BASE_MODEL, EMBEDDED_MODELS
from magnet_st.model import SENTENCE_PROMPT, MagnetSentenceTransformer, load_model
from magnet_st.modules import MagnetDecoder

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_MODEL",
    "EMBEDDED_MODELS",
    "SENTENCE_PROMPT",
    "AttentionMode",
    "MagnetDecoder",
    "MagnetSentenceTransformer",
    "load_model",
]
