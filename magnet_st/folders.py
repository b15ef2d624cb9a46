"""Writing folders so that nothing is lost: staged writes, the files a model save owns, leftovers of killed writes.

Every write goes into a hidden staging sibling of its target first, named after the writing process
(`.NAME.saving-PID-HOST-XXXXXXXX`), and reaches the target only once complete, by renames:

- a new or empty target: the staging folder is renamed onto it (one rename);
- `atomic_folder` (a folder magnet_st owns whole, e.g. a converted base model): the old folder is renamed
  aside (`.NAME.old-...`) and the staging folder onto the target;
- `model_folder` (a model save): the target's model files are moved aside (`.NAME.swap-...`), `modules.json`
  first, and the new ones moved in, `modules.json` last, so the folder is a loadable model only when whole.
  Files that are not the model's are never moved, replaced or deleted.

The next write into the same parent removes the leftovers of writers that were killed (their process is gone):
staging folders are dropped, and what an interrupted rename step had moved aside is put back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path

logger = logging.getLogger(__name__)

MODULES_FILE = "modules.json"
# Modules of other packages (a tagger's word pooling and head), kept out of modules.json: sentence-transformers
# imports a class outside its own namespace only with trust_remote_code, so they would stop a plain load.
EXTRA_MODULES_FILE = "magnet_modules.json"
STAGING, BACKUP, SWAP = "saving", "old", "swap"
_LEFTOVER = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>saving|old|swap)-(?P<pid>\d+)-(?P<host>[A-Za-z0-9._]+)-[a-z0-9_]{8}$"
)
# Top-level names a sentence-transformers / transformers / magnet_st save writes (the root module's checkpoint,
# tokenizer, settings, card, exports); with the module folders its modules.json names, what a save owns.
MODEL_FILE_PATTERNS = (
    MODULES_FILE,
    EXTRA_MODULES_FILE,
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "magnet_config.json",
    "README.md",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model-*-of-*.bin",
    "pytorch_model.bin.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "lora_adapter",
    "onnx",
    "openvino",
)


def files_digest(paths: list[Path]) -> str:
    """A short SHA-256 of the files' bytes, in the order given: names a build of those exact files."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


# -- who wrote a leftover --------------------------------------------------------------------------
def this_host() -> str:
    """This machine's name, reduced to the characters a staging folder's name carries."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "localhost"


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this machine still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def owner_gone(pid: int, host: str) -> bool:
    """Whether the writer `pid` on `host` is known to be dead (another machine's processes cannot be checked)."""
    return host == this_host() and not process_alive(pid)


def _sibling(target: Path, kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-{os.getpid()}-{this_host()}-", dir=target.parent))


def clean_leftovers(parent: Path) -> list[Path]:
    """Remove what killed writers left in `parent`, putting back first what they had moved aside. Returns the removed."""
    if not parent.is_dir():
        return []
    found = []
    for entry in parent.iterdir():
        match = _LEFTOVER.match(entry.name)
        if match and entry.is_dir() and owner_gone(int(match["pid"]), match["host"]):
            found.append((match["kind"] == STAGING, entry, parent / match["name"], match["kind"]))
    for _, entry, target, kind in sorted(found):  # moved-aside folders before staging folders
        logger.warning("Cleaning up %s, left by a killed write into %s", entry, target)
        if kind == BACKUP and not target.exists():
            entry.rename(target)  # killed between the two renames: the old folder is the only whole one
            continue
        if kind == SWAP and not (target / MODULES_FILE).exists():
            _move_entries(entry, target, last=MODULES_FILE)  # killed mid-swap: the earlier model goes back
        shutil.rmtree(entry, ignore_errors=True)
    return [entry for _, entry, _, _ in found]


def _move_entries(source: Path, target: Path, *, last: str) -> None:
    """Move every entry of `source` into `target`, replacing same-named ones; `last` goes last."""
    names = sorted(os.listdir(source), key=lambda name: (name == last, name))
    for name in names:
        destination = target / name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        os.replace(source / name, destination)


# -- whole folders ---------------------------------------------------------------------------------
def expand_folder(path: str | os.PathLike, argument: str = "path") -> Path:
    """`path` with `~` expanded; a clear error when it names an existing file instead of a folder."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"`{argument}` {str(path)!r} is a file, not a folder.")
    return folder


def results_folder(path: str | os.PathLike, argument: str = "out_dir") -> Path:
    """The folder a report will be written to, checked before any work; a saved model's folder is refused.

    Reports (results, plots, comparisons) beside a model's files would ship with it on the next upload. The
    folder is not created here, so a run refused later for another reason leaves nothing behind.
    """
    folder = expand_folder(path, argument)
    if folder.is_dir() and saved_model_files(folder) is not None:
        raise FileExistsError(
            f"`{argument}` {str(path)!r} holds a saved model; write the report to a folder of its own."
        )
    return folder


@contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; on success it replaces `target` whole, on error it is dropped."""
    target = expand_folder(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(target.parent)
    staging = _sibling(target, STAGING)
    try:
        yield staging
        if target.exists():
            backup = _sibling(target, BACKUP)
            backup.rmdir()
            target.rename(backup)
            staging.rename(target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- model saves -----------------------------------------------------------------------------------
def saved_model_files(folder: Path) -> set[str] | None:
    """The entries of `folder` that an earlier sentence-transformers save owns; None when it holds no save."""
    try:
        modules = json.loads((folder / MODULES_FILE).read_text(encoding="utf-8"))
        if (folder / EXTRA_MODULES_FILE).is_file():
            modules = modules + json.loads((folder / EXTRA_MODULES_FILE).read_text(encoding="utf-8"))
        module_folders = {Path(entry["path"]).parts[0] for entry in modules if entry.get("path")}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    names = set(os.listdir(folder))
    patterns = (*MODEL_FILE_PATTERNS, *(name for name in module_folders if name not in ("..", ".", "/")))
    return {name for name in names if any(fnmatch(name, pattern) for pattern in patterns)}


def check_model_target(target: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder that holds no earlier save, unless `overwrite`."""
    if overwrite or not target.is_dir() or saved_model_files(target) is not None:
        return
    others = sorted(os.listdir(target))
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise FileExistsError(
            f"{str(target)!r} is not empty and holds no saved model (it holds {shown}); saving there would mix the "
            "model's files with yours. Save into a new or empty folder, or pass overwrite=True to write the "
            "model's files beside them (same-named files are replaced, nothing else is touched)."
        )


@contextmanager
def model_folder(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder for a model save into `target`; once written, it replaces only the model's files there.

    `target` may be new, empty, or an earlier save (whose own files are replaced, other files kept); any other
    non-empty folder is refused unless `overwrite` (then same-named files are replaced, nothing else touched).
    """
    target = expand_folder(target)
    clean_leftovers(target.parent)  # first: a killed swap is undone before the target is judged
    check_model_target(target, overwrite)  # before the slow write
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, STAGING)
    try:
        yield staging
        check_model_target(target, overwrite)  # it may have changed while the model was written
        _install(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _install(staging: Path, target: Path) -> None:
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        staging.rename(target)
        return
    replaced = (saved_model_files(target) or set()) | set(os.listdir(staging))
    swap = _sibling(target, SWAP)
    for name in sorted(replaced, key=lambda name: (name != MODULES_FILE, name)):  # no longer a model from here
        if os.path.lexists(target / name):
            os.replace(target / name, swap / name)
    _move_entries(staging, target, last=MODULES_FILE)  # a model again once whole
    shutil.rmtree(swap, ignore_errors=True)
