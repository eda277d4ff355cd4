"""Explanations of ISTVT: what the model looked at, where in each frame and in which frames.

``explain(model, clips, method=...)`` returns an ``Explanation``; methods are
classes in a registry (``METHODS``), each with one ``attribute`` call.
"""

from . import attention_methods as _attention_methods  # noqa: F401  (registers the methods)
from . import captum_methods as _captum_methods  # noqa: F401
from . import lrp as _lrp  # noqa: F401
from .api import explain
from .attention_methods import RawAttention, Relevance, Rollout, SpatialOnly, TemporalOnly
from .base import Attribution, class_scores, resolve_target
from .captum_methods import FrameAblationMethod, IntegratedGradientsMethod, OcclusionMethod, SaliencyMethod
from .capture import AttentionCapture
from .explanation import Explanation
from .lrp import LRPAttribution, lrp_mode
from .registry import METHODS, available_methods, get_method, register_method

__all__ = [
    "METHODS", "AttentionCapture", "Attribution", "Explanation", "FrameAblationMethod",
    "IntegratedGradientsMethod", "LRPAttribution", "OcclusionMethod", "RawAttention", "Relevance", "Rollout",
    "SaliencyMethod", "SpatialOnly", "TemporalOnly", "available_methods", "class_scores", "explain",
    "get_method", "lrp_mode", "register_method", "resolve_target",
]
