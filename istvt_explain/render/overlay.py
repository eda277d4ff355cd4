"""Heatmap overlays on full video frames: colour map, blend through the crop box, face box.

Everything here is plain numpy/OpenCV on RGB ``uint8`` frames, cheap enough to run on every
frame of a video (matplotlib draws nothing per frame; it only lends its colour maps).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..errors import InputError

FAKE_COLOR = (230, 50, 50)   # RGB: boxes and curves of frames judged fake
REAL_COLOR = (40, 190, 90)   # RGB: ... judged real


@dataclass(frozen=True)
class OverlayStyle:
    """How a heatmap is drawn on a frame.

    Attributes:
        colormap: any matplotlib colour map name ("jet", "inferno", "turbo", ...).
        alpha: opacity of the heatmap where the map is 1 (0 = invisible, 1 = opaque).
        gamma: the map is raised to this power before blending; < 1 shows weak relevance more.
        floor: the opacity where the map is 0, as a fraction of ``alpha``: a faint tint over the
            whole crop shows where the model looked even where the map is low.
        box: draw the face box.
        box_thickness: line width of the face box, in pixels.
    """

    colormap: str = "jet"
    alpha: float = 0.5
    gamma: float = 1.0
    floor: float = 0.15
    box: bool = True
    box_thickness: int = 2

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.gamma <= 0:
            raise InputError(f"gamma must be positive, got {self.gamma}")
        colormap_lut(self.colormap)  # raises InputError for an unknown name


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colour map."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise InputError(f"unknown colour map {name!r} (any matplotlib name, e.g. jet, inferno, turbo)") from None
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(values: np.ndarray, colormap: str = "jet") -> np.ndarray:
    """Map values in [0, 1] (any shape) to RGB ``uint8`` (shape + (3,))."""
    index = (np.nan_to_num(values, nan=0.0).clip(0.0, 1.0) * 255).round().astype(np.uint8)
    return colormap_lut(colormap)[index]


def blend_heatmap(frame: np.ndarray, token_map: np.ndarray, box: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """Blend a token-level map, upsampled to the crop box, onto ``frame`` in place; return ``frame``.

    The map is stretched over the square crop box the model saw (so each token lands on the
    pixels it came from) and clipped to the frame where the box overhangs an edge.
    """
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    bw, bh = x1 - x0, y1 - y0
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if bw < 1 or bh < 1 or cx0 >= cx1 or cy0 >= cy1:
        return frame
    up = cv2.resize(np.nan_to_num(token_map.astype(np.float32)), (bw, bh), interpolation=cv2.INTER_LINEAR)
    up = up[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].clip(0.0, 1.0)
    if style.gamma != 1.0:
        up = up ** style.gamma
    weight = (style.alpha * (style.floor + (1.0 - style.floor) * up))[..., None]
    region = frame[cy0:cy1, cx0:cx1].astype(np.float32)
    color = colorize(up, style.colormap).astype(np.float32)
    frame[cy0:cy1, cx0:cx1] = (region + weight * (color - region)).round().astype(np.uint8)
    return frame


def draw_box(frame: np.ndarray, box: np.ndarray, color: tuple[int, int, int], thickness: int = 2) -> np.ndarray:
    """Draw the rectangle (x0, y0, x1, y1) on ``frame`` in place (clipped by OpenCV); return ``frame``."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(frame, (x0, y0), (x1 - 1, y1 - 1), color, thickness, lineType=cv2.LINE_AA)
    return frame


def verdict_color(probability: float, threshold: float = 0.5) -> tuple[int, int, int]:
    """The colour of one score against the threshold: the face box shows its frame's clip score this way.

    Not the video's verdict, which comes from the manipulated segments (the banner says which
    frames they cover, and whether the current frame is inside one).
    """
    return FAKE_COLOR if probability >= threshold else REAL_COLOR


def overlay_frame(frame: np.ndarray, token_map: np.ndarray | None, box: np.ndarray | None,
                  probability: float | None, style: OverlayStyle, threshold: float = 0.5,
                  label: str | None = None) -> np.ndarray:
    """One frame with its heatmap and face box (a copy); frames without a face come back unchanged.

    ``label`` (like "#1", when several faces are explained) is written above the box with the score.
    """
    out = frame.copy()
    if box is None or np.isnan(box).any():
        return out
    if token_map is not None and not np.isnan(token_map).any():
        blend_heatmap(out, token_map, box, style)
    if style.box:
        color = verdict_color(probability, threshold) if probability is not None and not np.isnan(probability) \
            else (200, 200, 200)
        draw_box(out, box, color, style.box_thickness)
        if label is not None:
            score = "" if probability is None or np.isnan(probability) else f" {probability:.2f}"
            draw_label(out, label + score, box, color)
    return out


def draw_label(frame: np.ndarray, text: str, box: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """Write ``text`` on a dark patch just above the box (inside it when the box touches the top)."""
    scale = max(0.35, min(0.7, frame.shape[0] / 700))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x0, y0 = int(round(box[0])), int(round(box[1]))
    x = min(max(x0, 0), max(frame.shape[1] - tw - 2, 0))
    y = y0 - 4 if y0 - th - base - 4 >= 0 else y0 + th + 4
    cv2.rectangle(frame, (x, y - th - 2), (x + tw + 2, y + base), (0, 0, 0), -1)
    cv2.putText(frame, text, (x + 1, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)
    return frame
