"""Numeric precision of inference and explanations: ``auto``, ``fp32``, ``bf16`` or ``fp16``.

Reduced precision runs the model under ``torch.autocast``: matrix products and convolutions in 16
bits, reductions and normalisations in 32.  Explanations keep their own arithmetic in float32: the
attention maps, gradients and relevances are cast up where they are read (``explain.capture``),
and the LRP rules divide and redistribute in float32 (``models.lrp_rules``), because products
over a dozen blocks and ratios ``R / z`` lose too much in 8 bits of mantissa.

``auto`` picks bf16 on a GPU that supports it and fp32 everywhere else (a CPU gains little from
16-bit autocast and fp16 needs loss scaling that inference does not have).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TypeVar

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
F = TypeVar("F", bound=Callable)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The concrete precision (``fp32``, ``bf16`` or ``fp16``) that ``precision`` means on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain float32."""
    return _DTYPES[resolve_precision(precision, device)]


@contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[str]:
    """Run the block under ``precision`` on ``device``; yields the concrete precision."""
    concrete = resolve_precision(precision, device)
    dtype = _DTYPES[concrete]
    device_type = torch.device(device).type
    context = nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)
    with context:
        yield concrete


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """A 16-bit float tensor as float32; any other tensor as it is (a float64 model keeps float64)."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


@contextmanager
def autocast_off() -> Iterator[None]:
    """Autocast switched off on every device type for the block, whatever region encloses it."""
    with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
        yield


def full_precision(fn: F) -> F:
    """Run ``fn`` with autocast off on every device: explanation arithmetic stays float32 even when
    it is called inside a model's 16-bit autocast region (an einsum there would run in 16 bits)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with autocast_off():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
