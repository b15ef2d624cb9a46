"""MAGNET's objectives as sentence-transformers losses."""

from magnet_st.losses.magnet import (
    OBJECTIVES,
    MagnetLoss,
    MNTPLoss,
    MSGLoss,
    SSCLLoss,
    next_token_loss,
    objective_weights,
)

__all__ = ["OBJECTIVES", "MNTPLoss", "MSGLoss", "MagnetLoss", "SSCLLoss", "next_token_loss", "objective_weights"]
