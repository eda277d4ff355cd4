"""Data-set readers (FF++, Celeb-DF v2, DFDC, a plain folder), and datasets over the preprocess cache and
over real material paired with pseudo-fakes.

Readers yield ``VideoEntry`` objects; ``read_dataset(name, root, **options)`` picks one by name.  The
readers load nothing heavy; the torch datasets (``cached``, ``pseudofake``) resolve on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import lazy_loader

from .celebdf import read_celebdf
from .dfdc import read_dfdc
from .entry import FAKE, REAL, VIDEO_SUFFIXES, VideoEntry  # noqa: F401  (public)
from .ffpp import read_ffpp
from .folder import read_folder

READERS: dict[str, Callable[..., Iterator[VideoEntry]]] = {
    "ffpp": read_ffpp, "celebdf": read_celebdf, "dfdc": read_dfdc, "folder": read_folder,
}


def read_dataset(name: str, root: str | Path, **options) -> list[VideoEntry]:
    """All entries of the data set ``name`` (one of ``READERS``) found under ``root``."""
    if name not in READERS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(READERS)}")
    return list(READERS[name](root, **options))


__getattr__, __dir__, _lazy = lazy_loader.attach(
    __name__,
    submodules=["cached", "pseudofake"],
    submod_attrs={
        "cached": ["CachedClipDataset", "PseudoFakeClips"],
        "pseudofake": ["CachedRealSource", "MaterialClipSource", "PictureClipSource", "PseudoFakeDataset"],
    },
)
__all__ = sorted({*_lazy, "FAKE", "READERS", "REAL", "VIDEO_SUFFIXES", "VideoEntry", "read_celebdf", "read_dataset",
                  "read_dfdc", "read_ffpp", "read_folder"})
