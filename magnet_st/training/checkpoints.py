"""Checkpoints that are whole or absent: staged writes, and resuming from the newest complete one.

The trainer writes checkpoint N into `.tmp-checkpoint-N/checkpoint-N` and renames it to `checkpoint-N` once
every file is in, so a run killed mid-write leaves its earlier checkpoints as the newest ones. Resuming also
checks what it finds (checkpoints written by other tools, or by older versions, were not staged).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from magnet_st.folders import MODULES_FILE

logger = logging.getLogger(__name__)

TRAINER_STATE_FILE = "trainer_state.json"
STAGING_PREFIX = ".tmp-"
_CHECKPOINT = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def staging_run_dir(run_dir: str | Path, step: int) -> Path:
    """The folder the trainer is pointed at while it writes checkpoint `step` (its checkpoint-N lands inside)."""
    return Path(run_dir) / f"{STAGING_PREFIX}{PREFIX_CHECKPOINT_DIR}-{step}"


def publish_checkpoint(written: Path, final: Path, state) -> None:
    """Rename a fully written checkpoint to its final name (`state`: the trainer's, whose paths must follow)."""
    if state.best_model_checkpoint == str(written):
        state.best_model_checkpoint = str(final)
        state.save_to_json(str(written / TRAINER_STATE_FILE))
    replaced = None
    if final.exists():  # the same step written by an earlier run that this one resumed from before it
        replaced = written.parent / f"old-{final.name}"
        final.rename(replaced)
    written.rename(final)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)
    written.parent.rmdir()


def drop_unfinished_writes(run_dir: str | Path) -> list[Path]:
    """Remove the staging folders of checkpoint writes that a killed run left in `run_dir`."""
    leftovers = sorted(Path(run_dir).glob(f"{STAGING_PREFIX}{PREFIX_CHECKPOINT_DIR}-*"))
    for leftover in leftovers:
        shutil.rmtree(leftover, ignore_errors=True)
    return leftovers


def why_incomplete(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed from, or None when it is complete."""
    step = int(_CHECKPOINT.match(checkpoint.name)[1])
    try:
        state = json.loads((checkpoint / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except OSError:
        return f"no {TRAINER_STATE_FILE}"
    except ValueError:
        return f"a truncated {TRAINER_STATE_FILE}"
    if state.get("global_step") != step:
        return f"{TRAINER_STATE_FILE} is for step {state.get('global_step')}"
    if not (checkpoint / MODULES_FILE).is_file():
        return "no saved model"
    return None


def newest_complete_checkpoint(run_dir: str | Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest complete checkpoint in `run_dir` (None if there is none) and what was skipped, with why."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return None, []
    skipped = [(path, "a write killed before it finished") for path in sorted(run_dir.glob(f"{STAGING_PREFIX}*"))]
    found = [(int(match[1]), path) for path in run_dir.iterdir() if (match := _CHECKPOINT.match(path.name))]
    for _, path in sorted(found, reverse=True):
        reason = why_incomplete(path) if path.is_dir() else "not a folder"
        if reason is None:
            return path, skipped
        skipped.append((path, reason))
    return None, skipped


def resume_checkpoint(run_dir: str | Path) -> Path:
    """The checkpoint to resume from, logging which was taken and which were skipped."""
    chosen, skipped = newest_complete_checkpoint(run_dir)
    for path, reason in skipped:
        logger.warning("Skipping %s: %s", path, reason)
    if chosen is None:
        raise FileNotFoundError(f"Found no complete checkpoint to resume from in {str(run_dir)!r}.")
    logger.warning("Resuming from %s", chosen)
    return chosen
