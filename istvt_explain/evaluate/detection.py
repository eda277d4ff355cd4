"""Detection metrics: clip and video level ACC, ROC AUC, AP and EER (scikit-learn), per manipulation.

Scores are fake probabilities.  A video's score is the mean of its clip scores (the usual protocol,
docs/datasets.md).  The per-manipulation breakdown pits each manipulation's clips against all
real clips, as FaceForensics++ papers report it.  Scoring shards the data over the processes of a
``torchrun`` job without padding (a padded sampler would count clips twice) and gathers on rank 0.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score, roc_curve
from torch.utils.data import DataLoader, Dataset, Subset

from ..models.precision import DEFAULT_PRECISION, autocast

REAL_NAMES = ("real", "original", "")


@dataclass
class ScoreTable:
    """One row per scored clip.

    ``scores`` are fake probabilities, sigmoid of the model output (so calibrated when the model
    carries a temperature); ``logits`` that model output itself, when the table comes from
    ``score_dataset`` (empty otherwise, and at video level).
    """

    scores: list[float] = field(default_factory=list)
    labels: list[float] = field(default_factory=list)
    video_ids: list[str] = field(default_factory=list)
    manipulations: list[str] = field(default_factory=list)
    skipped: int = 0
    logits: list[float] = field(default_factory=list)
    skipped_items: list[dict[str, str]] = field(default_factory=list)
    """What was skipped, by name: ``{"video", "reason"}`` per unreadable clip or broken cache entry."""

    def __len__(self) -> int:
        return len(self.scores)

    def extend(self, other: ScoreTable) -> None:
        self.scores += other.scores
        self.labels += other.labels
        self.video_ids += other.video_ids
        self.manipulations += other.manipulations
        self.skipped += other.skipped
        self.logits += other.logits
        self.skipped_items += other.skipped_items

    @classmethod
    def merge(cls, tables: Iterable[ScoreTable]) -> ScoreTable:
        out = cls()
        for table in tables:
            out.extend(table)
        return out

    def video_level(self) -> ScoreTable:
        """Mean clip score per (video, label, manipulation)."""
        groups: dict[tuple[str, float, str], list[float]] = defaultdict(list)
        for s, y, v, m in zip(self.scores, self.labels, self.video_ids, self.manipulations, strict=True):
            groups[(v, y, m)].append(s)
        out = ScoreTable(skipped=self.skipped, skipped_items=list(self.skipped_items))
        for (v, y, m), scores in groups.items():
            out.scores.append(float(np.mean(scores)))
            out.labels.append(y)
            out.video_ids.append(v)
            out.manipulations.append(m)
        return out


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate where false positives equal false negatives, interpolated on the ROC curve."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    diff = fpr - fnr
    i = int(np.argmax(diff >= 0))  # first point where fpr >= fnr (fpr rises, fnr falls)
    if i == 0:
        return float(fpr[0])
    a, b = diff[i - 1], diff[i]
    w = a / (a - b) if a != b else 0.0
    return float(fpr[i - 1] + w * (fpr[i] - fpr[i - 1]))


def detection_metrics(labels: Iterable[float], scores: Iterable[float], threshold: float = 0.5) -> dict:
    """ACC at ``threshold``, ROC AUC, AP and EER; AUC, AP and EER are NaN with only one class."""
    y = np.asarray(list(labels), dtype=np.float64) >= 0.5
    s = np.asarray(list(scores), dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    out = {"n": int(y.size), "n_fake": int(y.sum()), "n_real": int((~y).sum())}
    if y.size == 0:
        return out | {"acc": math.nan, "auc": math.nan, "ap": math.nan, "eer": math.nan}
    out["acc"] = float(accuracy_score(y, s >= threshold))
    if y.all() or not y.any():
        return out | {"auc": math.nan, "ap": math.nan, "eer": math.nan}
    out["auc"] = float(roc_auc_score(y, s))
    out["ap"] = float(average_precision_score(y, s))
    out["eer"] = equal_error_rate(y, s)
    return out


def is_real(label: float) -> bool:
    return float(label) < 0.5


def report(table: ScoreTable, threshold: float = 0.5) -> dict:
    """The full report: clip and video level, and each manipulation against all reals."""
    video = table.video_level()
    out = {
        "clip": detection_metrics(table.labels, table.scores, threshold),
        "video": detection_metrics(video.labels, video.scores, threshold),
        "skipped": skipped_videos(table.skipped_items),
        "skipped_clips": table.skipped,
        "per_manipulation": {},
    }
    fakes = sorted({m for m, y in zip(table.manipulations, table.labels, strict=True) if not is_real(y)})
    if len(fakes) > 1:
        for name in fakes:
            out["per_manipulation"][name] = {
                level: detection_metrics(*_against_reals(t, name), threshold)
                for level, t in (("clip", table), ("video", video))
            }
    return out


def skipped_videos(items: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """One ``{"video", "reason"}`` per skipped video (its first reason), in the order first met."""
    seen: dict[str, dict[str, str]] = {}
    for item in items:
        seen.setdefault(str(item["video"]), {"video": str(item["video"]), "reason": str(item["reason"])})
    return list(seen.values())


def _against_reals(table: ScoreTable, manipulation: str) -> tuple[list[float], list[float]]:
    keep = [i for i, (y, m) in enumerate(zip(table.labels, table.manipulations, strict=True))
            if is_real(y) or m == manipulation]
    return [table.labels[i] for i in keep], [table.scores[i] for i in keep]


def roc_points(labels: Iterable[float], scores: Iterable[float]) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the ROC curve (for the figure)."""
    fpr, tpr, _ = roc_curve(np.asarray(list(labels)) >= 0.5, np.asarray(list(scores)))
    return fpr, tpr


# -- scoring ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SkippedItem:
    """What ``SkipBadItems`` gives for an unreadable item: which video, and why."""

    video: str
    reason: str


def collate_clips(items: list[dict | SkippedItem | None]) -> dict:
    """Stack clips and labels; drop items a loader marked as unreadable (``SkippedItem`` or None),
    counting them and keeping their names in ``skipped_items``."""
    good = [it for it in items if isinstance(it, dict)]
    batch = {
        "skipped": len(items) - len(good),
        "skipped_items": [{"video": it.video, "reason": it.reason} for it in items if isinstance(it, SkippedItem)],
        "video_id": [str(it.get("video_id", "")) for it in good],
        "manipulation": [str(it.get("manipulation", "")) for it in good],
    }
    if good:
        batch["clip"] = torch.stack([torch.as_tensor(it["clip"]) for it in good])
        batch["label"] = torch.tensor([float(it["label"]) for it in good], dtype=torch.float32)
        if all(it.get("mask") is not None for it in good):  # where each clip was manipulated (T, S, S)
            batch["mask"] = torch.stack([torch.as_tensor(it["mask"], dtype=torch.float32) for it in good])
    return batch


class SkipBadItems(Dataset):
    """Wrap a data set so that an unreadable item (missing or corrupt video) becomes a ``SkippedItem``
    with a warning, instead of ending the run; ``collate_clips`` drops, counts and names it."""

    SKIPPABLE = (OSError, ValueError, RuntimeError, EOFError, KeyError)

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict | SkippedItem:
        try:
            return self.dataset[index]
        except self.SKIPPABLE as err:
            text = str(err).strip().splitlines()
            reason = text[0] if text else type(err).__name__
            video = self._video(index)
            warnings.warn(f"skipping item {index} ({video}): {reason}", stacklevel=2)
            return SkippedItem(video, reason)

    def _video(self, index: int) -> str:
        """The item's video name when the data set can tell (``item_key``), else "item N"."""
        try:
            return str(self.dataset.item_key(index))
        except Exception:  # no item_key, or the data set cannot say: the index still names it
            return f"item {index}"

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getattr__(self, name: str):
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


@torch.no_grad()
def score_dataset(model: torch.nn.Module, dataset: Dataset, *, batch_size: int = 16,
                  rank: int = 0, world_size: int = 1, num_workers: int = 0,
                  precision: str = DEFAULT_PRECISION, progress: bool = False) -> ScoreTable:
    """Fake probabilities of this process's shard (indices rank, rank + world, ...) of ``dataset``.

    ``precision``: the model's arithmetic (``models.precision``).  Unreadable items are skipped and
    named (``skipped_items``); so are the broken cache entries the
    data set left out (its ``skipped`` list, reported by rank 0 only).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    shard = Subset(SkipBadItems(dataset), list(range(rank, len(dataset), world_size)))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_clips)
    was_training = model.training
    model.eval()
    table = ScoreTable()
    if rank == 0:
        table.skipped_items += [dict(item) for item in getattr(dataset, "skipped", None) or []]
    if progress:
        from tqdm import tqdm
        loader = tqdm(loader, desc="scoring", unit="batch", dynamic_ncols=True)
    try:
        for batch in loader:
            table.skipped += batch["skipped"]
            table.skipped_items += batch["skipped_items"]
            if "clip" not in batch:
                continue
            clips = batch["clip"].to(device, non_blocking=True)
            with autocast(precision, device):
                logits = model(clips)
            table.logits += logits.float().cpu().tolist()
            table.scores += torch.sigmoid(logits.float()).cpu().tolist()
            table.labels += batch["label"].tolist()
            table.video_ids += batch["video_id"]
            table.manipulations += batch["manipulation"]
    finally:
        model.train(was_training)
    return table
