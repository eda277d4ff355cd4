"""Probability calibration: expected calibration error and temperature scaling (Guo et al. 2017).

The model's head divides its fake logit by a temperature ``T > 0`` (``ISTVT.set_temperature``), so
``p(fake) = sigmoid(logit / T)`` everywhere a probability is shown.  ``fit_temperature`` finds the
``T`` that minimises the binary negative log-likelihood of a labelled split
(``train.calibration.calibrate_checkpoint`` writes a checkpoint with it).  See docs/calibration.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..models.limits import TEMPERATURE_RANGE

DEFAULT_BINS = 15
TEMPERATURE_BOUNDS = TEMPERATURE_RANGE  # the fit searches exactly the range a checkpoint may hold


def _as_arrays(values: Any, labels: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if v.shape != y.shape:
        raise ValueError(f"{what} and labels differ in length: {v.size} vs {y.size}")
    if v.size == 0:
        raise ValueError(f"no {what} given")
    if not np.all(np.isfinite(v)) or not np.all(np.isfinite(y)):
        raise ValueError(f"{what} and labels must be finite numbers")
    return v, y >= 0.5


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error of fake probabilities against binary labels, in [0, 1].

    For each clip with fake probability ``p`` and label ``y`` (fake when ``y >= 0.5``):
    the prediction is fake when ``p >= 0.5``, its *confidence* is ``max(p, 1 - p)`` and it is
    *correct* when ``(p >= 0.5) == y``.  Confidences fall into ``bins`` equal-width bins over
    [0, 1] (bin ``b`` holds ``b/bins < c <= (b+1)/bins``, the first also ``c = 0``; with two classes
    the bins below 0.5 stay empty), and

        ECE = sum_b (n_b / n) * |accuracy_b - mean confidence_b|

    over the non-empty bins (Guo et al. 2017, top-label ECE, binary case).
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    p, y = _as_arrays(probabilities, labels, "probabilities")
    if np.any(p < 0) or np.any(p > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    predicted = p >= 0.5
    confidence = np.where(predicted, p, 1.0 - p)
    correct = (predicted == y).astype(np.float64)
    # bin index: ceil(c * bins) - 1, clipped, so that a bin is (lo, hi] and c = 0 goes to the first
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    correct_sum = np.bincount(index, weights=correct, minlength=bins)
    used = count > 0
    gaps = np.abs(correct_sum[used] - conf_sum[used])  # n_b * |acc_b - conf_b|
    return float(gaps.sum() / p.size)


def binary_nll(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    """Mean binary negative log-likelihood of ``sigmoid(logits / temperature)`` (natural log)."""
    z, y = _as_arrays(logits, labels, "logits")
    z = z / temperature
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def fit_temperature(logits: Any, labels: Any, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature ``T`` minimising the binary NLL of ``sigmoid(logits / T)`` on labelled logits.

    ``logits`` are the raw (T = 1) fake logits.  The NLL is convex in ``1/T``, hence unimodal in
    ``log T``; a bounded Brent search on ``log T`` (``scipy.optimize.minimize_scalar``) finds it,
    deterministically.  ``T`` is confined to ``bounds`` (default [0.05, 20]): on data the logits
    already separate perfectly the NLL keeps falling as ``T -> 0`` (and on data they get all wrong as
    ``T -> inf``), so the answer is then the bound, not 0 or infinity.  All-zero logits carry no
    scale to fit: 1.0.
    """
    from scipy.optimize import minimize_scalar

    lo, hi = (float(b) for b in bounds)
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    z, y = _as_arrays(logits, labels, "logits")
    if not np.any(z):
        return 1.0

    def nll(log_t: float) -> float:
        s = z * math.exp(-log_t)
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    result = minimize_scalar(nll, bounds=(math.log(lo), math.log(hi)), method="bounded",
                             options={"xatol": 1e-8, "maxiter": 500})
    log_t = float(result.x)
    # Brent never evaluates the bounds themselves; prefer a bound when it is at least as good
    for edge in (math.log(lo), math.log(hi)):
        if nll(edge) <= nll(log_t):
            log_t = edge
    return float(min(max(math.exp(log_t), lo), hi))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


@dataclass
class CalibrationReport:
    """A fitted temperature and what it did on the clips it was fitted on.

    ``*_before``: the raw logits (T = 1); ``*_after``: divided by ``temperature``.
    """

    temperature: float
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    clips: int
    bins: int = DEFAULT_BINS
    split: str | None = None
    weights: str | None = None
    output: str | None = None
    config: str | None = None
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """Two lines for a terminal."""
        where = f" of the {self.split} split" if self.split else ""
        return (f"temperature {self.temperature:.4f} fitted on {self.clips} clip(s){where}\n"
                f"ECE {self.ece_before:.4f} -> {self.ece_after:.4f} ({self.bins} bins), "
                f"NLL {self.nll_before:.4f} -> {self.nll_after:.4f}")


def calibrate_logits(logits: Any, labels: Any, bins: int = DEFAULT_BINS, **info: Any) -> CalibrationReport:
    """Fit a temperature on raw logits and report ECE and NLL before and after (``info``: the report's
    optional fields, e.g. ``split``).  The temperature is rounded to float32, as the model stores it."""
    z, y = _as_arrays(logits, labels, "logits")
    t = float(np.float32(fit_temperature(z, y)))  # the precision of the model's temperature buffer
    return CalibrationReport(
        temperature=t,
        ece_before=expected_calibration_error(_sigmoid(z), y, bins),
        ece_after=expected_calibration_error(_sigmoid(z / t), y, bins),
        nll_before=binary_nll(z, y), nll_after=binary_nll(z, y, t), clips=int(z.size), bins=bins, **info,
    )
