"""What the `magnet-st` subcommands print besides their results: progress on stderr, no known library noise."""

from __future__ import annotations

import sys
import warnings

# Known warnings from the libraries under a training or encoding run that say nothing the user can act on.
# (category, message regex); each is matched narrowly so that any other warning still shows.
LIBRARY_NOISE: tuple[tuple[type[Warning], str], ...] = (
    # peft reads transformers' deprecated `is_gradient_checkpointing` whenever it wraps a model in LoRA.
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
)


def status(message: str) -> None:
    """One progress line on stderr, shown at once (stdout stays the command's parseable output)."""
    print(message, file=sys.stderr, flush=True)


def silence_library_noise() -> None:
    """Filter the `LIBRARY_NOISE` warnings for this process (the `magnet-st` command only, never on import)."""
    for category, message in LIBRARY_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
