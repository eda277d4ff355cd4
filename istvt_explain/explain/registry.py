"""Name -> attribution class: methods register themselves, ``explain`` looks them up (no if/elif chain)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Attribution

METHODS: dict[str, type[Attribution]] = {}


def register_method(cls: type[Attribution]) -> type[Attribution]:
    """Class decorator: make ``cls`` available to ``explain(method=cls.name)``."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} needs a registry name (class attribute `name`)")
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"explanation method {name!r} is already registered by {METHODS[name].__name__}")
    METHODS[name] = cls
    return cls


def available_methods() -> list[str]:
    """Registered method names, in registration order (the order of tables and legends)."""
    return list(METHODS)


def get_method(name: str) -> type[Attribution]:
    if name not in METHODS:
        raise ValueError(f"unknown explanation method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name]
