"""istvt-explain: deepfake detection with ISTVT, and explanations of why.

Public API (README.md, section Python)::

    model = create_model("paper")                   # "small", "tiny"; weights=PATH; keyword overrides
    model = load_demo_model()                       # the bundled tiny weights
    exp = explain(model, clips, method="relevance") # -> Explanation (spatial, temporal, fake_probability)
"""

__version__ = "0.1.0"

from .demo import DEMO_WEIGHTS, load_demo_model
from .errors import InputError
from .explain import AttentionCapture, Explanation, available_methods, explain
from .models import ISTVT, CheckpointError, ISTVTConfig, create_model, load_model, save_checkpoint

__all__ = [
    "DEMO_WEIGHTS", "ISTVT", "AttentionCapture", "CheckpointError", "Explanation", "ISTVTConfig", "InputError",
    "__version__", "available_methods", "create_model", "explain", "load_demo_model", "load_model",
    "save_checkpoint",
]
