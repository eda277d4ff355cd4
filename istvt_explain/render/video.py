"""The explained video: every original frame with its heatmap and face box, over the timeline strip.

Reads the analysed video a second time (frames are streamed, never all held) and writes an
H.264 MP4 with the input's frame count and frame rate; the output is taller than the input by
the strip.  The renderer reads a ``VideoAnalysis`` (the explanations and the boxes), never the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from ..data.video import VideoReader, VideoWriter
from ..pipeline import StageTimer, VideoAnalysis
from .curves import TimelinePanel
from .overlay import OverlayStyle, overlay_frame, verdict_color


def headline(analysis: VideoAnalysis) -> str:
    """The verdict line: what an analyst reads first."""
    clips = len(analysis.frame_indices)
    return (f"{analysis.verdict.upper()}  p(fake) {analysis.video_probability:.2f}  "
            f"({clips} clip{'s' if clips != 1 else ''}, {analysis.method})")


class FrameComposer:
    """Builds the output picture of one frame: overlay on top, timeline strip below."""

    def __init__(self, analysis: VideoAnalysis, style: OverlayStyle | None = None) -> None:
        self.analysis = analysis
        self.style = style or OverlayStyle()
        self.panel = TimelinePanel(analysis.width, analysis.height, analysis.frame_probability,
                                   analysis.frame_importance, analysis.threshold)
        self.headline = headline(analysis)
        self.headline_color = verdict_color(analysis.video_probability, analysis.threshold)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the composed frames."""
        return self.analysis.width, self.analysis.height + self.panel.layout.height

    def compose(self, index: int, frame: np.ndarray) -> np.ndarray:
        a = self.analysis
        if index < a.num_frames:
            top = overlay_frame(frame, a.frame_maps[index], a.boxes[index], a.frame_probability[index],
                                self.style, a.threshold)
        else:  # frames past what was analysed (should not happen): shown as they are
            top = frame
        out = np.empty((self.size[1], self.size[0], 3), np.uint8)
        out[:a.height] = top
        out[a.height:] = self.panel.draw(index, self.headline, self.headline_color)
        return out


def render_video(analysis: VideoAnalysis, out_path: str | Path, style: OverlayStyle | None = None,
                 keep_frames: Collection[int] = (), progress: Callable[[str, int, int], None] | None = None,
                 timer: StageTimer | None = None) -> dict[int, np.ndarray]:
    """Write the explained video to ``out_path`` (atomically); return the composed frames in ``keep_frames``.

    ``keep_frames`` lets the caller save key frames as pictures without a second pass.
    """
    timer = timer or StageTimer()
    composer = FrameComposer(analysis, style)
    width, height = composer.size
    kept: dict[int, np.ndarray] = {}
    wanted = set(keep_frames)
    reader = VideoReader(analysis.video_path)
    total = analysis.num_frames
    with VideoWriter(out_path, analysis.fps, width, height) as writer:
        frames = iter(reader)
        index = 0
        while True:
            with timer.stage("decode"):
                frame = next(frames, None)
            if frame is None:
                break
            with timer.stage("render"):
                composed = composer.compose(index, frame)
            if index in wanted:
                kept[index] = composed
            with timer.stage("encode"):
                writer.write(composed)
            index += 1
            if progress:
                progress("render", index, total)
        start, cpu = time.perf_counter(), time.process_time()
    timer.add("encode", time.perf_counter() - start, time.process_time() - cpu)  # the encoder's flush on close
    return kept
