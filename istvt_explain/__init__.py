"""istvt-explain: deepfake detection with ISTVT, and explanations of why.

Public API (README.md, section Python)::

    model = create_model("paper")                   # "small", "tiny"; weights=PATH; keyword overrides
    model = load_demo_model()                       # the bundled tiny weights
    exp = explain(model, clips, method="relevance") # -> Explanation (spatial, temporal, fake_probability)

The public names are resolved lazily (module ``__getattr__``): ``import istvt_explain`` costs
milliseconds, not the seconds torch, timm and Captum take, so the command line answers
``--help`` and bad input at once.  The first access to a name imports its module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module (relative to this package) that defines it
_LAZY: dict[str, str] = {
    "DEMO_WEIGHTS": ".demo",
    "load_demo_model": ".demo",
    "InputError": ".errors",
    "AttentionCapture": ".explain",
    "Explanation": ".explain",
    "available_methods": ".explain",
    "explain": ".explain",
    "register_method": ".explain.registry",
    "Attribution": ".explain.base",
    "judge_explanations": ".evaluate.judging",
    "ISTVT": ".models",
    "CheckpointError": ".models",
    "ISTVTConfig": ".models",
    "create_model": ".models",
    "load_model": ".models",
    "save_checkpoint": ".models",
}

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from .demo import DEMO_WEIGHTS, load_demo_model  # noqa: F401
    from .errors import InputError  # noqa: F401
    from .evaluate.judging import judge_explanations  # noqa: F401
    from .explain import AttentionCapture, Explanation, available_methods, explain  # noqa: F401
    from .explain.base import Attribution  # noqa: F401
    from .explain.registry import register_method  # noqa: F401
    from .models import ISTVT, CheckpointError, ISTVTConfig, create_model, load_model, save_checkpoint  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use, and cache the name here.

    A subpackage's name (``ie.models``, ``ie.data``) imports it, as the eager imports used to.
    """
    module_name = _LAZY.get(name)
    if module_name is None:
        if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
            return importlib.import_module(f".{name}", __name__)  # the import binds it here
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Keeps ``istvt_explain.explain`` the function when the subpackage of that name gets imported.

    Why: importing a submodule sets it as an attribute of its package, which would shadow the
    lazily resolved ``explain()`` function (the eager imports used to override it the other way).
    The subpackage itself stays reachable through ``sys.modules`` and ``from .explain import ...``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


_SHADOWED = frozenset({"explain"})  # public names that are also subpackages
sys.modules[__name__].__class__ = _Package
