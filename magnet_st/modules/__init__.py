"""sentence-transformers modules of magnet-st."""

from magnet_st.modules.decoder import MagnetDecoder
from magnet_st.modules.token_head import TokenClassificationHead
from magnet_st.modules.word_pooling import WordPooling

__all__ = ["MagnetDecoder", "TokenClassificationHead", "WordPooling"]
