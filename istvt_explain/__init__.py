"""istvt-explain: deepfake detection with ISTVT, and explanations of why.

Public API (README.md, section Python)::

    model = create_model("paper")                   # "small", "tiny"; weights=PATH; keyword overrides
    model = load_demo_model()                       # the bundled tiny weights
    exp = explain(model, clips, method="relevance") # -> Explanation (spatial, temporal, fake_probability)

Every public name is resolved on first use (``lazy_loader``): ``import istvt_explain`` costs
milliseconds, not the seconds torch, timm and Captum take, so the command line answers ``--help``
and bad input at once.  The layers below this face, and who may import whom: docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from ._version import __version__  # noqa: F401  (public)

__getattr__, __dir__, _public = lazy_loader.attach(
    __name__,
    submodules=["analysis", "attribution", "cli", "data", "evaluate", "models", "pipeline", "render", "train"],
    submod_attrs={
        "errors": ["InputError"],
        "attribution": ["AttentionCapture", "Attribution", "Explanation", "available_methods", "explain",
                        "explain_batches", "register_method"],
        "evaluate.explanations": ["JudgingSettings", "judge_explanations"],
        "models": ["ISTVT", "CheckpointError", "ISTVTConfig", "create_model", "load_model", "save_checkpoint"],
        "models.pretrained": ["DEMO_WEIGHTS", "load_demo_model"],
    },
)
__all__ = sorted({*_public, "__version__"} - {"analysis", "attribution", "cli", "data", "evaluate", "models",
                                              "pipeline", "render", "train"})

if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .attribution import (  # noqa: F401
        AttentionCapture,
        Attribution,
        Explanation,
        available_methods,
        explain,
        explain_batches,
        register_method,
    )
    from .errors import InputError  # noqa: F401
    from .evaluate.explanations import JudgingSettings, judge_explanations  # noqa: F401
    from .models import ISTVT, CheckpointError, ISTVTConfig, create_model, load_model, save_checkpoint  # noqa: F401
    from .models.pretrained import DEMO_WEIGHTS, load_demo_model  # noqa: F401
