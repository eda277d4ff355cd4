"""istvt-explain: deepfake detection with ISTVT, and explanations of why.

Public API (see README): ``create_model``, ``load_model``, ``load_demo_model``, ``AttentionCapture``.
"""

__version__ = "0.1.0"

from .demo import DEMO_WEIGHTS, load_demo_model
from .explain.capture import AttentionCapture
from .models import ISTVT, CheckpointError, ISTVTConfig, create_model, load_model, save_checkpoint

__all__ = [
    "DEMO_WEIGHTS", "ISTVT", "AttentionCapture", "CheckpointError", "ISTVTConfig", "__version__",
    "create_model", "load_demo_model", "load_model", "save_checkpoint",
]
