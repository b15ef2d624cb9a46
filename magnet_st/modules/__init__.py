"""sentence-transformers modules of magnet-st."""

from magnet_st.modules.decoder import MagnetDecoder

__all__ = ["MagnetDecoder"]
