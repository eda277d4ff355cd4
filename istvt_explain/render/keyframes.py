"""Key frames: the most suspicious frames of the explained video, saved as PNG pictures.

For reports and tickets, where a video cannot be attached; the frames are the composed ones
(heatmap, box and timeline), so each picture explains itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError


def keyframe_name(index: int, rank: int) -> str:
    """``01_frame000123.png``: sorted by rank; the frame number counts from 0, as the picture's own
    counter ("frame 123/...") and the JSON report do."""
    return f"{rank:02d}_frame{index:06d}.png"


def save_keyframes(frames: Mapping[int, np.ndarray], order: list[int], folder: str | Path) -> list[Path]:
    """Write ``frames[i]`` for i in ``order`` (most suspicious first) into ``folder``; return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, index in enumerate(order, start=1):
        if index not in frames:
            continue
        path = folder / keyframe_name(index, rank)
        ok, data = cv2.imencode(".png", cv2.cvtColor(frames[index], cv2.COLOR_RGB2BGR))
        if not ok:
            raise InputError(f"{path}: could not encode the key frame as PNG")
        path.write_bytes(data.tobytes())
        paths.append(path)
    return paths
