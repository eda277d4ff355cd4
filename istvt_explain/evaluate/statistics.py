"""Bootstrap intervals over people, one-sided p-values, and the Holm correction every judging verdict uses.

Clips of one person (or one source video) are not independent: a method that works on one face works
on that face's every clip.  So a mean over clips is taken as the mean of each group's mean (each person
weighs the same), and its interval comes from resampling the *groups* (a cluster bootstrap), with
scipy's ``scipy.stats.bootstrap`` (percentile intervals).  Without groups, every value is its own group.

A verdict asks one-sided questions ("is this gain above zero?"); each gets the bootstrap p-value
``(1 + #resampled means <= 0) / (resamples + 1)``, and a run's whole family of questions is corrected
with Holm's step-down method (``holm``), so that the chance of any wrong "pass" in the family stays
below ``ALPHA``.  A method beats a reference only when its question survives the correction; the 95 %
intervals shown beside the verdicts are uncorrected.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
ALPHA = 0.05  # family-wise error rate of a judging run's verdicts (Holm)
RESAMPLES = 4000


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % bootstrap interval, over ``n`` values in ``groups`` groups, and the one-sided
    bootstrap p-value of "the mean is not above zero" (NaN everywhere when there is nothing to judge)."""

    mean: float
    low: float
    high: float
    n: int
    groups: int = 0
    p_above: float = math.nan

    def excludes(self, value: float = 0.0) -> bool:
        return self.n > 0 and (self.low > value or self.high < value)

    def above(self, value: float = 0.0) -> bool:
        return self.n > 0 and self.low > value

    def below(self, value: float = 0.0) -> bool:
        return self.n > 0 and self.high < value

    def text(self, digits: int = 3) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def mean_interval(values: Sequence[float], seed: int = 0, groups: Sequence[Hashable] | None = None) -> Interval:
    """The mean of the finite ``values`` (of the group means, when ``groups`` names each value's group),
    its 95 % percentile bootstrap interval resampling groups, and the one-sided p-value for "above 0"."""
    x = np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)
    labels = np.arange(x.size) if groups is None else np.asarray(list(groups), dtype=object)
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"got {labels.shape[0]} group labels for {x.shape[0]} values")
    finite = np.isfinite(x)
    x, labels = x[finite], labels[finite]
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    names = list(dict.fromkeys(labels.tolist()))
    means = np.array([x[labels == name].mean() for name in names])
    mean = float(means.mean())
    if means.size == 1:  # one group says nothing about the spread: an interval that excludes nothing
        return Interval(mean, -math.inf, math.inf, int(x.size), 1, 1.0)
    resamples = RESAMPLES
    if np.ptp(means) == 0:
        p = 1.0 / (resamples + 1) if mean > 0 else 1.0
        return Interval(mean, mean, mean, int(x.size), int(means.size), p)
    from scipy.stats import bootstrap  # scipy loads on first use: the command line reads ALPHA at once

    res = bootstrap((means,), np.mean, confidence_level=CONFIDENCE, n_resamples=resamples, method="percentile",
                    rng=np.random.default_rng(seed))
    p = (1 + int((res.bootstrap_distribution <= 0).sum())) / (resamples + 1)
    return Interval(mean, float(res.confidence_interval.low), float(res.confidence_interval.high), int(x.size),
                    int(means.size), p)


def holm(p_values: Mapping[Hashable, float], alpha: float = ALPHA) -> dict[Hashable, bool]:
    """Holm's step-down test of a family: which hypotheses are rejected at family-wise rate ``alpha``.

    Sorted by p, the i-th smallest (from 0) is rejected while ``p <= alpha / (m - i)``; the first that is
    not stops the walk.  NaN p-values (questions that could not be asked) are left out of the family.
    """
    asked = sorted(((p, key) for key, p in p_values.items() if not math.isnan(p)), key=lambda item: item[0])
    rejected = dict.fromkeys(p_values, False)
    m = len(asked)
    for i, (p, key) in enumerate(asked):
        if p > alpha / (m - i):
            break
        rejected[key] = True
    return rejected
