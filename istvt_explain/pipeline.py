"""Video file -> faces -> clips -> model -> explanations -> per-frame maps and scores.

The one library call behind ``istvt-explain VIDEO`` and the notebooks: it returns a typed
``VideoAnalysis`` that the renderers, the JSON report and the maps file read, so none of
them ever touches the model.  Rendering is a separate pass (``render.video``), which keeps
this function useful for batch scoring where nobody wants a video.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .data.clips import VideoClips, extract_face_clips, normalize_clip
from .data.detectors import FaceDetector, create_detector
from .data.video import VideoReader
from .errors import InputError
from .explain import available_methods, explain
from .explain.explanation import DisplayScale, Explanation
from .precision import PRECISIONS
from .segments import DEFAULT_MAX_GAP, DEFAULT_MIN_CLIPS, Segment, find_segments

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as work advances (stage "faces" or "explain")."""


@dataclass(frozen=True)
class PipelineOptions:
    """How a video is cut into clips and explained.

    Attributes:
        method: explanation method name (see ``istvt_explain.explain``).
        stride: frames between clip starts; None = the model's clip length (each frame once).
        face: which face track to follow (0 = the largest face).
        detect_every: run the face detector every n frames and track in between (3, as the command
            line: a third of the detector's cost, and the tracker interpolates faces that move
            normally; 1 for fast motion).
        batch_size: clips per model call (memory against speed).
        threshold: clip score at or above which a clip counts as fake; the verdict is "fake" when
            the fake clips form at least one manipulated segment (see ``istvt_explain.segments``).
        detector: face detector name ("mtcnn", "haar"), or a ready ``FaceDetector``.
        min_face: smallest face the detector looks for, in pixels of the frame shrunk to at most
            640 pixels a side.  Why 40 and not MTCNN's usual 20: faces that small make useless
            crops for the model, and skipping them halves the detector's time (its image pyramid
            starts four times smaller).
        segment_min_clips: the fake evidence a manipulated segment needs, in clip lengths (capped
            at what the face track offers, so a one-clip video can be fake).
        segment_max_gap: how long a stretch without fake evidence (a dip below the threshold, or
            no face) a segment may bridge, in clip lengths.
        precision: the model's arithmetic (``istvt_explain.precision``): auto (bf16 on a GPU that
            supports it, fp32 elsewhere), fp32, bf16 or fp16.
    """

    method: str = "relevance"
    stride: int | None = None
    face: int = 0
    detect_every: int = 3
    batch_size: int = 4
    threshold: float = 0.5
    detector: str | FaceDetector = "mtcnn"
    min_face: int = 40
    segment_min_clips: int = DEFAULT_MIN_CLIPS
    segment_max_gap: int = DEFAULT_MAX_GAP
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.stride is not None and self.stride < 1:
            raise InputError(f"stride must be a positive number of frames, got {self.stride}")
        if self.detect_every < 1:
            raise InputError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.min_face < 12:
            raise InputError(f"min_face must be >= 12 pixels (MTCNN's smallest window), got {self.min_face}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.threshold <= 1.0:
            raise InputError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.segment_min_clips < 1:
            raise InputError(f"segment_min_clips must be >= 1, got {self.segment_min_clips}")
        if self.segment_max_gap < 0:
            raise InputError(f"segment_max_gap must be >= 0, got {self.segment_max_gap}")


@dataclass
class StageTimer:
    """Wall-clock seconds per named stage, summed over calls (for the summary and the benchmark)."""

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    """Process CPU time per stage (all threads): on a shared machine it varies less than wall time."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start, time.process_time() - cpu)

    def add(self, name: str, seconds: float, cpu_seconds: float | None = None) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        if cpu_seconds is not None:
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + cpu_seconds


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
        """The manipulated segments, in time order, frames 0-based (``istvt_explain.segments``)."""
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


def optimize_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """Store the convolution weights channels-last on the CPU, in place; return the model.

    Why: the Xception entry flow dominates the tiny preset's cost, and oneDNN's convolutions
    run about twice as fast with channels-last weights (measured in ``benchmarks/bench_e2e.py``);
    results are the same up to float rounding.  On a GPU nothing changes.
    """
    if next(model.parameters()).device.type == "cpu":
        backbone = getattr(model, "backbone", model)
        backbone.to(memory_format=torch.channels_last)
    return model


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


def analyze_video(
    video_path: str | Path,
    model: torch.nn.Module,
    options: PipelineOptions | None = None,
    progress: ProgressFn | None = None,
    timer: StageTimer | None = None,
) -> VideoAnalysis:
    """Find the face, classify every clip and explain it; aggregate to per-frame maps and scores.

    Raises ``InputError`` for a file that is not a readable video and for a video in which no
    face is found long enough to make one clip.
    """
    options = options or PipelineOptions()
    timer = timer or StageTimer()
    config = model.config
    path = Path(video_path)
    if options.method not in available_methods():
        raise InputError(f"unknown explanation method {options.method!r}; choose one of "
                         f"{', '.join(available_methods())}")

    if progress:  # the face pass reports no steps: show the stage, sized by the container's count
        progress("faces", 0, max(VideoReader(path).frame_count, 1))
    with timer.stage("faces"):
        video = find_face_clips(path, config.image_size, config.frames, options)
    if progress:
        progress("faces", video.num_frames, video.num_frames)
    return analyze_clips(video, model, options, progress, timer)


def find_face_clips(video_path: str | Path, image_size: int, frames: int, options: PipelineOptions) -> VideoClips:
    """The face pass of ``analyze_video`` alone (decode, detect, track, crop): no model needed.

    Why apart: ``scan`` runs it in worker processes for the next videos while the model works.
    """
    return extract_face_clips(Path(video_path), image_size=image_size, frames=frames,
                              stride=options.stride or frames, face=options.face,
                              detect_every=options.detect_every, detector=_detector(options))


def analyze_clips(video: VideoClips, model: torch.nn.Module, options: PipelineOptions | None = None,
                  progress: ProgressFn | None = None, timer: StageTimer | None = None,
                  explanation: Explanation | None = None) -> VideoAnalysis:
    """The rest of ``analyze_video`` once the face clips are cut: classify, explain, aggregate.

    ``explanation``: the clips' explanation when the caller made it already (``scan`` explains the
    clips of several videos in one model call); it must hold ``video``'s clips, in order.
    """
    options = options or PipelineOptions()
    timer = timer or StageTimer()
    config = model.config
    path = Path(video.path)
    face_count = int(np.count_nonzero(video.face_frames))
    if face_count == 0:
        raise InputError(f"{path}: no face found in any of its {video.num_frames} frames")
    if len(video.frame_indices) == 0:
        raise InputError(f"{path}: a face is visible in {face_count} frames, but never in "
                         f"{config.frames} consecutive frames (one clip)")

    if explanation is None:
        explanation = _explain_clips(video, model, options, progress, timer)
    else:
        _require_finite_scores(explanation, path, 0)
    height, width = (int(v) for v in video.frame_size)  # (H, W), as VideoReader.frame_size
    analysis = VideoAnalysis(
        video_path=path, fps=float(video.fps), width=width, height=height, num_frames=int(video.num_frames),
        method=options.method, threshold=options.threshold, explanation=explanation,
        frame_indices=np.asarray(video.frame_indices, dtype=np.int64),
        boxes=np.asarray(video.boxes, dtype=np.float64), face_frames=np.asarray(video.face_frames, dtype=bool),
        frame_probability=np.empty(0), frame_importance=np.empty(0), frame_maps=np.empty(0),
        timings=timer.seconds, segment_min_clips=options.segment_min_clips,
        segment_max_gap=options.segment_max_gap,
        face_tracks=[track.summary() for track in video.tracks], track_index=int(video.track_index),
    )
    _aggregate_frames(analysis)
    return analysis


def _detector(options: PipelineOptions) -> FaceDetector:
    """The detector, built once per video with our ``min_face`` (see ``PipelineOptions``).

    A ready detector object is used as it is (``multiface.analyze_every_face`` replays one detection pass).
    """
    if not isinstance(options.detector, str):
        return options.detector
    try:
        return create_detector(options.detector, min_face=options.min_face)
    except ValueError as err:  # an unknown detector name
        raise InputError(str(err)) from None


def _explain_clips(video: VideoClips, model: torch.nn.Module, options: PipelineOptions,
                   progress: ProgressFn | None, timer: StageTimer) -> Explanation:
    """Explain the clips in batches (each batch cut from the shared crops: clips overlap when stride < T).

    Every method runs its own forward pass (the classification comes with the explanation), so
    the "explain" stage includes the model; ``benchmarks/bench_e2e.py`` times a plain forward apart.
    """
    device = next(model.parameters()).device
    parts: list[Explanation] = []
    positions = video.clip_positions
    total = len(positions)
    for first in range(0, total, options.batch_size):
        with timer.stage("explain"):
            # uint8 to the device, scaled there: a quarter of the bytes to copy, and no CPU pass over them
            crops = torch.from_numpy(video.crops[positions[first:first + options.batch_size]])  # a fresh copy
            batch = normalize_clip(crops.to(device))
            try:
                parts.append(explain(model, batch, method=options.method, precision=options.precision))
            except ValueError as err:  # an unknown method or option: the user's input
                raise InputError(str(err).splitlines()[0]) from None
        _require_finite_scores(parts[-1], video.path, first)
        if progress:
            progress("explain", min(first + options.batch_size, total), total)
    return _concat(parts)


class ModelOutputError(InputError):
    """The model scored a clip NaN or infinite: broken weights or a numeric fault, never a verdict."""


def _require_finite_scores(part: Explanation, path: Path, first: int) -> None:
    """Refuse non-finite clip scores: they would otherwise read as "real" with every frame skipped."""
    scores = part.fake_probability.detach()
    bad = torch.nonzero(~torch.isfinite(scores.float().reshape(len(scores), -1)).all(dim=1)).flatten()
    if len(bad):
        raise ModelOutputError(f"{path}: the model gave clip {first + int(bad[0])} a NaN or infinite score; "
                               "its weights or this input are broken, so no verdict is given")


def _concat(parts: list[Explanation]) -> Explanation:
    first = parts[0]
    cat = lambda name: torch.cat([getattr(p, name).detach().float().cpu() for p in parts])  # noqa: E731
    return Explanation(cat("spatial"), cat("temporal"), cat("fake_probability"), cat("logits"),
                       first.method, first.target, dict(first.settings))


def _aggregate_frames(a: VideoAnalysis) -> None:
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
    _hold_uncovered(a, max_distance=t - 1)


def _hold_uncovered(a: VideoAnalysis, max_distance: int) -> None:
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
