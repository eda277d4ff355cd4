"""Evaluation: detection metrics (``detection``), explanation judging, probability calibration."""

from .calibration import (
    CalibrationReport,
    binary_nll,
    calibrate_checkpoint,
    calibrate_logits,
    expected_calibration_error,
    fit_temperature,
)

__all__ = [
    "CalibrationReport", "binary_nll", "calibrate_checkpoint", "calibrate_logits", "expected_calibration_error",
    "fit_temperature",
]
