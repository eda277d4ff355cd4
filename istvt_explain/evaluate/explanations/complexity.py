"""Complexity of an explanation: how concentrated a map is (reported, not judged; docs/judging.md).

Sparseness is the Gini index of the absolute token values of a clip's maps (Chalasani et al., ICML 2020):
0 when every token carries the same weight, towards 1 when a few tokens carry it all.  A concise map is
easier to read, but not more right, so it has no verdict.
"""

from __future__ import annotations

import numpy as np
import torch


def gini(values: torch.Tensor | np.ndarray) -> float:
    """Gini index of ``|values|`` (any shape); NaN when every value is 0."""
    x = np.sort(np.abs(np.asarray(values, dtype=np.float64)).reshape(-1))
    n, total = x.size, x.sum()
    if n == 0 or total <= 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))
