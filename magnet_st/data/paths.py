"""Where data files come from: the one resolver every reader in the package uses.

A data file is named by its path under a data root (e.g. ``("stsbenchmark", "sts-dev.csv")``) and is looked
for, in order:

1. the local data folder: an explicit folder (``--data DIR`` / ``data_dir=...``), else ``$MAGNET_ST_DATA``,
   else ``../shared/datasets`` (relative to the working folder); the first one given is the only one read,
2. the sample packaged with magnet-st, for callers that ask for it (the quick start: its own inputs only;
   evaluations never fall back to a subset without saying so),
3. the public Hub copy (``magnet_st.data.hub.HUB_COPIES``), converted once into the project's own file layout
   in the cache folder.

When none has it, a `DataNotFoundError` lists every place it looked, the Hub id included.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "MAGNET_ST_DATA"
DEFAULT_DATA_DIR = Path("..") / "shared" / "datasets"
SAMPLE_DIR = Path(__file__).parent / "sample"


class DataNotFoundError(FileNotFoundError):
    """No data root, packaged sample or Hub copy has the file; the message lists every place looked at."""


def local_root(path: str | os.PathLike | None = None) -> tuple[str, Path]:
    """The local data folder and where it came from: an explicit path, else $MAGNET_ST_DATA, else the default.

    The first one given wins, so a folder named on purpose is never mixed with another.
    """
    if path is not None:
        return "explicit folder", Path(path).expanduser()
    if os.environ.get(DATA_ENV):
        return f"${DATA_ENV}", Path(os.environ[DATA_ENV]).expanduser()
    return "default folder", DEFAULT_DATA_DIR


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The local data folder (see `local_root`); for readers that walk a whole folder, like the corpus builder."""
    origin, root = local_root(path)
    if not root.is_dir():
        raise DataNotFoundError(
            f"Data folder {str(root)!r} ({origin}) does not exist; pass --data DIR or set ${DATA_ENV}."
        )
    return root


def dataset_file(root: str | os.PathLike | None, *parts: str, sample: bool = False, hub: bool = True) -> Path:
    """Path of one data file: the first local root that has it, else the packaged sample, else the Hub copy.

    Args:
        root: An explicit data folder, or None for $MAGNET_ST_DATA / ../shared/datasets.
        parts: The file's path under a data root, e.g. ``("stsbenchmark", "sts-dev.csv")``.
        sample: Try the packaged sample after the local folders (it holds the quick start's inputs only).
        hub: Fall back to the public Hub copy (a download, converted once into the cache folder).
    """
    if not parts:
        raise ValueError("`parts` must name a file under the data root, got nothing.")
    looked = []
    roots = [local_root(root)] + ([("packaged sample", SAMPLE_DIR)] if sample else [])
    for origin, folder in roots:
        path = folder.joinpath(*parts)
        if path.is_file():
            return path
        looked.append(f"{origin}: {str(path)!r}")
    if hub:
        from magnet_st.data.hub import HubUnavailable, hub_file

        try:
            return hub_file(parts)
        except HubUnavailable as error:
            looked.append(str(error))
    else:
        looked.append("Hub: not tried")
    places = "\n  - ".join(looked)
    raise DataNotFoundError(
        f"Data file {'/'.join(parts)!r} not found. Looked at:\n  - {places}\n"
        f"Pass --data DIR (or set ${DATA_ENV}) to a folder that has it"
        + (", or go online for the Hub copy." if hub else ".")
    )


def is_packaged_sample(path: str | os.PathLike) -> bool:
    """Whether `path` lies in the sample shipped with magnet-st."""
    return Path(path).resolve().is_relative_to(SAMPLE_DIR.resolve())
