"""Seeded randomness that does not depend on, or disturb, the process's global random state.

Every seeded entry point draws from a random state made from its seed alone, so the same seed gives the
same result in one process (whatever ran before) and across processes; the caller's global state is
restored afterwards. Samples are seeded per example (`example_seed`), so they do not change with the
batch size.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_SEED_RANGE = 2**63


def check_seed(seed: object, argument: str = "seed", *, allow_none: bool = True) -> int | None:
    """`seed` as an int (or None when allowed), or a TypeError naming `argument`."""
    if seed is None and allow_none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"`{argument}` must be an integer{' or None' if allow_none else ''}, got {seed!r}.")
    return seed


def example_seed(seed: int, index: int) -> int:
    """The seed of example `index` of a call seeded with `seed` (independent of batching)."""
    return (seed * 1_000_003 + index) % _SEED_RANGE


@contextmanager
def seeded(seed: int | None, *, device: torch.device | str | None = None) -> Iterator[None]:
    """Run the block with torch's and Python's global random state seeded with `seed`, restored afterwards.

    None leaves the global state alone (an unseeded call). On a CUDA `device` its generator is forked too.
    """
    if seed is None:
        yield
        return
    device = torch.device(device) if device is not None else None
    cuda = [device] if device is not None and device.type == "cuda" else []
    python_state = random.getstate()
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed % _SEED_RANGE)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)


def example_generator(seed: int, index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator for example `index` of a call seeded with `seed`."""
    return torch.Generator(device=device).manual_seed(example_seed(seed, index))
