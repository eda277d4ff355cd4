"""Training: YAML configs, the (DDP-ready) loop, resumable state, calibration of the result.
Names resolve on first use."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["calibration", "config", "data", "distributed", "evaluation", "logs", "loop", "mask_head", "state"],
    submod_attrs={
        "calibration": ["calibrate_checkpoint"],
        "config": ["ConfigError", "TrainConfig", "available_configs", "config_from_dict", "load_config"],
        "loop": ["FitResult", "fit"],
    },
)
