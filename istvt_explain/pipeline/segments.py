"""Manipulated segments: where in a video the clip scores say "fake".

A face swap is often spliced into part of a video only.  The mean of all clip scores (the usual
video-level protocol) dilutes such a video towards "real": the bundled demo, half real and half
manipulated, scores about halfway.  Segments answer the analyst's actual question, *where* is
it fake, and the verdict follows from them: a video is fake when it has at least one segment.

The rule (``find_segments``), with T the clip length in frames:

* A clip is *fake* when its score is at or above the threshold (the threshold itself counts as
  fake, as everywhere else in the tool).
* Fake clips, taken in time order, form one run while at most ``max_gap * T`` frames lie between
  the end of the run and the start of the next fake clip.  Those frames may be covered by clips
  scoring below the threshold (a dip) or by no clip at all (no face, or the uncovered tail of a
  face run): both are a stretch without fake evidence, and both count the same.  A longer stretch
  always ends the run, so a long absence of the face splits a segment in two instead of claiming
  frames that were never seen.  Overlapping fake clips (stride < T) have no frames between them
  and always join.
* A run is kept when the frames inside its fake clips number at least ``min_clips * T``, or all
  the frames of its *chain* if that is fewer: a chain is a stretch of clips that no gap longer
  than ``max_gap * T`` frames interrupts, i.e. everything a run could possibly have grown into.
  This is how a one-clip video, or a face seen only briefly, can still be fake: we never ask for
  more evidence than the face track offered.
* A segment spans from the first frame of its first fake clip to the last frame of its last fake
  clip.  Its mean is over all its clips, the below-threshold ones it bridged included (it is the
  segment's mean score, not the fake clips'); its peak is the highest clip score.

Both options count clip lengths, not clips, so they mean the same stretch of video whatever the
stride; at the default stride (= T, clips side by side) a clip length is exactly one clip.

Defaults, for the default stride (T = 6 frames, about 0.25 s at 25 fps):

* ``min_clips = 2``: a single clip over the threshold is the most common false alarm (motion
  blur, a blink, one bad crop); asking for two clips' worth (12 frames, half a second) removes
  those spikes, while a spliced manipulation, which lasts seconds, passes easily.
* ``max_gap = 1``: one clip under the threshold inside a fake stretch is far more often a dip of
  the score (a turn of the head, a hand) than a return to real footage; reporting the same
  manipulation as two segments would mislead.  One clip length also absorbs a face detection
  missed for a frame or two.  Two clip lengths without fake evidence split the segment.

Frame numbers are whatever ``frame_indices`` holds: 0-based video frame indices in the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_MIN_CLIPS = 2
DEFAULT_MAX_GAP = 1


@dataclass(frozen=True)
class Segment:
    """A stretch of video the clip scores call manipulated; frames inclusive, 0-based.

    Attributes:
        start_frame: first frame of the segment's first fake clip.
        end_frame: last frame of its last fake clip (inclusive).
        peak_probability: the highest clip score in the segment.
        mean_probability: the mean score of all the segment's clips, bridged dips included.
        clips: how many clips the segment holds, bridged ones included.
        fake_clips: how many of them score at or above the threshold.
    """

    start_frame: int
    end_frame: int
    peak_probability: float
    mean_probability: float
    clips: int
    fake_clips: int

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame + 1

    def contains(self, frame: int) -> bool:
        return self.start_frame <= frame <= self.end_frame

    def describe(self, first_frame: int = 0) -> str:
        """Like "frames 24-47 (peak 0.91)"; ``first_frame=1`` for displays that count frames from 1."""
        return (f"frames {self.start_frame + first_frame}-{self.end_frame + first_frame} "
                f"(peak {self.peak_probability:.2f})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_segments(clip_probability: np.ndarray, frame_indices: np.ndarray, threshold: float = 0.5,
                  min_clips: int = DEFAULT_MIN_CLIPS, max_gap: int = DEFAULT_MAX_GAP) -> list[Segment]:
    """The manipulated segments of one face track, in time order (the rule is in the module's docstring).

    Args:
        clip_probability: (K,) fake probability of each clip.
        frame_indices: (K, T) the frames each clip is made of, in any clip order.
        threshold: the score from which a clip counts as fake.
        min_clips: the fake evidence a segment needs, in clip lengths (capped by its chain).
        max_gap: the stretch without fake evidence a segment may bridge, in clip lengths.

    Segments never share or touch a frame: anything closer than the gap rule allows is one segment.
    """
    if min_clips < 1:
        raise ValueError(f"min_clips must be >= 1, got {min_clips}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    probs = np.asarray(clip_probability, dtype=np.float64).reshape(-1)
    frames = np.asarray(frame_indices, dtype=np.int64)
    if frames.ndim != 2 or len(frames) != len(probs):
        raise ValueError(f"frame_indices must be (K, T) with K = {len(probs)} clips, got shape {frames.shape}")
    if len(probs) == 0:
        return []
    t = frames.shape[1]
    order = np.argsort(frames.min(axis=1), kind="stable")
    probs, frames = probs[order], frames[order]
    starts, ends = frames.min(axis=1), frames.max(axis=1)
    fake = probs >= threshold  # NaN is never fake
    bridge = max_gap * t  # frames without fake evidence a run may span

    chain = _chains(starts, ends, bridge)
    runs: list[list[int]] = []  # [first, last] positions (in time order) of each run's fake clips
    reach = -1
    for i in np.flatnonzero(fake):
        if runs and starts[i] - reach - 1 <= bridge:
            runs[-1][1] = int(i)
            reach = max(reach, int(ends[i]))
        else:
            runs.append([int(i), int(i)])
            reach = int(ends[i])

    segments = []
    for first, last in runs:
        members = slice(first, last + 1)
        evidence = np.unique(frames[members][fake[members]]).size
        available = np.unique(frames[chain == chain[first]]).size
        if evidence < min(min_clips * t, available):
            continue
        scores = probs[members]
        segments.append(Segment(int(starts[first]), int(ends[members][fake[members]].max()), float(scores.max()),
                                float(scores.mean()), int(last - first + 1), int(fake[members].sum())))
    return segments


def _chains(starts: np.ndarray, ends: np.ndarray, bridge: int) -> np.ndarray:
    """(K,) chain number of each clip (time order): a new chain starts after more than ``bridge`` clipless frames."""
    chain = np.zeros(len(starts), np.int64)
    reach = int(ends[0])
    for i in range(1, len(starts)):
        chain[i] = chain[i - 1] + (starts[i] - reach - 1 > bridge)
        reach = max(reach, int(ends[i]))
    return chain


def segment_at(segments: list[Segment], frame: int) -> Segment | None:
    """The segment holding ``frame``, or None."""
    return next((s for s in segments if s.contains(frame)), None)
