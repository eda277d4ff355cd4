"""When each frame of a video is shown: its presentation timestamps, not index / fps.

Why: a variable-frame-rate video (a phone's camera, a screen recording, a stream cut with frames
dropped) holds its frames for different lengths of time.  Times counted as index / fps then end
too early or too late (a video with timestamps up to 3.76 s reported its last frame at 1.56 s),
and so did the explained copy.  Light on purpose (NumPy only): ``VideoAnalysis`` holds a clock
without importing PyAV.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np


class _Frame(Protocol):
    """What ``FrameTimes`` reads of a decoded frame (``av.VideoFrame`` has it)."""

    time: float | None
    time_base: Any
    pts: int | None


MAX_FRAME_INTERVAL = 60.0
"""Seconds one frame may stay on screen: a longer gap is a broken clock, not a video (and would
overflow an MP4's 32-bit sample durations in the output)."""


CONSTANT_TOLERANCE = 0.1
"""A stream is constant-rate when every timestamp is within this fraction of a frame (and at least
1 ms, Matroska's rounding) of index / declared fps."""


@dataclass(frozen=True)
class FrameClock:
    """When each decoded frame is shown: seconds from the first frame, from the stream's timestamps.

    Attributes:
        times: (F,) float64 presentation time of every frame.  Variable-rate: pts x time_base
            minus the first frame's (the first frame is at 0 whatever offset the container starts
            at).  Constant-rate: index / fps, exactly as before timestamps were read (they agree
            with the pts within ``CONSTANT_TOLERANCE``; a container's rounding, such as Matroska's
            milliseconds, changes nothing).
        duration: seconds the video lasts: variable-rate, the last frame's time plus its own
            duration (until the container's end, else the frame's, else the mean interval);
            constant-rate, frames / fps.
        fps: the container's declared rate for a constant-rate video; for a variable-rate one,
            the average rate, frames / duration.
        variable: some timestamp is further from index / declared fps than ``CONSTANT_TOLERANCE``.
        source: ``"pts"``, or ``"index/fps"`` where the stream gives no usable timestamps (a frame
            without pts, times that do not increase, or a gap over ``MAX_FRAME_INTERVAL``): then
            every time is index / fps, as the tool always did, and the video counts as constant-rate.
        pts: (F,) int64 each frame's own presentation timestamp in its stream's time base, unique
            and increasing, or None when the stream's are not: what a reader seeks to
            (``VideoReader.read_frame``) to fetch one frame without decoding all those before it.
    """

    times: np.ndarray
    duration: float
    fps: float
    variable: bool
    source: str
    pts: np.ndarray | None = field(default=None, repr=False, compare=False)

    @classmethod
    def constant(cls, count: int, fps: float, source: str = "index/fps") -> FrameClock:
        """index / fps for ``count`` frames: a constant-rate stream, or one without usable timestamps."""
        return cls(np.arange(count, dtype=np.float64) / fps, count / fps, float(fps), False, source)

    def to_dict(self) -> dict[str, object]:
        """The report's summary of the clock (the times themselves go to ``frames[].time``)."""
        return {"duration": round(self.duration, 4), "variable_frame_rate": self.variable,
                "time_source": self.source}


class FrameTimes:
    """Collects each decoded frame's presentation time during a pass that decodes it anyway.

    Why not a pass of its own: decoding is the expensive part of a pass, and the face pass already
    decodes every frame; reading ``frame.time`` there costs nothing measurable.
    """

    def __init__(self, fps: float, end: float | None = None) -> None:
        """``fps``: the declared rate; ``end``: when the container says the last frame stops (pts seconds)."""
        self.fps = float(fps)
        self.end = end
        self._times: list[float | None] = []
        self._pts: list[int | None] = []
        self._last_frame: tuple[Any, Any] = (None, None)

    def add(self, frame: _Frame) -> None:
        """Record one frame (in decoding output order, which is presentation order)."""
        self._times.append(frame.time)
        self._pts.append(getattr(frame, "pts", None))
        self._last_frame = (getattr(frame, "duration", None), frame.time_base)  # read in clock(): once

    def clock(self) -> FrameClock:
        """The clock of the frames added so far (``FrameClock`` says when index / fps is used instead)."""
        return replace(self._clock(), pts=self._seekable_pts())

    def _seekable_pts(self) -> np.ndarray | None:
        """The frames' own pts when every frame has one and they increase (each names one frame)."""
        if not self._pts or any(p is None for p in self._pts):
            return None
        pts = np.asarray(self._pts, dtype=np.int64)
        return pts if (np.diff(pts) > 0).all() else None

    def _clock(self) -> FrameClock:
        count = len(self._times)
        if count == 0 or any(t is None for t in self._times):
            return FrameClock.constant(count, self.fps)
        times = np.asarray(self._times, dtype=np.float64)
        times -= times[0]
        steps = np.diff(times)
        if (steps <= 0).any() or (steps > MAX_FRAME_INTERVAL).any():
            return FrameClock.constant(count, self.fps)
        tolerance = max(CONSTANT_TOLERANCE / self.fps, 0.001)
        if np.abs(times - np.arange(count) / self.fps).max() <= tolerance:
            return FrameClock.constant(count, self.fps, "pts")
        # How long the last frame stays: the container's end, else the frame's own duration (decoding
        # order in an MP4 with B-frames: a guess), else the mean interval.
        ticks, base = self._last_frame
        candidates = (None if self.end is None else self.end - self._times[-1],
                      float(ticks * base) if ticks and base is not None else None,
                      float(times[-1] / (count - 1)))  # count > 1: a single frame is always constant-rate
        last = next(d for d in candidates if d is not None and 0 < d <= MAX_FRAME_INTERVAL)
        duration = float(times[-1] + last)
        return FrameClock(times, duration, count / duration, True, "pts")
