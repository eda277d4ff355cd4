"""Name -> attribution class: methods register themselves, ``explain`` looks them up (no if/elif chain).

Torch-free, like ``catalogue``: the built-in classes are imported on the first ``get_method``, so a
method's name is checked (``resolve_method``) without loading any model code.  Methods of one's own
register with ``@register_method`` when their module is imported.  So that the command line sees
them too, ``available_methods`` first imports the plugins named by the ``istvt_explain.methods``
entry-point group of installed packages and by the environment variable ``ISTVT_EXPLAIN_METHODS``
(module names or ``.py`` paths, separated by the path separator).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .catalogue import BUILT_IN, BUILT_IN_MODULES, MethodFacts, canonical_name

if TYPE_CHECKING:
    from .base import Attribution

METHODS: dict[str, type[Attribution]] = {}
"""Every registered class by name: the built-ins once imported (``get_method``), and plugins."""


def register_method(cls: type[Attribution]) -> type[Attribution]:
    """Class decorator: make ``cls`` available to ``explain(method=cls.name)``."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} needs a registry name (class attribute `name`)")
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"explanation method {name!r} is already registered by {METHODS[name].__name__}")
    if name in BUILT_IN and not cls.__module__.startswith(__package__ + "."):
        raise ValueError(f"explanation method {name!r} is a built-in name; give {cls.__name__} another name")
    METHODS[name] = cls
    return cls


PLUGIN_VARIABLE = "ISTVT_EXPLAIN_METHODS"
ENTRY_POINT_GROUP = "istvt_explain.methods"
_loaded: set[str] = set()


def load_plugins() -> None:
    """Import every plugin module once (see the module doc); a plugin that fails is an InputError."""
    from importlib.metadata import entry_points

    specs = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    specs += [s for s in os.environ.get(PLUGIN_VARIABLE, "").split(os.pathsep) if s.strip()]
    for spec in specs:
        if spec in _loaded:
            continue
        _loaded.add(spec)
        try:
            _import_plugin(spec.split(":")[0].strip())
        except Exception as err:  # a user's module: any failure is theirs to read, in one line
            raise InputError(f"explanation plugin {spec!r} could not be imported: {type(err).__name__}: {err}") \
                from None


def _import_plugin(spec: str) -> None:
    if spec.endswith(".py"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        name = f"istvt_explain_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        importlib.import_module(spec)


def available_methods() -> list[str]:
    """Every method name: the built-ins in catalogue order, then the plugins in registration order."""
    load_plugins()
    return [*BUILT_IN, *(name for name in METHODS if name not in BUILT_IN)]


def resolve_method(name: str) -> str:
    """The current name of method ``name`` (an older alias is accepted); ``InputError`` when no method
    has that name.  The one check of a method name: options call it where they are built."""
    name = canonical_name(name)
    if name not in BUILT_IN and name not in METHODS:
        load_plugins()
        if name not in METHODS:
            raise InputError(f"unknown explanation method {name!r}; choose one of {', '.join(available_methods())}")
    return name


def get_method(name: str) -> type[Attribution]:
    """The class of method ``name`` (``resolve_method``), importing the built-ins on first use."""
    name = resolve_method(name)
    if name in BUILT_IN and name not in METHODS:
        for module in BUILT_IN_MODULES:
            importlib.import_module(f"{__package__}.{module}")
    return METHODS[name]


def method_facts(name: str) -> MethodFacts:
    """The facts of a method (``catalogue.MethodFacts``), built-in or registered; a name nobody registered
    (an ``Explanation`` made by hand) gets plain facts: unsigned, its name as its label."""
    name = canonical_name(name)
    if name in BUILT_IN:
        return BUILT_IN[name]
    cls = METHODS.get(name)
    return cls.facts if cls is not None else MethodFacts(name, name)
