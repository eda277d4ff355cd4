"""Evaluation: how good a detector is (``detection`` metrics, ``calibration`` measures) and whether its
explanations can be believed (``explanations``, the judge).  Writing a calibrated checkpoint is
training's (``train.calibration``).  Names resolve on first use."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["calibration", "detection", "explanations", "statistics"],
    submod_attrs={
        "calibration": ["CalibrationReport", "binary_nll", "calibrate_logits", "expected_calibration_error",
                        "fit_temperature"],
    },
)
