"""The explained video: every original frame with its heatmap and face box, over the timeline strip.

Reads the frames the face pass kept (``data.frame_store``), or decodes the video again when it
kept none (frames are streamed, never all held), and writes an H.264 MP4 with the input's frame
count and frame rate; the output is taller than the input by the strip.  The renderer reads a
``VideoAnalysis`` (the explanations and the boxes), never the model.

Time follows the input's clock (``analysis.clock``, its presentation timestamps).  A constant-rate
input is written at its declared rate, frame k at k / fps, exactly as before timestamps were read.
A variable-rate input keeps every frame once, at its own time (``VideoWriter``'s ``times``): the
output lasts as long as the input, with no frame duplicated or dropped, and its declared
(nominal) rate is the input's average rate, frames / duration (``analysis.fps``).

The banner above the strip names the manipulated segments ("FAKE: frames 24-47 (peak 0.91)") in the
strip counter's numbers ("frame 24/47": this frame / the last), which count from 0 like the JSON
report, the terminal summary and the key-frame file names: one convention everywhere (docs/cli.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..data.background import BackgroundSink, Prefetch
from ..data.frame_store import DecodedFrames
from ..data.video import VideoReader, VideoWriter
from ..render.curves import FONT, TimelinePanel
from ..render.overlay import FAKE_COLOR, REAL_COLOR, OverlayStyle, draw_colorbar, overlay_frame
from . import StageTimer, VideoAnalysis
from .segments import Segment, segment_at

DISPLAY_FIRST_FRAME = 0
"""The video counts frames from 0 (the strip's "frame 0/47"), as the report does; the banner follows it."""


FRAME_NOTES = {
    # (inside a segment, the frame's clip score over the threshold): (note, short note)
    (True, True): (" | this frame: in a fake segment", " | in segment"),
    (True, False): (" | this frame: a dip inside a fake segment", " | dip in segment"),
    (False, True): (" | this frame: over threshold, in no segment", " | over threshold"),
    (False, False): ("", ""),
}
"""What the banner says about the current frame, so that the face box (coloured by the frame's own
clip score) and the banner (the verdict) never leave the analyst wondering: a box under the
threshold inside a segment is a bridged dip, a box over it outside any segment a run too short."""


def frame_state(analysis: VideoAnalysis, index: int, segments: list[Segment]) -> tuple[bool, bool]:
    """(inside a segment, clip score over the threshold) of frame ``index``; a frame without a score is not over."""
    a = analysis
    p = a.frame_probability[index] if 0 <= index < a.frame_probability.size else np.nan
    return segment_at(segments, index) is not None, bool(p >= a.threshold)


def headline_variants(analysis: VideoAnalysis, index: int | None = None,
                      segments: list[Segment] | None = None, state: tuple[bool, bool] | None = None
                      ) -> list[str]:
    """The verdict line, longest first (one list per video and frame state, all of the same length).

    FAKE names the segments, frames counted from 0 like the strip's counter; on a frame (``index``,
    or its ``state`` directly) a note says how the frame relates to them (``FRAME_NOTES``).
    """
    a = analysis
    segments = a.segments if segments is None else segments
    if state is None:
        state = frame_state(a, index, segments) if index is not None else (False, False)
    note, short_note = FRAME_NOTES[state]
    clips = len(a.frame_indices)
    mean = f" | mean p(fake) {a.video_probability:.2f}"
    tail = f"{mean} ({clips} clip{'s' if clips != 1 else ''}, {a.method})"
    base = DISPLAY_FIRST_FRAME
    if not segments:
        full = "REAL: no manipulated segment"
        return [full + note + tail, full + note + mean, full + note, full + note, full + short_note,
                full + short_note, "REAL", "REAL"]
    spans = [f"{s.start_frame + base}-{s.end_frame + base}" for s in segments]
    full = "FAKE: " + ", ".join(s.describe(base) for s in segments)
    plain = "FAKE: frames " + ", ".join(spans)
    first = f"FAKE: frames {spans[0]}" + (f" +{len(spans) - 1} more" if len(spans) > 1 else "")
    return [full + note + tail, full + note + mean, full + note, plain + note, plain + short_note,
            first + short_note, first, "FAKE"]


def headline(analysis: VideoAnalysis, index: int | None = None) -> str:
    """The full verdict line: what an analyst reads first."""
    return headline_variants(analysis, index)[0]


class FrameComposer:
    """Builds the output picture of one frame: overlay on top, timeline strip below.

    ``others``: the analyses of other faces of the same video (``--face all``): each gets its box
    and map on the picture; the strip and the banner are ``analysis``'s (the leading face).
    """

    def __init__(self, analysis: VideoAnalysis, style: OverlayStyle | None = None,
                 others: Sequence[VideoAnalysis] = ()) -> None:
        self.analysis = analysis
        self.others = tuple(others)
        self.style = style or OverlayStyle()
        self.panel = TimelinePanel(analysis.width, analysis.height, analysis.frame_probability,
                                   analysis.frame_importance, analysis.threshold)
        self.segments = analysis.segments
        self.headline_color = FAKE_COLOR if self.segments else REAL_COLOR
        self._level = self._fitting_level()
        self._headlines: dict[tuple[bool, bool], str] = {}

    def _fitting_level(self) -> int:
        """The most detailed variant that fits the strip in every frame state the video has.

        One level for the whole video: only the note about the current frame changes from frame
        to frame, never the verdict's own wording.
        """
        layout = self.panel.layout
        scale, thickness = layout.text_scale, max(1, int(round(layout.text_scale * 2)))
        room = layout.right - layout.left
        states = {frame_state(self.analysis, i, self.segments) for i in range(self.analysis.num_frames)}
        widths = [[cv2.getTextSize(v, FONT, scale, thickness)[0][0]
                   for v in headline_variants(self.analysis, segments=self.segments, state=state)]
                  for state in states | {(False, False)}]
        levels = len(widths[0])
        return next((i for i in range(levels) if all(w[i] <= room for w in widths)), levels - 1)

    def headline(self, index: int) -> str:
        """The banner of frame ``index`` (a few distinct lines per video, cached)."""
        state = frame_state(self.analysis, index, self.segments)
        if state not in self._headlines:
            self._headlines[state] = headline_variants(self.analysis, segments=self.segments,
                                                       state=state)[self._level]
        return self._headlines[state]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the composed frames."""
        return self.analysis.width, self.analysis.height + self.panel.layout.height

    def compose(self, index: int, frame: np.ndarray) -> np.ndarray:
        a = self.analysis
        top = frame
        for face in (*self.others, a):  # the leading face last: its box is drawn over the others'
            if index < face.num_frames:  # frames past what was analysed (should not happen): shown as they are
                top = overlay_frame(top, face.frame_maps[index], face.boxes[index], face.frame_probability[index],
                                    self.style, face.threshold,
                                    label=f"#{face.track_index}" if self.others else None, signed=_signed(face))
        if self.style.colorbar:
            top = draw_colorbar(top if top is not frame else frame.copy(), self.style, _signed(a), a.method)
        out = np.empty((self.size[1], self.size[0], 3), np.uint8)
        out[:a.height] = top
        out[a.height:] = self.panel.draw(index, self.headline(index), self.headline_color)
        return out


def _signed(analysis: VideoAnalysis) -> bool:
    """Whether the analysis' maps are signed (drawn on a diverging colour map centred on 0)."""
    return bool(analysis.display is not None and analysis.display.signed)


def render_video(analysis: VideoAnalysis, out_path: str | Path, style: OverlayStyle | None = None,
                 keep_frames: Collection[int] = (), progress: Callable[[str, int, int], None] | None = None,
                 timer: StageTimer | None = None, others: Sequence[VideoAnalysis] = (),
                 frames: DecodedFrames | None = None) -> dict[int, np.ndarray]:
    """Write the explained video to ``out_path`` (atomically); return the composed frames in ``keep_frames``.

    ``keep_frames`` lets the caller save key frames as pictures without a second pass; ``others``:
    the other faces' analyses (see ``FrameComposer``); ``frames``: the face pass's kept frames
    (``analyze_video``'s ``keep``), read instead of decoding the video again when they are all there.
    """
    timer = timer or StageTimer()
    composer = FrameComposer(analysis, style, others)
    width, height = composer.size
    kept: dict[int, np.ndarray] = {}
    wanted = set(keep_frames)
    total = analysis.num_frames
    # Decode ahead and encode behind in threads (``data.background``): the three stages overlap.
    # The decode and encode timers get their threads' own busy seconds (no CPU seconds: the
    # process clock counts every thread), the render timer the composing alone.
    clock = analysis.clock
    timed = clock is not None and clock.variable and len(clock.times) == total
    with VideoWriter(out_path, analysis.fps, width, height, times=clock.times if timed else None,
                     duration=clock.duration if timed else None) as writer, \
            Prefetch(_source(analysis, frames), name="decode") as source:
        with BackgroundSink(writer.write, name="encode") as encoder:
            for index, frame in enumerate(source):
                if timed and index >= total:  # the video grew since it was analysed: no time for more
                    break
                with timer.stage("render"):
                    composed = composer.compose(index, frame)
                if index in wanted:
                    kept[index] = composed
                encoder.put(composed)
                if progress:
                    progress("render", index + 1, total)
        start = time.perf_counter()
    timer.add("decode", source.busy_s)
    timer.add("encode", encoder.busy_s + time.perf_counter() - start)  # the encoder's flush on close
    return kept


def _source(analysis: VideoAnalysis, frames: DecodedFrames | None) -> Iterator[np.ndarray]:
    """The input's frames: the kept ones when every analysed frame is there, else decoded again."""
    if frames is not None and frames.holds(analysis.num_frames):
        return iter(frames)
    return iter(VideoReader(analysis.video_path))
