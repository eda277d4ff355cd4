"""The one precision policy of the package: what ``auto``, ``fp32``, ``bf16`` and ``fp16`` mean on a device.

Inference, explanations, training, calibration and evaluation all ask this module; none decides
on its own.  Reduced precision runs the model under ``torch.autocast``: matrix products and
convolutions in 16 bits, reductions and normalisations in 32.  Explanations keep their own
arithmetic in float32: the attention maps, gradients and relevances are cast up where they are
read (``attribution.capture``, ``attribution.lrp``), because products over a dozen blocks lose too
much in 8 bits of mantissa.

``auto`` (the default everywhere) picks bf16 on a GPU that supports it and fp32 everywhere else: a
CPU gains little from 16-bit autocast, and fp16 needs loss scaling that inference does not have.
Asking for bf16 on a GPU without it is an error, not a silent fallback.  Torch is imported only
inside the functions, so the command line can list the choices without loading it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_PRECISION = "auto"
TRAINING_PRECISIONS = ("auto", "fp32", "bf16")
"""What training accepts: fp16 would need a gradient scaler, which the loop does not keep."""
F = TypeVar("F", bound=Callable)


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The concrete precision (``fp32``, ``bf16`` or ``fp16``) that ``precision`` means on ``device``.

    ``ValueError`` for an unknown name, and for bf16 on a CUDA device that has no bf16 arithmetic.
    """
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    on_gpu = device.type == "cuda" and torch.cuda.is_available()
    supported = on_gpu and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return "bf16" if supported else "fp32"
    if precision == "bf16" and on_gpu and not supported:
        raise ValueError(f"precision bf16: {torch.cuda.get_device_name(device)} has no bf16 arithmetic "
                         "(use fp16 or fp32)")
    return precision


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain float32."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[resolve_precision(precision, device)]


@contextmanager
def autocast(precision: str, device: torch.device | str) -> Iterator[str]:
    """Run the block under ``precision`` on ``device``; yields the concrete precision."""
    import torch

    dtype = autocast_dtype(precision, device)
    device_type = torch.device(device).type
    context = nullcontext() if dtype is None else torch.autocast(device_type, dtype=dtype)
    with context:
        yield resolve_precision(precision, device)


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """A 16-bit float tensor as float32; any other tensor as it is (a float64 model keeps float64)."""
    import torch

    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


@contextmanager
def autocast_off() -> Iterator[None]:
    """Autocast switched off on every device type for the block, whatever region encloses it."""
    import torch

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
