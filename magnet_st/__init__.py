"""magnet-st: MAGNET (arXiv 2501.08648) for sentence-transformers.

One set of decoder weights for sentence embeddings, token representations, infilling and
left-to-right generation; the only architectural change is the attention mask.
"""

from magnet_st.attention import AttentionMode
from magnet_st.base_models import DEFAULT_BASE_MODEL, EMBEDDED_MODELS
from magnet_st.generation import BLANK, BlankFill, InfillCandidate, InfillResult, generate, infill
from magnet_st.losses import MagnetLoss, MNTPLoss, MSGLoss, SSCLLoss
from magnet_st.model import SENTENCE_PROMPT, MagnetSentenceTransformer, load_model
from magnet_st.modules import MagnetDecoder

__version__ = "0.1.0"

__all__ = [
    "BLANK",
    "BlankFill",
    "InfillCandidate",
    "InfillResult",
    "MagnetLoss",
    "MNTPLoss",
    "MSGLoss",
    "SSCLLoss",
    "generate",
    "infill",
    "DEFAULT_BASE_MODEL",
    "EMBEDDED_MODELS",
    "SENTENCE_PROMPT",
    "AttentionMode",
    "MagnetDecoder",
    "MagnetSentenceTransformer",
    "load_model",
]
