"""The clips the model finds hard: wrong, or unsure, and what it looked at there.

Accuracy says how often the model fails; the hard samples say *where*.  From
the per-clip scores of an evaluation run we rank clips by their loss (binary
cross-entropy: confident mistakes first) and by their closeness to the decision
threshold (the clips a small change would flip), list the false positives and
false negatives, then explain each selected clip with the chosen methods.
"""

from __future__ import annotations

import csv
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..attribution.explanation import Explanation
from ..errors import InputError
from ..models.device import model_device
from .common import ExplainFn, explain_batched, fake_probabilities

if TYPE_CHECKING:
    from ..data.clips import VideoClips

EPS = 1e-7
REASONS = ("false_negative", "false_positive", "high_loss", "near_threshold")


@dataclass(frozen=True)
class ClipScore:
    """The model's answer on one clip of an evaluation run.

    Attributes:
        id: unique clip name (``video#clip`` by default).
        video: the source video (a path when the clip can be re-extracted from it).
        clip: the clip's index within its video.
        label: ground truth, 1 = fake, 0 = real.
        probability: the model's fake probability.
        frame_indices: the clip's frame numbers in the video, when known.
    """

    id: str
    video: str
    clip: int
    label: int
    probability: float
    frame_indices: tuple[int, ...] | None = None

    @property
    def loss(self) -> float:
        """Binary cross-entropy of the clip: large for confident mistakes."""
        p = min(max(self.probability, EPS), 1 - EPS)
        return -math.log(p) if self.label == 1 else -math.log(1 - p)

    def margin(self, threshold: float = 0.5) -> float:
        """Distance of the probability to the threshold: small means unsure."""
        return abs(self.probability - threshold)

    def predicted(self, threshold: float = 0.5) -> int:
        return int(self.probability >= threshold)


@dataclass
class HardSamples:
    """Rankings of an evaluation run's clips (each list hardest first) and why each was selected."""

    threshold: float
    by_loss: list[ClipScore]
    near_threshold: list[ClipScore]
    false_positives: list[ClipScore]
    false_negatives: list[ClipScore]
    total: int

    def reasons(self) -> dict[str, list[str]]:
        """Clip id -> the lists it appears in."""
        out: dict[str, list[str]] = {}
        for reason, items in zip(REASONS, (self.false_negatives, self.false_positives, self.by_loss,
                                           self.near_threshold), strict=True):
            for s in items:
                out.setdefault(s.id, []).append(reason)
        return out

    def selected(self, limit: int | None = None) -> list[ClipScore]:
        """Every listed clip once, taking turns between the lists (false negatives, false positives,
        highest loss, least sure), so that a short gallery still shows every kind of hard sample."""
        lists = [list(x) for x in (self.false_negatives, self.false_positives, self.by_loss, self.near_threshold)]
        seen: dict[str, ClipScore] = {}
        depth = max(len(x) for x in lists)
        for i in range(depth):
            for items in lists:
                if i < len(items):
                    seen.setdefault(items[i].id, items[i])
        chosen = list(seen.values())
        return chosen[:limit] if limit is not None else chosen

    def summary(self) -> dict[str, Any]:
        return {"clips": self.total, "threshold": self.threshold,
                "false_positives": len(self.false_positives), "false_negatives": len(self.false_negatives),
                "hardest": [(s.id, round(s.loss, 4)) for s in self.by_loss[:3]],
                "least_sure": [(s.id, round(s.probability, 4)) for s in self.near_threshold[:3]]}

    def to_csv(self, path: str | Path, limit: int | None = None) -> Path:
        """One line per selected clip: scores, ranks in each list and the reasons."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rank_loss = {s.id: i + 1 for i, s in enumerate(self.by_loss)}
        rank_margin = {s.id: i + 1 for i, s in enumerate(self.near_threshold)}
        reasons = self.reasons()
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "video", "clip", "label", "probability", "predicted", "loss", "margin",
                             "loss_rank", "threshold_rank", "reasons", "frame_indices"])
            for s in self.selected(limit):
                writer.writerow([s.id, s.video, s.clip, s.label, f"{s.probability:.6f}",
                                 s.predicted(self.threshold), f"{s.loss:.6f}", f"{s.margin(self.threshold):.6f}",
                                 rank_loss.get(s.id, ""), rank_margin.get(s.id, ""), ";".join(reasons[s.id]),
                                 " ".join(map(str, s.frame_indices)) if s.frame_indices else ""])
        return path


def rank_hard_samples(scores: Iterable[ClipScore], *, threshold: float = 0.5, top: int = 8) -> HardSamples:
    """Rank clips by loss and by closeness to ``threshold``; keep ``top`` of each list.

    False positives / negatives are listed in full (worst first): a reader must see every mistake.
    Ties are broken by id so the ranking never depends on input order.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    scores = list(scores)
    if not scores:
        raise ValueError("no clip scores to rank")
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    by_loss = sorted(scores, key=lambda s: (-s.loss, s.id))
    near = sorted(scores, key=lambda s: (s.margin(threshold), s.id))
    fp = [s for s in by_loss if s.label == 0 and s.predicted(threshold) == 1]
    fn = [s for s in by_loss if s.label == 1 and s.predicted(threshold) == 0]
    return HardSamples(threshold, by_loss[:top], near[:top], fp, fn, len(scores))


def score_clips(model: torch.nn.Module, clips: np.ndarray, labels: Sequence[int], ids: Sequence[str],
                videos: Sequence[str] | None = None, batch_size: int = 8) -> list[ClipScore]:
    """Score uint8 clips in memory (an evaluation run without files)."""
    probs = fake_probabilities(model, clips, batch_size=batch_size)
    videos = list(videos) if videos is not None else list(ids)
    return [ClipScore(str(ids[i]), str(videos[i]), i, int(labels[i]), float(probs[i])) for i in range(len(probs))]


# -- explaining the hard samples -------------------------------------------------------------------
@dataclass
class ExplainedSample:
    """A hard sample, its frames and its explanations by method."""

    score: ClipScore
    frames: np.ndarray
    explanations: dict[str, Explanation] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """Row label: the clip, its truth and score, and the mistake it is (FN / FP) if any."""
        truth = "fake" if self.score.label == 1 else "real"
        mistake = {"false_negative": " FN", "false_positive": " FP"}
        tag = "".join(mistake[r] for r in self.reasons if r in mistake)
        return f"{self.score.id}\n{truth}, p={self.score.probability:.2f}{tag}"


ClipSource = Callable[[ClipScore], np.ndarray]
"""Given a clip's score, its uint8 frames (T, S, S, 3)."""


def clips_from_array(clips: np.ndarray, scores: Sequence[ClipScore]) -> ClipSource:
    """A clip source for clips held in memory, in the same order as ``scores``."""
    index = {s.id: i for i, s in enumerate(scores)}
    return lambda score: clips[index[score.id]]


class VideoClipSource:
    """A clip source that re-extracts clips from their videos, keeping the last few videos' clips.

    Only the last ``keep_videos`` videos asked for are kept, not every video: a selection spread
    over a thousand videos must not hold them all in memory.  Ask for clips video by video
    (``explain_hard_samples`` does) and each video is decoded once.

    When the score knows the clip's frame numbers, the clip with those frames is taken;
    otherwise the clip with the same index.
    """

    def __init__(self, image_size: int, frames: int, *, stride: int | None = None, detector: str = "mtcnn",
                 root: str | Path | None = None, keep_videos: int = 2) -> None:
        if keep_videos < 1:
            raise ValueError(f"keep_videos must be >= 1, got {keep_videos}")
        self.image_size, self.frames, self.stride, self.detector = image_size, frames, stride, detector
        self.root = Path(root) if root is not None else None
        self.keep_videos = keep_videos
        self._kept: OrderedDict[str, VideoClips] = OrderedDict()

    @property
    def videos_kept(self) -> list[str]:
        """The videos whose clips are held now, oldest first."""
        return list(self._kept)

    def _clips_of(self, score: ClipScore) -> VideoClips:
        if score.video in self._kept:
            self._kept.move_to_end(score.video)
            return self._kept[score.video]
        from ..data.clips import extract_face_clips

        path = self.root / score.video if self.root is not None else Path(score.video)
        if not path.is_file():
            raise InputError(f"{path}: video of clip {score.id} not found (use --root to say where videos are)")
        while len(self._kept) >= self.keep_videos:
            self._kept.popitem(last=False)
        found = extract_face_clips(path, image_size=self.image_size, frames=self.frames, stride=self.stride,
                                   detector=self.detector)
        self._kept[score.video] = found
        return found

    def __call__(self, score: ClipScore) -> np.ndarray:
        found = self._clips_of(score)
        if score.frame_indices is not None:
            hits = np.flatnonzero((found.frame_indices == np.asarray(score.frame_indices)).all(axis=1))
            if len(hits):
                return found.clips[int(hits[0])]
        if not 0 <= score.clip < len(found.frame_indices):
            raise InputError(f"{score.video}: clip {score.clip} asked for, the video gives "
                             f"{len(found.frame_indices)}")
        return found.clips[score.clip]


def clips_from_videos(image_size: int, frames: int, *, stride: int | None = None, detector: str = "mtcnn",
                      root: str | Path | None = None, keep_videos: int = 2) -> VideoClipSource:
    """A clip source that re-extracts clips from their videos (``VideoClipSource``)."""
    return VideoClipSource(image_size, frames, stride=stride, detector=detector, root=root, keep_videos=keep_videos)


def score_dataset_clips(model: torch.nn.Module, dataset: Sequence[Mapping[str, Any]],
                        indices: Sequence[int] | None = None, batch_size: int = 8) -> list[ClipScore]:
    """Score items of a data set (dicts with ``clip``, ``label``, optional ``video_id``/``manipulation``).

    ``ClipScore.clip`` is the item's index, so ``clips_from_dataset_items`` finds it
    again without holding every clip in memory.
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    device = model_device(model)
    out: list[ClipScore] = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        items = [dataset[i] for i in chunk]
        batch = torch.stack([torch.as_tensor(it["clip"]) for it in items]).to(device=device, dtype=torch.float32)
        with torch.no_grad():
            logits = model(batch)
        probs = torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, -1)[:, 1]
        for i, it, p in zip(chunk, items, probs.float().cpu().tolist(), strict=True):
            video = str(it.get("video_id", f"item{i}"))
            manipulation = str(it.get("manipulation") or "")
            out.append(ClipScore(f"{i}:{video}" + (f":{manipulation}" if manipulation else ""), video, i,
                                 int(float(it["label"]) >= 0.5), float(p)))
    return out


def clips_from_dataset_items(dataset: Sequence[Mapping[str, Any]]) -> ClipSource:
    """A clip source reading item ``score.clip`` of a data set, back to uint8 frames."""
    from .clipsets import to_uint8_frames

    return lambda score: to_uint8_frames(dataset[score.clip]["clip"])


def explain_hard_samples(model: torch.nn.Module, hard: HardSamples, source: ClipSource, *,
                         methods: Sequence[str] = ("relevance",), limit: int | None = 12, batch_size: int = 4,
                         explain_fn: ExplainFn | None = None,
                         method_options: Mapping[str, dict[str, Any]] | None = None) -> list[ExplainedSample]:
    """Explain every selected hard sample (at most ``limit``) with each method."""
    chosen = hard.selected(limit)
    if not chosen:
        return []
    reasons = hard.reasons()
    # Loaded video by video (a stable sort keeps each video's clips in rank order), so that a
    # source that re-extracts clips decodes each video once while holding only a few.
    loading_order = sorted(range(len(chosen)), key=lambda i: chosen[i].video)
    loaded = {i: source(chosen[i]) for i in loading_order}
    frames = np.stack([loaded[i] for i in range(len(chosen))])
    samples = [ExplainedSample(s, frames[i], {}, reasons[s.id]) for i, s in enumerate(chosen)]
    for method in methods:
        options = dict((method_options or {}).get(method, {}))
        exps = explain_batched(model, frames, method, batch_size=batch_size, explain_fn=explain_fn, options=options)
        for sample, exp in zip(samples, exps, strict=True):
            sample.explanations[method] = exp
    return samples
