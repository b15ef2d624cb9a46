"""sentence-transformers modules of magnet-st."""

from magnet_st.modules.decoder import MagnetDecoder
from magnet_st.modules.token_head import TokenClassificationHead

__all__ = ["MagnetDecoder", "TokenClassificationHead"]
