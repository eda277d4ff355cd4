"""Bootstrap intervals and the one comparison rule every judging verdict uses.

A method beats a reference only when the 95 % bootstrap interval of the mean per-clip difference
lies entirely on the better side of zero; an interval that straddles zero is not a win, however
the means rank.  The resampling is scipy's (``scipy.stats.bootstrap``, percentile intervals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

CONFIDENCE = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % bootstrap interval over ``n`` clips (NaN everywhere when ``n`` is 0)."""

    mean: float
    low: float
    high: float
    n: int

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


def mean_interval(values: Sequence[float], seed: int = 0) -> Interval:
    """The mean of the finite ``values`` and its 95 % percentile bootstrap interval."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if x.size == 1:  # one clip says nothing about the spread: an interval that excludes nothing
        return Interval(mean, -math.inf, math.inf, 1)
    if np.ptp(x) == 0:
        return Interval(mean, mean, mean, int(x.size))
    res = bootstrap((x,), np.mean, confidence_level=CONFIDENCE, n_resamples=RESAMPLES, method="percentile",
                    rng=np.random.default_rng(seed))
    return Interval(mean, float(res.confidence_interval.low), float(res.confidence_interval.high), int(x.size))
