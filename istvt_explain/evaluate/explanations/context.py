"""What every criterion of one judging run shares: the clips, who is in them, what the model says about
them, the reference curves of a random ranking, and each method's maps, each computed once."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ...attribution.base import Attribution
from ...attribution.batching import explain_batches
from ...attribution.explanation import Explanation
from ..statistics import mean_interval
from .faithfulness import (
    CurveSettings,
    curve_auc,
    deletion_insertion,
    removed_clip,
    target_probability,
    token_ranking,
)
from .localisation import binary_mask
from .temporal import FrameRemovalTable, frame_removal_table

FAKE, REAL = 1, 0
CLASS_NAMES = {FAKE: "fake", REAL: "real"}
StepsFn = Callable[[Sequence[Any], str], Sequence[Any]]  # wraps a loop over clips (a progress bar or nothing)


@dataclass
class JudgedMethod:
    """A method under judgement: its class, options and the clips it is judged on."""

    name: str
    cls: type[Attribution]
    options: dict[str, Any]
    subset: list[int]  # indices of the judged clips
    label: str = ""
    _maps: Explanation | None = None

    def explain(self, model: nn.Module, clips: torch.Tensor, target: Sequence[int] | torch.Tensor,
                batch_size: int) -> Explanation:
        """Maps of ``clips`` for one target class per clip, ``batch_size`` clips at a time, on the CPU."""
        return explain_batches(model, clips, self.name, target=target, batch_size=batch_size,
                               explain_fn=self._explain_fn, **self.options)

    def _explain_fn(self, model: nn.Module, clips: torch.Tensor, method: str, target, **options) -> Explanation:
        return self.cls(model, **options).attribute(clips, target=target)


@dataclass
class JudgingContext:
    """The judging set, the model's answers on it, and the references shared by every method."""

    model: nn.Module
    clips: torch.Tensor  # (K, T, 3, H, W) normalised, on the model's device
    masks: torch.Tensor | None  # (K, T, H, W) soft manipulation masks, zero for real clips
    identities: list[str]  # (K,) who each clip shows: the unit the bootstrap resamples
    settings: Any  # JudgingSettings
    steps: StepsFn
    fake_probability: torch.Tensor = field(init=False)
    explained: torch.Tensor = field(init=False)  # (K,) the predicted class, which every map explains
    _ends: dict[str, np.ndarray] = field(default_factory=dict)
    _random: dict[str, np.ndarray] = field(default_factory=dict)
    _frames: dict[str, list[FrameRemovalTable]] = field(default_factory=dict)
    _curves: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fake_probability = target_probability(self.model, self.clips, FAKE, self.settings.batch_size).cpu()
        self.explained = (self.fake_probability >= 0.5).long()

    # -- the set -------------------------------------------------------------------------------
    @property
    def count(self) -> int:
        return self.clips.shape[0]

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        g = self.model.config.grid
        return self.clips.shape[1], g, g

    def groups(self, clips: Sequence[int]) -> list[str]:
        return [self.identities[i] for i in clips]

    def interval(self, values: Sequence[float], clips: Sequence[int]):
        """Mean and interval of per-clip ``values`` over people (``statistics.mean_interval``)."""
        return mean_interval(values, self.settings.seed, self.groups(clips))

    def manipulated(self) -> np.ndarray:
        """(K,) bool: the clips whose mask marks a manipulation."""
        if self.masks is None:
            return np.zeros(self.count, bool)
        return (self.masks.flatten(1).amax(dim=1) > 0).cpu().numpy()

    def binary_mask(self, clip: int) -> torch.Tensor:
        return binary_mask(self.masks[clip].cpu())

    # -- references: the removals' own effect, a random ranking, every frame subset --------------
    def whole_clip_effect(self, removal: str) -> np.ndarray:
        """(K,) probability of the explained class with every token removed, minus the clip's."""
        if removal not in self._ends:
            gone = torch.stack([removed_clip(c, removal) for c in self.clips])
            p_gone = target_probability(self.model, gone, self.explained.to(self.clips.device),
                                        self.settings.batch_size).cpu().numpy()
            p_clip = np.where(self.explained.numpy() == FAKE, self.fake_probability.numpy(),
                              1 - self.fake_probability.numpy())
            self._ends[removal] = np.stack([p_clip, p_gone], axis=1)
        ends = self._ends[removal]
        return ends[:, 1] - ends[:, 0]

    def judges(self, removal: str, klass: int) -> tuple[bool, str]:
        """Whether ``removal`` can judge maps of class ``klass``: only where removing everything lowers the
        class's probability, by an interval over people below zero; else a note saying why not."""
        effect = self.whole_clip_effect(removal)
        members = [i for i in range(self.count) if int(self.explained[i]) == klass]
        interval = self.interval(effect[members], members)
        name = CLASS_NAMES[klass]
        if interval.n == 0:
            return False, ""
        if interval.high < 0:
            return True, ""
        return False, (f"removing every token by '{removal}' changes p({name}) of the clips explained as {name} "
                       f"by {interval.text()} (not below 0): it does not remove their evidence, so deletion and "
                       f"insertion are not judged with it for them")

    def random_auc(self, removal: str) -> np.ndarray:
        """(K, 2) deletion and insertion AUC of a random token ranking, per clip."""
        if removal not in self._random:
            self.whole_clip_effect(removal)
            generator = torch.Generator().manual_seed(self.settings.seed + 7)
            aucs = []
            for i in self.steps(range(self.count), f"random rankings, {removal}"):
                order = torch.randperm(math.prod(self.grid_shape), generator=generator)
                aucs.append(self._aucs(i, order, removal, generator))
            self._random[removal] = np.array(aucs)
        return self._random[removal]

    def curves(self, method: JudgedMethod, spatial: torch.Tensor, removal: str) -> np.ndarray:
        """(len(subset), 2) deletion and insertion AUC of the method's ranking, per judged clip."""
        key = (method.name, removal)
        if key not in self._curves:
            self.whole_clip_effect(removal)
            generator = torch.Generator().manual_seed(self.settings.seed)
            aucs = []
            for j, i in self.steps(list(enumerate(method.subset)), f"{method.name}: curves, {removal}"):
                aucs.append(self._aucs(i, token_ranking(spatial[j], generator), removal, generator))
            self._curves[key] = np.array(aucs)
        return self._curves[key]

    def _aucs(self, clip: int, order: torch.Tensor, removal: str, generator: torch.Generator) -> tuple[float, float]:
        curve = CurveSettings(steps=self.settings.steps, batch=2 * self.settings.batch_size)
        deletion, insertion = deletion_insertion(self.model, self.clips[clip], int(self.explained[clip]), order,
                                                 self.grid_shape, curve, removal,
                                                 tuple(self._ends[removal][clip]), generator)
        return curve_auc(deletion), curve_auc(insertion)

    def frame_tables(self, removal: str) -> list[FrameRemovalTable]:
        """Every clip's probability drop for every k-subset of frames removed by ``removal``."""
        if removal not in self._frames:
            self._frames[removal] = [
                frame_removal_table(self.model, self.clips[i], int(self.explained[i]), self.settings.top_k, removal,
                                    self.settings.batch_size)
                for i in self.steps(range(self.count), f"frame removals, {removal}")]
        return self._frames[removal]

    # -- the methods' maps --------------------------------------------------------------------------
    def maps(self, method: JudgedMethod) -> Explanation:
        """The method's maps of its judged clips, each for the class the model predicts (computed once)."""
        if method._maps is None:
            subset = method.subset
            method._maps = method.explain(self.model, self.clips[subset], self.explained[subset].tolist(),
                                          self.settings.batch_size)
            method.label = method._maps.settings.get("label", method.name) or method.name
        return method._maps


def spread_subset(identities: Sequence[str], wanted: int | None) -> list[int]:
    """All clips, or ``wanted`` of them taken in turn from every person, each person's in their order (so a
    subset still spans people, and a real clip and its fake, which sit side by side, stay together)."""
    count = len(identities)
    if not wanted or wanted >= count:
        return list(range(count))
    by_person: dict[str, list[int]] = {}
    for i, person in enumerate(identities):
        by_person.setdefault(person, []).append(i)
    queues = [list(v) for v in by_person.values()]
    chosen: list[int] = []
    while len(chosen) < wanted:
        for queue in queues:
            if queue and len(chosen) < wanted:
                chosen.append(queue.pop(0))
    return sorted(chosen)
