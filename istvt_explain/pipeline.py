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

from ._interim import explain, extract_face_clips, normalize_clip
from .errors import InputError
from .explain.explanation import Explanation

ProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as work advances (stage "faces" or "explain")."""

# Methods whose relevance is read from the attention maps only: no gradient needs to reach the
# backbone's weights, so the pipeline freezes them for the call (about a third less backward work).
_ATTENTION_METHODS = frozenset({"attention", "rollout", "relevance"})


@dataclass(frozen=True)
class PipelineOptions:
    """How a video is cut into clips and explained.

    Attributes:
        method: explanation method name (see ``istvt_explain.explain``).
        stride: frames between clip starts; None = the model's clip length (each frame once).
        face: which face track to follow (0 = the main face).
        detect_every: run the face detector every n frames and track in between.
        batch_size: clips per model call (memory against speed).
        threshold: fake probability at or above which the verdict is "fake".
    """

    method: str = "relevance"
    stride: int | None = None
    face: int = 0
    detect_every: int = 1
    batch_size: int = 4
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.stride is not None and self.stride < 1:
            raise InputError(f"stride must be a positive number of frames, got {self.stride}")
        if self.detect_every < 1:
            raise InputError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class StageTimer:
    """Wall-clock seconds per named stage, summed over calls (for the summary and the benchmark)."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


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
        frame_maps: (F, h, w) token-level spatial map in [0, 1] (per-clip min-max scaling, so
            frames of one clip stay comparable), NaN where no clip covers the frame.
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
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def clip_probability(self) -> np.ndarray:
        return self.explanation.fake_probability.detach().cpu().numpy().astype(np.float64)

    @property
    def video_probability(self) -> float:
        """Mean of the clip scores: the usual video-level protocol (DESIGN.md section 4)."""
        return float(self.clip_probability.mean())

    @property
    def verdict(self) -> str:
        return "fake" if self.video_probability >= self.threshold else "real"

    @property
    def processed(self) -> np.ndarray:
        """(F,) bool: frames that some clip covers (they have a map and a score)."""
        return ~np.isnan(self.frame_probability)

    @property
    def skipped_frames(self) -> list[int]:
        return np.flatnonzero(~self.processed).tolist()

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
    stride = options.stride or config.frames
    path = Path(video_path)

    with timer.stage("faces"):
        video = extract_face_clips(path, image_size=config.image_size, frames=config.frames, stride=stride,
                                   face=options.face, detect_every=options.detect_every)
    if progress:
        progress("faces", video.num_frames, video.num_frames)
    face_count = int(np.count_nonzero(video.face_frames))
    if face_count == 0:
        raise InputError(f"{path}: no face found in any of its {video.num_frames} frames")
    if len(video.clips) == 0:
        raise InputError(f"{path}: a face is visible in {face_count} frames, but never in "
                         f"{config.frames} consecutive frames (one clip)")

    explanation = _explain_clips(video.clips, model, options, progress, timer)
    width, height = _frame_size(video)
    analysis = VideoAnalysis(
        video_path=path, fps=float(video.fps), width=width, height=height, num_frames=int(video.num_frames),
        method=options.method, threshold=options.threshold, explanation=explanation,
        frame_indices=np.asarray(video.frame_indices, dtype=np.int64),
        boxes=np.asarray(video.boxes, dtype=np.float64), face_frames=np.asarray(video.face_frames, dtype=bool),
        frame_probability=np.empty(0), frame_importance=np.empty(0), frame_maps=np.empty(0),
        timings=timer.seconds,
    )
    _aggregate_frames(analysis)
    return analysis


def _frame_size(video) -> tuple[int, int]:
    """(width, height) of the video's frames, whatever order the clips object stores it in."""
    for names in (("width", "height"), ("frame_width", "frame_height")):
        if all(hasattr(video, n) for n in names):
            return int(getattr(video, names[0])), int(getattr(video, names[1]))
    w, h = video.frame_size
    boxes = np.asarray(video.boxes, dtype=np.float64)
    # The stand-in stores (width, height); accept (height, width) if the boxes say so.
    finite = boxes[~np.isnan(boxes).any(axis=1)]
    if finite.size and (finite[:, 2].max() > w * 1.5 or finite[:, 3].max() > h * 1.5):
        w, h = h, w
    return int(w), int(h)


def _explain_clips(clips: np.ndarray, model: torch.nn.Module, options: PipelineOptions,
                   progress: ProgressFn | None, timer: StageTimer) -> Explanation:
    """Explain the clips in batches; the forward pass is timed apart from the rest of the method."""
    device = next(model.parameters()).device
    forward_time = [0.0]
    start: list[float] = []
    pre = model.register_forward_pre_hook(lambda *_: start.append(time.perf_counter()))
    post = model.register_forward_hook(lambda *_: forward_time.__setitem__(0, forward_time[0] + time.perf_counter()
                                                                               - start.pop()))
    freeze = options.method in _ATTENTION_METHODS
    trainable = [p for p in model.backbone.parameters() if p.requires_grad] if freeze else []
    for p in trainable:
        p.requires_grad_(False)
    parts: list[Explanation] = []
    total = len(clips)
    begin = time.perf_counter()
    try:
        for first in range(0, total, options.batch_size):
            batch = normalize_clip(clips[first:first + options.batch_size]).to(device)
            try:
                parts.append(explain(model, batch, method=options.method))
            except ValueError as err:  # an unknown method or option: the user's input
                raise InputError(str(err).splitlines()[0]) from None
            if progress:
                progress("explain", min(first + options.batch_size, total), total)
    finally:
        pre.remove()
        post.remove()
        for p in trainable:
            p.requires_grad_(True)
    elapsed = time.perf_counter() - begin
    timer.add("model", forward_time[0])
    timer.add("explain", max(elapsed - forward_time[0], 0.0))
    return _concat(parts)


def _concat(parts: list[Explanation]) -> Explanation:
    first = parts[0]
    cat = lambda name: torch.cat([getattr(p, name).detach().float().cpu() for p in parts])  # noqa: E731
    return Explanation(cat("spatial"), cat("temporal"), cat("fake_probability"), cat("logits"),
                       first.method, first.target, dict(first.settings))


def _aggregate_frames(a: VideoAnalysis) -> None:
    """Average each frame's score, importance and map over the clips that hold it."""
    exp = a.explanation
    k, t, gh, gw = exp.spatial.shape
    maps = exp.normalized_spatial().numpy().astype(np.float32)
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
