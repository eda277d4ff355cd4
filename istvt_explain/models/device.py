"""Which device a command runs on: the one place that reads ``--device`` (and torchrun's local rank)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
"""What ``--device`` offers; ``resolve_device`` also takes any ``torch.device`` string (``cuda:1``)."""


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` is this process's GPU when there is one (``cuda:local_rank``), else the CPU.

    ``InputError`` when a CUDA device is asked for and there is none: one line, not a traceback.
    """
    import torch

    if spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise InputError(f"--device {spec}: not a device (choose {', '.join(DEVICES)})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: no CUDA device is available here (use --device cpu)")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def model_device(model: torch.nn.Module | None) -> torch.device:
    """Where the model's weights are (the CPU for a stand-in without parameters)."""
    import torch

    params = model.parameters() if isinstance(model, torch.nn.Module) else iter(())
    first = next(params, None)
    return first.device if first is not None else torch.device("cpu")
