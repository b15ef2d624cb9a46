"""Where local data sets live: `--data DIR`, else $MAGNET_ST_DATA, else ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "MAGNET_ST_DATA"
DEFAULT_DATA_DIR = Path("..") / "shared" / "datasets"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data root: an explicit path, else $MAGNET_ST_DATA, else ../shared/datasets (from the working folder)."""
    root = Path(path or os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {str(root)!r} does not exist; pass --data DIR or set ${DATA_ENV}.")
    return root


def dataset_file(root: str | os.PathLike | None, *parts: str) -> Path:
    """Path of one data file under the data root, or a FileNotFoundError that names it."""
    path = data_dir(root).joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"Missing data file {str(path)!r} (expected under the data folder).")
    return path
