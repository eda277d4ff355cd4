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


HEATMAP_CMAP = "inferno"   # perceptually uniform: equal steps of evidence look like equal steps of colour
DIVERGING_CMAP = "RdBu_r"  # signed maps: blue against "fake", red for it, white (and transparent) at 0


@dataclass(frozen=True)
class OverlayStyle:
    """How a heatmap is drawn on a frame (the convention of docs/display.md).

    Maps arrive on the display scale (``Explanation.display_spatial``): [0, 1], or [-1, 1] when signed.
    Opacity grows with the magnitude, from 0 at ``cutoff`` to ``alpha`` at 1, so that low evidence
    leaves the face as it is instead of tinting all of it.

    Attributes:
        colormap: a matplotlib colour map name; None: ``HEATMAP_CMAP`` for unsigned maps and
            ``DIVERGING_CMAP`` (centred on 0) for signed ones.
        alpha: opacity of the heatmap where its magnitude is 1 (0 = invisible, 1 = opaque).
        gamma: the magnitude is raised to this power before blending; < 1 shows weak evidence more.
        cutoff: magnitudes at or below this leave the frame untouched.
        box: draw the face box.
        box_thickness: line width of the face box, in pixels.
        colorbar: draw a small colour bar in the frame's top-right corner.
    """

    colormap: str | None = None
    alpha: float = 0.6
    gamma: float = 1.0
    cutoff: float = 0.1
    box: bool = True
    box_thickness: int = 2
    colorbar: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.gamma <= 0:
            raise InputError(f"gamma must be positive, got {self.gamma}")
        if not 0.0 <= self.cutoff < 1.0:
            raise InputError(f"cutoff must be in [0, 1), got {self.cutoff}")
        if self.colormap is not None:
            colormap_lut(self.colormap)  # raises InputError for an unknown name

    def cmap(self, signed: bool) -> str:
        """The colour map of an unsigned or a signed map."""
        return self.colormap or (DIVERGING_CMAP if signed else HEATMAP_CMAP)

    def opacity(self, values: np.ndarray) -> np.ndarray:
        """Per-pixel opacity of display values: 0 up to ``cutoff`` in magnitude, ``alpha`` at 1."""
        magnitude = np.abs(np.nan_to_num(values, nan=0.0)).clip(0.0, 1.0)
        ramp = ((magnitude - self.cutoff) / (1.0 - self.cutoff)).clip(0.0, 1.0)
        return self.alpha * (ramp ** self.gamma if self.gamma != 1.0 else ramp)


@lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table of a matplotlib colour map."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise InputError(f"unknown colour map {name!r} (any matplotlib name, e.g. inferno, viridis, RdBu_r)") from None
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(values: np.ndarray, colormap: str = HEATMAP_CMAP, signed: bool = False) -> np.ndarray:
    """Map display values (any shape) to RGB ``uint8`` (shape + (3,)): [0, 1], or [-1, 1] when ``signed``
    (0 lands in the middle of the colour map)."""
    values = np.nan_to_num(values, nan=0.0)
    unit = (values + 1.0) / 2.0 if signed else values
    index = (unit.clip(0.0, 1.0) * 255).round().astype(np.uint8)
    return colormap_lut(colormap)[index]


def blend_heatmap(frame: np.ndarray, token_map: np.ndarray, box: np.ndarray, style: OverlayStyle,
                  signed: bool = False) -> np.ndarray:
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
    up = up[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0].clip(-1.0 if signed else 0.0, 1.0)
    weight = style.opacity(up)[..., None]
    region = frame[cy0:cy1, cx0:cx1].astype(np.float32)
    color = colorize(up, style.cmap(signed), signed).astype(np.float32)
    frame[cy0:cy1, cx0:cx1] = (region + weight * (color - region)).round().astype(np.uint8)
    return frame


def draw_colorbar(frame: np.ndarray, style: OverlayStyle, signed: bool = False, label: str = "evidence") -> np.ndarray:
    """A small colour bar in the top-right corner of ``frame`` (in place), drawn as the map is blended:
    over a mid-grey strip, so that its transparent low end reads as "face untouched"."""
    h, w = frame.shape[:2]
    scale = max(0.28, min(0.5, h / 900))
    bar_w, bar_h, pad = int(np.clip(w // 8, 48, 160)), max(5, h // 60), max(3, w // 160)
    if cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > bar_w:
        label = ""  # a small frame: the bar alone (the strip's banner names the method)
    ends = ("-", "0", "+") if signed else ("low", "", "high")
    (_, th), base = cv2.getTextSize("high", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x1 = w - pad
    x0 = x1 - bar_w
    y0 = pad + (th + 4 if label else 2)
    if x0 < 4 or y0 + bar_h + th + base + 6 > h:
        return frame  # a frame too small for it
    box_top, box_bottom = pad - 2, y0 + bar_h + th + base + 4
    cv2.rectangle(frame, (x0 - 4, box_top), (x1 + 3, box_bottom), (0, 0, 0), -1)
    values = np.linspace(-1.0 if signed else 0.0, 1.0, bar_w, dtype=np.float32)[None, :].repeat(bar_h, 0)
    region = np.full((bar_h, bar_w, 3), 128.0, np.float32)
    colour = colorize(values, style.cmap(signed), signed).astype(np.float32)
    region += style.opacity(values)[..., None] / max(style.alpha, 1e-6) * (colour - region)
    frame[y0:y0 + bar_h, x0:x1] = region.round().astype(np.uint8)
    text = (235, 235, 235)
    if label:
        cv2.putText(frame, label, (x0, y0 - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, text, 1, cv2.LINE_AA)
    y_text = y0 + bar_h + th + 2
    for word, x in zip(ends, (x0, x0 + bar_w // 2, x1), strict=True):
        tw = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
        xx = min(max(x - tw // 2, x0), x1 - tw)
        cv2.putText(frame, word, (xx, y_text), cv2.FONT_HERSHEY_SIMPLEX, scale, text, 1, cv2.LINE_AA)
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
                  label: str | None = None, signed: bool = False) -> np.ndarray:
    """One frame with its heatmap and face box (a copy); frames without a face come back unchanged.

    ``label`` (like "#1", when several faces are explained) is written above the box with the score.
    """
    out = frame.copy()
    if box is None or np.isnan(box).any():
        return out
    if token_map is not None and not np.isnan(token_map).any():
        blend_heatmap(out, token_map, box, style, signed)
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


def paste_map(canvas: np.ndarray, token_map: np.ndarray, box: np.ndarray) -> tuple[slice, slice] | None:
    """Upsample ``token_map`` to the box (bilinear) and write the part inside the frame into ``canvas``.

    Returns the (rows, cols) slices of the canvas that were written, or None when the box
    lies outside the frame.  Crop boxes may overhang the frame near its edges.
    """
    h, w = canvas.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    bw, bh = x1 - x0, y1 - y0
    if bw < 1 or bh < 1:
        return None
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    up = cv2.resize(token_map.astype(np.float32), (bw, bh), interpolation=cv2.INTER_LINEAR)
    rows, cols = slice(cy0, cy1), slice(cx0, cx1)
    canvas[rows, cols] = up[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return rows, cols
