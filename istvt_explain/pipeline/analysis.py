"""``VideoAnalysis``: everything learned about one video, per clip and per frame, and how it is aggregated.

The one typed result that the heatmap video, the JSON report and the maps file read, so none of
them ever touches the model; the verdict comes from its manipulated segments (``segments``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..attribution.explanation import DisplayScale, Explanation
from ..data.clock import FrameClock
from ..render.overlay import paste_map
from .segments import DEFAULT_MAX_GAP, DEFAULT_MIN_CLIPS, Segment, find_segments


@dataclass
class VideoAnalysis:
    """Everything learned about one video, per clip and per frame.

    Per-frame arrays have one entry per decoded frame; NaN (or False) marks frames that no
    clip covers (no face there, or too few consecutive face frames for one clip).

    Attributes:
        explanation: the explanation of every clip, batched (B = number of clips).
        frame_indices: (K, T) the frames each clip is made of.
        boxes: (F, 4) square crop box (x0, y0, x1, y1) in frame pixels, NaN where no face.
        face_frames: (F,) a face was found in the frame.
        frame_probability: (F,) fake probability, the mean over the clips holding the frame.
        frame_importance: (F,) the frame's share of its clip's temporal relevance, times T
            (1 = an average frame of its clip); mean over clips.
        frame_maps: (F, h, w) token-level spatial map on the display scale (``display``): [0, 1], or
            [-1, 1] for a signed method, one robust scale for the whole video so that its frames
            compare (docs/display.md); NaN where no clip covers the frame.  The raw values stay in
            ``explanation.spatial``.
        display: the ``DisplayScale`` that turned the raw maps into ``frame_maps``.
        held_frames: (F,) face frames that no clip covers (the tail of a face run shorter than a
            clip): they show the map and score of the nearest covered frame of the same run.
        segment_min_clips, segment_max_gap: the segment rule's options (see ``PipelineOptions``).
        face_tracks: every face track found, largest first (``FaceTrack.summary()``: frame ranges,
            size in pixels), so a report always says how many faces there were.
        track_index: the track this analysis explains (its index in ``face_tracks``).
        clock: when each frame is shown (the stream's timestamps, ``data.clock.FrameClock``); None
            for an analysis made by hand, whose frames are then index / ``fps`` apart.  ``fps`` is
            the clock's rate: declared, or the average (frames / duration) of a variable-rate video.
    """

    video_path: Path
    fps: float
    width: int
    height: int
    num_frames: int
    method: str
    threshold: float
    explanation: Explanation
    frame_indices: np.ndarray
    boxes: np.ndarray
    face_frames: np.ndarray
    frame_probability: np.ndarray
    frame_importance: np.ndarray
    frame_maps: np.ndarray
    held_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    timings: dict[str, float] = field(default_factory=dict)
    segment_min_clips: int = DEFAULT_MIN_CLIPS
    segment_max_gap: int = DEFAULT_MAX_GAP
    face_tracks: list[dict] = field(default_factory=list)
    track_index: int = 0
    display: DisplayScale | None = None
    clock: FrameClock | None = None

    @property
    def frame_times(self) -> np.ndarray:
        """(F,) seconds from the first frame to each frame: its presentation time, not index / fps."""
        if self.clock is not None and len(self.clock.times) == self.num_frames:
            return self.clock.times
        return FrameClock.constant(self.num_frames, self.fps).times

    @property
    def clip_probability(self) -> np.ndarray:
        return self.explanation.fake_probability.detach().cpu().numpy().astype(np.float64)

    @property
    def video_probability(self) -> float:
        """Mean of the clip scores: the usual video-level protocol, comparable with published results.

        Not what the verdict uses: a video manipulated in part is diluted towards "real" by its
        real clips (see ``segments``).
        """
        return float(self.clip_probability.mean())

    @property
    def segments(self) -> list[Segment]:
        """The manipulated segments, in time order, frames 0-based (``istvt_explain.pipeline.segments``)."""
        return find_segments(self.clip_probability, self.frame_indices, self.threshold,
                             min_clips=self.segment_min_clips, max_gap=self.segment_max_gap)

    @property
    def verdict(self) -> str:
        """Fake when some part of the video is manipulated (at least one segment), whatever the mean."""
        return "fake" if self.segments else "real"

    @property
    def processed(self) -> np.ndarray:
        """(F,) bool: frames that some clip covers (they have a map and a score)."""
        return ~np.isnan(self.frame_probability)

    @property
    def skipped_frames(self) -> list[int]:
        return np.flatnonzero(~self.processed).tolist()

    def skip_reasons(self) -> dict[int, str]:
        """Why each skipped frame has no score: ``no_face`` (no face of the explained track there),
        ``face_too_briefly`` (its face run is shorter than one clip) or ``between_clips`` (the face run
        is long enough, but clips start so far apart, ``--stride`` above the clip length, that none
        reaches the frame)."""
        frames = self.frame_indices.shape[1] if self.frame_indices.ndim == 2 and self.frame_indices.size else 1
        run_id = np.cumsum(np.concatenate([[1], np.diff(self.face_frames.astype(np.int8)) != 0]))
        run_length = np.bincount(run_id)
        reasons = {}
        for f in self.skipped_frames:
            if not self.face_frames[f]:
                reasons[f] = "no_face"
            elif run_length[run_id[f]] < frames:
                reasons[f] = "face_too_briefly"
            else:
                reasons[f] = "between_clips"
        return reasons

    def suspicion(self) -> np.ndarray:
        """(F,) fake probability weighted by relative importance in [0, 1]; 0 where skipped."""
        imp = np.nan_to_num(self.frame_importance, nan=0.0)
        top = imp.max() if imp.size and imp.max() > 0 else 1.0
        return np.nan_to_num(self.frame_probability, nan=0.0) * (imp / top)

    def suspicious_frames(self, k: int = 5) -> list[int]:
        """The k processed frames with the highest suspicion, most suspicious first."""
        score = self.suspicion()
        order = [int(i) for i in np.argsort(-score, kind="stable") if self.processed[i]]
        return order[:k]

    def full_frame_map(self, index: int) -> np.ndarray:
        """(H, W) float32 map of one frame at full frame size, pasted through its crop box; 0 where no face."""
        out = np.zeros((self.height, self.width), np.float32)
        token_map = self.frame_maps[index]
        if np.isnan(token_map).any() or np.isnan(self.boxes[index]).any():
            return out
        paste_map(out, token_map, self.boxes[index])
        return out

    def full_frame_maps(self, dtype: type = np.float16) -> np.ndarray:
        """(F, H, W) every frame's map at full size (the ``--maps`` file)."""
        maps = np.zeros((self.num_frames, self.height, self.width), dtype)
        for i in np.flatnonzero(self.processed):
            maps[i] = self.full_frame_map(int(i))
        return maps


def aggregate_frames(a: VideoAnalysis) -> None:
    """Average each frame's score, importance and map over the clips that hold it."""
    exp = a.explanation
    k, t, gh, gw = exp.spatial.shape
    a.display = exp.display_scale()  # one scale per video: its frames compare (docs/display.md)
    maps = exp.display_spatial(a.display).astype(np.float32)
    temporal = exp.temporal.numpy().astype(np.float64).clip(min=0)
    mass = temporal.sum(axis=1, keepdims=True)
    share = np.where(mass > 0, temporal / np.where(mass > 0, mass, 1) * t, 1.0)
    probs = a.clip_probability
    count = np.zeros(a.num_frames)
    prob = np.zeros(a.num_frames)
    imp = np.zeros(a.num_frames)
    fmap = np.zeros((a.num_frames, gh, gw), np.float32)
    for c in range(k):
        for j, f in enumerate(a.frame_indices[c]):
            count[f] += 1
            prob[f] += probs[c]
            imp[f] += share[c, j]
            fmap[f] += maps[c, j]
    covered = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        a.frame_probability = np.where(covered, prob / count, np.nan)
        a.frame_importance = np.where(covered, imp / count, np.nan)
        a.frame_maps = np.where(covered[:, None, None], fmap / np.maximum(count, 1)[:, None, None], np.nan
                                ).astype(np.float32)
    hold_uncovered(a, max_distance=t - 1)


def hold_uncovered(a: VideoAnalysis, max_distance: int) -> None:
    """Give face frames that no clip covers the values of the nearest covered frame of their face run.

    Clips start every ``stride`` frames, so up to T - 1 frames at the end of a face run fall in no
    clip; without this their heatmap would blink off although the face is still there.
    """
    covered = ~np.isnan(a.frame_probability)
    a.held_frames = np.zeros(a.num_frames, bool)
    run_id = np.cumsum(np.concatenate([[1], np.diff(a.face_frames.astype(np.int8)) != 0]))
    covered_idx = np.flatnonzero(covered)
    if covered_idx.size == 0:
        return
    for f in np.flatnonzero(a.face_frames & ~covered):
        nearest = covered_idx[np.argmin(np.abs(covered_idx - f))]
        if abs(int(nearest) - int(f)) <= max_distance and run_id[nearest] == run_id[f]:
            a.frame_probability[f] = a.frame_probability[nearest]
            a.frame_importance[f] = a.frame_importance[nearest]
            a.frame_maps[f] = a.frame_maps[nearest]
            a.held_frames[f] = True
