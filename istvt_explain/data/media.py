"""Real face imagery for tests, demos and benchmarks, generated on the spot (nothing is downloaded).

The face is scikit-image's ``astronaut`` (``skimage.data.astronaut()``): NASA's portrait of
astronaut Eileen Collins, from the NASA Great Images database (https://flic.kr/p/r9qvLn).
Licence: public domain (a NASA photograph; scikit-image's docstring: "No known copyright
restrictions, released into the public domain").  We only crop, mirror, scale and move it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .video import VideoWriter

# The head-and-shoulders crop of astronaut.png we use (rows, columns), and the face box
# (x0, y0, x1, y1) that MTCNN finds in it: ground truth for tests.
_ASTRONAUT_CROP = (slice(10, 250), slice(110, 340))
_ASTRONAUT_FACE = np.array([66.0, 50.0, 156.0, 165.0])
# matplotlib's grace_hopper.jpg (public domain, U.S. Navy): never used to train the demo weights, so
# videos of it test them on a person they have not seen.
_HOPPER_CROP = (slice(20, 560), slice(60, 480))
_HOPPER_FACE = np.array([116.0, 98.0, 297.0, 317.0])
FACE_NAMES = ("astronaut", "astronaut-mirrored", "grace_hopper")


def face_image(name: str = "astronaut") -> np.ndarray:
    """A head-and-shoulders RGB ``uint8`` picture of a real face (public domain, see module doc).

    ``"astronaut-mirrored"`` is the astronaut flipped left-right: a second, different-looking face.
    ``"grace_hopper"``: matplotlib's portrait of Grace Hopper (public domain, U.S. Navy), a person the
    demo weights never saw.
    """
    from skimage import data

    if name not in FACE_NAMES:
        raise ValueError(f"unknown face picture {name!r}; choose one of {', '.join(FACE_NAMES)}")
    if name == "grace_hopper":
        import matplotlib
        from matplotlib import image as mpimg
        hopper = mpimg.imread(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg")
        return np.ascontiguousarray(hopper[_HOPPER_CROP][..., :3])
    picture = data.astronaut()[_ASTRONAUT_CROP]
    if name == "astronaut-mirrored":
        picture = picture[:, ::-1]
    return np.ascontiguousarray(picture)


def face_box(name: str = "astronaut") -> np.ndarray:
    """The face box (x0, y0, x1, y1) inside ``face_image(name)``."""
    if name == "grace_hopper":
        return _HOPPER_FACE.copy()
    box = _ASTRONAUT_FACE.copy()
    if name == "astronaut-mirrored":
        width = _ASTRONAUT_CROP[1].stop - _ASTRONAUT_CROP[1].start
        box[[0, 2]] = width - box[[2, 0]]
    return box


@dataclass
class FaceVideo:
    """What ``make_face_video`` wrote: ``boxes`` (frames, 4) where the face is (NaN when hidden)."""

    path: Path
    boxes: np.ndarray
    other_boxes: np.ndarray | None
    fps: float
    size: tuple[int, int]


def _background(width: int, height: int) -> np.ndarray:
    """A smooth coloured gradient with a little texture: no face-like structure."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 90 + 60 * x / max(width - 1, 1)
    g = 110 + 40 * y / max(height - 1, 1)
    b = 140 + 30 * np.sin(x / 23.0) * np.cos(y / 31.0)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, picture: np.ndarray, cx: float, cy: float, height: float):
    """Paste ``picture`` scaled to ``height`` pixels, centred at (cx, cy); return (x0, y0, scale)."""
    scale = height / picture.shape[0]
    w, h = max(2, round(picture.shape[1] * scale)), max(2, round(picture.shape[0] * scale))
    resized = cv2.resize(picture, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    H, W = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx1 > cx0 and cy1 > cy0:
        canvas[cy0:cy1, cx0:cx1] = resized[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return x0, y0, w / picture.shape[1]


def make_face_video(path: str | os.PathLike, *, frames: int = 24, size: tuple[int, int] = (320, 240),
                    fps: float = 25.0, face: str = "astronaut", motion: str = "pan-zoom",
                    face_height: float = 0.6, visible: np.ndarray | list[bool] | None = None,
                    second_face: bool = False, period: float = 4.0, crf: int = 23) -> FaceVideo:
    """Write a short H.264 video of a real face picture moving and scaling over a background.

    ``size`` is (width, height).  ``motion``: ``"still"``, ``"pan"`` (left-right), ``"zoom"`` or
    ``"pan-zoom"``.  ``face_height``: the picture's height as a fraction of the frame height.
    ``visible``: per frame, whether the face is shown (default: always).  ``second_face`` adds a
    smaller mirrored face on the right.  ``period``: seconds of one back-and-forth movement (the
    default moves a face a few pixels per frame, as people do).  Returns the true face box of every frame.
    """
    if motion not in ("still", "pan", "zoom", "pan-zoom"):
        raise ValueError(f"unknown motion {motion!r}")
    width, height = size
    picture, inner = face_image(face), face_box(face)
    other = face_image("astronaut-mirrored") if second_face else None
    shown = np.ones(frames, bool) if visible is None else np.asarray(visible, bool)
    if len(shown) != frames:
        raise ValueError(f"visible has {len(shown)} entries for {frames} frames")
    background = _background(width, height)
    boxes = np.full((frames, 4), np.nan)
    other_boxes = np.full((frames, 4), np.nan) if second_face else None
    with VideoWriter(path, fps, width, height, crf=crf) as writer:
        for t in range(frames):
            phase = t / fps / period
            frame = background.copy()
            cx = width * (0.35 + (0.2 * np.sin(2 * np.pi * phase) if "pan" in motion else 0.0))
            cy = height * (0.5 + (0.05 * np.cos(2 * np.pi * phase) if "pan" in motion else 0.0))
            pic_h = height * face_height * (1.0 + (0.2 * np.sin(np.pi * phase) if "zoom" in motion else 0.0))
            if second_face:
                ox, oy, oscale = _paste(frame, other, width * 0.82, height * 0.5, pic_h * 0.55)
                other_boxes[t] = face_box("astronaut-mirrored") * oscale + [ox, oy, ox, oy]
            if shown[t]:
                x0, y0, scale = _paste(frame, picture, cx, cy, pic_h)
                boxes[t] = inner * scale + [x0, y0, x0, y0]
            writer.write(frame)
    return FaceVideo(path=Path(path), boxes=boxes, other_boxes=other_boxes, fps=fps, size=(width, height))
