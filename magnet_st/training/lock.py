"""`RunLock`: one training run at a time per output folder.

The lock is a small file beside the folder (`.NAME.lock`) holding the owner's pid, machine and start time,
held with an OS file lock (`flock`) for as long as the run lasts. The OS frees that lock when the process
ends in any way, kill -9 included, so a lock file left by a dead run is stale and simply taken over.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from magnet_st.folders import owner_gone, this_host

try:
    import fcntl
except ImportError:  # Windows: no flock; the recorded pid tells whether the owner still runs
    fcntl = None

logger = logging.getLogger(__name__)


class OutputInUseError(FileExistsError):
    """Another live run holds the lock of this output folder."""


def lock_file(folder: str | os.PathLike) -> Path:
    """Where the lock of `folder` lives: a hidden file beside it, so the folder itself stays the run's output."""
    folder = Path(folder).expanduser().absolute()
    return folder.parent / f".{folder.name}.lock"


def _describe(owner: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {started}: {owner.get('command', '?')}"


class RunLock:
    """Exclusive lock of a training output folder, a context manager (also `acquire()` / `release()`).

    Args:
        folder: The output folder to lock (it need not exist yet).
        purpose: What the lock is for, named in the refusal a second run gets.
    """

    def __init__(self, folder: str | os.PathLike, purpose: str = "training") -> None:
        self.folder = Path(folder).expanduser()
        self.path = lock_file(folder)
        self.purpose = purpose
        self._file = None

    def owner(self) -> dict[str, Any] | None:
        """The recorded owner of the lock file (possibly a dead run's), or None."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path, "a+", encoding="utf-8")
            if not self._lock(handle):
                handle.close()
                owner = self.owner() or {}
                raise OutputInUseError(
                    f"{str(self.folder)!r} is in use by another {self.purpose} run ({_describe(owner)}); wait for it "
                    f"to finish or choose another output. If that run is gone, delete {str(self.path)!r}."
                )
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
            handle.close()  # the file was released and removed while we waited: lock the new one
        stale = self.owner()
        if stale and stale.get("pid") != os.getpid():
            logger.warning("Taking over the stale lock %s of a run that is gone (%s)", self.path, _describe(stale))
        handle.seek(0)
        handle.truncate()
        record = {"pid": os.getpid(), "host": this_host(), "started": time.time(), "command": " ".join(sys.argv)}
        handle.write(json.dumps(record))
        handle.flush()
        self._file = handle
        return self

    def _lock(self, handle) -> bool:
        if fcntl is None:
            owner = self.owner()
            return not owner or owner_gone(int(owner.get("pid", 0)), str(owner.get("host", "")))
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self._file.close()  # closing frees the flock
        self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
