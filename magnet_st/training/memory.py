"""Keep a CPU training run's resident memory close to what it actually uses."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
LARGE_ALLOCATION_BYTES = 1 << 20


def return_freed_memory_eagerly() -> bool:
    """Serve large allocations with their own pages and hand freed pages back to the system (glibc only).

    glibc raises its mmap threshold each time a large block is freed, so activation-sized tensors end up
    in heap arenas whose freed pages stay resident: the process keeps the high-water mark of every pass.
    A fixed threshold releases each tensor's pages when it is freed. Process-wide; returns False where the
    C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    done = (
        mallopt(M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES) == 1
        and mallopt(M_TRIM_THRESHOLD, LARGE_ALLOCATION_BYTES) == 1
    )
    if not done:
        logger.debug("mallopt refused the allocation thresholds; resident memory may stay at its high-water mark.")
    return done
