"""The strip under each video frame: frame importance and fake probability over time, with a cursor.

The curves are the same for every frame, so they are drawn once into a static panel and each
frame only copies it and adds the cursor and the current values: per-frame cost is a memcpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .overlay import FAKE_COLOR

BACKGROUND = (24, 24, 28)
GRID = (70, 70, 78)
TEXT = (235, 235, 235)
IMPORTANCE_COLOR = (250, 190, 60)  # amber bars: how much each frame mattered
PROBABILITY_COLOR = FAKE_COLOR     # red line: fake probability
CURSOR_COLOR = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class PanelLayout:
    """Pixel geometry of the strip (derived from the frame size so text stays legible)."""

    width: int
    height: int
    text_scale: float
    line_height: int
    plot_top: int
    plot_bottom: int
    left: int
    right: int

    @classmethod
    def for_frame(cls, width: int, height: int) -> PanelLayout:
        text_scale = float(np.clip(width / 1280.0, 0.35, 0.8))
        line_height = int(round(28 * text_scale)) + 6
        panel_h = max(int(round(height * 0.3)), 2 * line_height + 40)
        panel_h += panel_h % 2  # H.264 yuv420p wants even sizes
        margin = max(6, width // 80)
        return cls(width, panel_h, text_scale, line_height, plot_top=line_height + 6,
                   plot_bottom=panel_h - line_height, left=margin, right=width - margin)


def _frame_x(layout: PanelLayout, index: np.ndarray | int, num_frames: int) -> np.ndarray:
    span = max(num_frames - 1, 1)
    return layout.left + (np.asarray(index, dtype=np.float64) / span) * (layout.right - layout.left)


def _value_y(layout: PanelLayout, value: np.ndarray) -> np.ndarray:
    return layout.plot_bottom - np.asarray(value, dtype=np.float64) * (layout.plot_bottom - layout.plot_top)


def put_text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color=TEXT, thickness: int = 1) -> None:
    cv2.putText(img, text, org, FONT, scale, color, thickness, lineType=cv2.LINE_AA)


class TimelinePanel:
    """Importance bars and the fake-probability curve of a whole video, drawn once.

    ``probability`` and ``importance`` are per frame, NaN where the frame was skipped (no face):
    those stretches stay empty, so the strip shows at a glance where the face was missing.
    """

    def __init__(self, width: int, frame_height: int, probability: np.ndarray, importance: np.ndarray,
                 threshold: float = 0.5) -> None:
        self.layout = layout = PanelLayout.for_frame(width, frame_height)
        self.num_frames = n = len(probability)
        self.probability = np.asarray(probability, dtype=np.float64)
        self.raw_importance = np.asarray(importance, dtype=np.float64)  # printed: the JSON's "importance"
        imp = np.nan_to_num(self.raw_importance, nan=0.0).clip(min=0)
        self.importance = imp / imp.max() if imp.size and imp.max() > 0 else imp  # bar heights only
        panel = np.empty((layout.height, width, 3), np.uint8)
        panel[:] = BACKGROUND
        bottom = layout.plot_bottom
        for level in (0.0, 0.5, 1.0):
            y = int(round(_value_y(layout, level)))
            cv2.line(panel, (layout.left, y), (layout.right, y), GRID, 1)
        thr_y = int(round(_value_y(layout, threshold)))
        for x in range(layout.left, layout.right, 8):  # dashed threshold line
            cv2.line(panel, (x, thr_y), (min(x + 4, layout.right), thr_y), (150, 150, 160), 1)
        # importance: one bar per frame
        xs = _frame_x(layout, np.arange(n), n)
        half = max(0.5, (layout.right - layout.left) / max(n, 1) / 2 - 0.5)
        for i in np.flatnonzero(~np.isnan(self.probability)):
            y = int(round(_value_y(layout, self.importance[i] * 0.95)))
            cv2.rectangle(panel, (int(round(xs[i] - half)), y), (int(round(xs[i] + half)), bottom),
                          IMPORTANCE_COLOR, -1)
        # fake probability: a polyline per stretch of processed frames
        valid = ~np.isnan(self.probability)
        ys = _value_y(layout, np.nan_to_num(self.probability))
        edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
        thick = max(1, int(round(2 * layout.text_scale + 0.5)))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            pts = np.stack([xs[start:stop], ys[start:stop]], axis=1).round().astype(np.int32)
            if len(pts) == 1:
                pts = np.concatenate([pts - [2, 0], pts + [2, 0]])
            cv2.polylines(panel, [pts.reshape(-1, 1, 2)], False, PROBABILITY_COLOR, thick, lineType=cv2.LINE_AA)
        self._small = s = layout.text_scale * 0.8
        self._bottom_y = layout.height - max(4, layout.line_height // 3)
        widest = self._detail(n - 1, 0.99, 9.99)
        detail_w = cv2.getTextSize(widest, FONT, s, 1)[0][0]
        while detail_w > layout.right - layout.left and s > 0.2:  # a narrow video: smaller, never cut off
            self._small = s = s * 0.9
            detail_w = cv2.getTextSize(widest, FONT, s, 1)[0][0]
        legend = [("p(fake)", PROBABILITY_COLOR), ("importance", IMPORTANCE_COLOR)]
        widths = [cv2.getTextSize(text, FONT, s, 1)[0][0] for text, _ in legend]
        gap = int(12 * s / 0.5)
        x = layout.right - sum(widths) - gap
        if x > layout.left + detail_w + gap:  # only when it does not collide with the frame's values
            for (text, color), tw in zip(legend, widths, strict=True):
                put_text(panel, text, (x, self._bottom_y), s, color)
                x += tw + gap
        self.static = panel

    def _detail(self, index: int, probability: float, importance: float) -> str:
        head = f"frame {index}/{self.num_frames - 1}"  # 0-based, like every frame number (docs/cli.md)
        if np.isnan(probability):
            return f"{head}  no face: skipped"
        return f"{head}  p(fake) {probability:.2f}  imp. {importance:.2f}"

    def draw(self, index: int, headline: str, headline_color=TEXT) -> np.ndarray:
        """The panel for frame ``index``: cursor, headline (verdict) and the frame's own values."""
        layout = self.layout
        panel = self.static.copy()
        x = int(round(float(_frame_x(layout, index, self.num_frames))))
        cv2.line(panel, (x, layout.plot_top - 2), (x, layout.plot_bottom + 2), CURSOR_COLOR, 1)
        put_text(panel, headline, (layout.left, layout.line_height - 4), layout.text_scale, headline_color,
                 thickness=max(1, int(round(layout.text_scale * 2))))
        p = self.probability[index] if 0 <= index < self.num_frames else np.nan
        imp = self.raw_importance[index] if 0 <= index < self.num_frames else np.nan
        put_text(panel, self._detail(index, p, imp), (layout.left, self._bottom_y), self._small)
        return panel
