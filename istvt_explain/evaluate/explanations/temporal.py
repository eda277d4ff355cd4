"""Temporal faithfulness (docs/judging.md): do the frames a method ranks first matter most to the model?

Replace the k most important frames, k random ones and the k least important by a ``frozen`` frame
(the nearest kept neighbour: the clip simply stands still) or a ``blur`` copy.  The model's probability
is measured once per clip for *every* k-subset of frames, so "random k" is the exact mean over subsets
and the gain of a method is the drop of its top-k subset minus that mean.  A model that reacts alike to
every removal (all subsets give the same drop) leaves nothing to judge: the criterion says n/a then.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .faithfulness import blurred, frame_mix_probability
from .settings import FRAME_REMOVALS


def replace_frames(clip: torch.Tensor, frames: Sequence[int] | torch.Tensor, removal: str = "frozen"
                   ) -> torch.Tensor:
    """A copy of ``clip`` (T, 3, H, W) with ``frames`` removed: ``frozen`` repeats the nearest kept
    frame (the earlier one on a tie), ``blur`` blurs them, ``grey`` sets them to 0 (the normalised grey)."""
    chosen = sorted({int(f) for f in torch.as_tensor(frames).reshape(-1).tolist()})
    t = clip.shape[0]
    kept = [f for f in range(t) if f not in chosen]
    out = clip.clone()
    if not chosen:
        return out
    if removal == "frozen":
        if not kept:
            raise ValueError("a frozen clip needs at least one kept frame")
        for f in chosen:
            out[f] = clip[_nearest_kept(f, kept)]
    elif removal == "blur":
        out[chosen] = blurred(clip[chosen])
    elif removal == "grey":
        out[chosen] = 0.0
    else:
        raise ValueError(f"unknown frame removal {removal!r}; choose one of {', '.join(FRAME_REMOVALS)}, grey")
    return out


def _nearest_kept(frame: int, kept: Sequence[int]) -> int:
    """The kept frame a frozen clip shows in place of ``frame``: the nearest, the earlier one on a tie."""
    return min(kept, key=lambda k: (abs(k - frame), k))


@dataclass(frozen=True)
class FrameRemovalTable:
    """The explained class's probability drop for every k-subset of frames of one clip."""

    subsets: list[tuple[int, ...]]
    drops: np.ndarray  # (len(subsets),) probability of the clip minus probability after removal

    @property
    def random_drop(self) -> float:
        return float(self.drops.mean())

    @property
    def spread(self) -> float:
        """Standard deviation of the drop over subsets: 0 when the model reacts alike to any removal."""
        return float(self.drops.std())

    def drop_of(self, frames: Sequence[int]) -> float:
        return float(self.drops[self.subsets.index(tuple(sorted(int(f) for f in frames)))])


def frame_removal_table(model: nn.Module, clip: torch.Tensor, index: int, k: int, removal: str,
                        batch: int = 16) -> FrameRemovalTable:
    """Probability drops for all C(T, k) ways to remove k frames (shared by every method)."""
    t = clip.shape[0]
    if not 1 <= k < t:
        raise ValueError(f"k must be in 1..{t - 1} for clips of {t} frames, got {k}")
    subsets = list(itertools.combinations(range(t), k))
    pool, picks = _frame_pool(clip, subsets, removal)
    probs = frame_mix_probability(model, pool, picks, index, batch).cpu().numpy()
    return FrameRemovalTable(subsets, float(probs[0]) - probs[1:])


def _frame_pool(clip: torch.Tensor, subsets: Sequence[tuple[int, ...]], removal: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct frames of the clip and of every removal of ``subsets`` (its first row the clip
    itself), and which frame each of those clips shows when: the same clips as ``replace_frames``."""
    t = clip.shape[0]
    replaced = {"frozen": None, "blur": lambda: blurred(clip), "grey": lambda: torch.zeros_like(clip)}
    if removal not in replaced:
        raise ValueError(f"unknown frame removal {removal!r}; choose one of {', '.join(FRAME_REMOVALS)}, grey")
    pool = clip if replaced[removal] is None else torch.cat([clip, replaced[removal]()])
    rows = [list(range(t))]
    for subset in subsets:
        chosen = set(subset)
        kept = [f for f in range(t) if f not in chosen]
        if removal == "frozen" and not kept:
            raise ValueError("a frozen clip needs at least one kept frame")
        row = []
        for f in range(t):
            if f not in chosen:
                row.append(f)
            elif removal == "frozen":
                row.append(_nearest_kept(f, kept))
            else:
                row.append(t + f)
        rows.append(row)
    return pool, torch.tensor(rows)


def top_and_bottom(frame_importance: torch.Tensor, k: int, generator: torch.Generator | None = None
                   ) -> tuple[list[int], list[int]]:
    """The k most and the k least important frames.  Exact ties are broken at random, by noise scaled to
    the importances' own range, so that a curve whose values are all tiny is still read as it is."""
    values = frame_importance.detach().double().cpu().reshape(-1)
    span = float(values.max() - values.min())
    scale = span if span > 0 else max(float(values.abs().max()), 1e-300)
    noise = torch.rand(values.numel(), generator=generator, dtype=torch.float64) * 1e-9 * scale
    order = torch.argsort(values + noise, descending=True)
    return order[:k].tolist(), order[-k:].tolist()
