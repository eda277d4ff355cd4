"""Checkpoints: safetensors with the model config in the header; safe loading of foreign files.

Loading never runs code from a file: safetensors, or ``torch.load(weights_only=True)``.
The header also holds the calibration temperature (``temperature``, a JSON float, 1.0 when
uncalibrated; see docs/calibration.md); files without it load with temperature 1.  The header is
read and checked first (``checkpoint_file``, within the bounds of ``limits``): a tensor is read
only from a file whose header fits.
"""

from __future__ import annotations

import json
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..data._files import atomic_write
from .checkpoint_file import (
    CHECKPOINT_FORMAT,
    TEMPERATURE_KEY,
    CheckpointError,
    Shape,
    check_tensors,
    is_safetensors,
    mismatch,
    read_header,
    stored_config,
    stored_temperature,
)
from .config import ISTVTConfig

__all__ = ["CHECKPOINT_FORMAT", "TEMPERATURE_KEY", "CheckpointError", "check_checkpoint_fits", "check_finite",
           "error_reason", "load_checkpoint", "read_config", "read_metadata", "read_state_dict",
           "read_temperature", "safe_torch_load", "save_checkpoint"]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or pickled ``.pth``/``.pt``/``.bin`` file, loaded safely.

    Refuses non-finite weights: a checkpoint full of NaN would otherwise load and give a
    confident, meaningless verdict.
    """
    path = _existing(path)
    if is_safetensors(path):
        read_header(path)  # its size and tensor count checked before a byte of tensor data is read
        try:
            obj = load_file(str(path), device="cpu")
        except Exception as err:  # header, offsets or dtype wrong: all mean "corrupt"
            raise CheckpointError(f"{path}: unreadable or corrupt weight file ({error_reason(err)})") from None
    else:
        obj = safe_torch_load(path, "weight file")
    for key in ("state_dict", "model", "model_state_dict", "network"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: does not hold a state dict")
    state = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    check_finite(state, path)
    return state


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """``CheckpointError`` naming the first tensor that holds NaN or infinity."""
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values "
                              f"(first: {bad[0]}); the checkpoint is broken")


def safe_torch_load(path: Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` with every failure as one complete ``CheckpointError`` line.

    Torch's own warnings (e.g. about the pickle protocol) are silenced: the error says it all.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower():
            raise CheckpointError(f"{path}: refused to load the {what}: only plain tensors are read, and it "
                                  f"holds more ({_refused_part(err)})") from None
        raise CheckpointError(f"{path}: unreadable or corrupt {what} ({error_reason(err)})") from None
    except Exception as err:  # corrupt zip, truncated file, wrong format: all mean "unusable"
        raise CheckpointError(f"{path}: unreadable or corrupt {what} ({error_reason(err)})") from None


def _refused_part(err: BaseException) -> str:
    """The part of torch's long weights-only message that names what was refused."""
    text = str(err)
    match = re.search(r"unsupported (?:global|class)\s*:?\s*(?:GLOBAL\s+)?([\w.]+)", text, re.IGNORECASE)
    if match:
        return f"the object type {match.group(1).rstrip('.')}"
    match = re.search(r"unsupported operand (\d+)", text, re.IGNORECASE)
    if match:
        return f"pickle instruction {match.group(1)}, outside torch's safe subset"
    return "objects outside torch's safe subset"


def error_reason(err: BaseException, limit: int = 160) -> str:
    """The first line of an error, whole, or cut at its last sentence or word end within ``limit``."""
    lines = str(err).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if not text:
        return type(err).__name__
    if len(text) <= limit:
        return text.rstrip(".")
    head = text[:limit]
    cut = head.rfind(". ")
    return head[:cut] if cut > limit // 3 else head[:head.rfind(" ")].rstrip(",;:") + " ..."


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file ({} for other formats)."""
    path = _existing(path)
    return read_header(path).metadata if is_safetensors(path) else {}


def read_config(path: str | Path) -> ISTVTConfig | None:
    """The model config stored in an istvt-explain checkpoint, or None for foreign files."""
    path = _existing(path)
    return stored_config(read_header(path)) if is_safetensors(path) else None


def read_temperature(path: str | Path) -> float:
    """The calibration temperature stored in an istvt-explain checkpoint: 1.0 when absent
    (older checkpoints, pickled and foreign files); ``CheckpointError`` when it is not a number inside
    ``limits.TEMPERATURE_RANGE``."""
    path = _existing(path)
    return stored_temperature(read_header(path)) if is_safetensors(path) else 1.0


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    return path


def save_checkpoint(model: torch.nn.Module, path: str | Path, extra: Mapping[str, Any] | None = None) -> None:
    """Write the model's weights, config and calibration temperature to ``path`` (safetensors), atomically.

    ``extra`` adds metadata entries (strings as they are, anything else as JSON); the temperature is
    always the model's own (``temperature`` buffer, 1.0 when the model has none).
    """
    from .._version import __version__

    config: ISTVTConfig = model.config
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": CHECKPOINT_FORMAT, "config": config.to_json(), "version": __version__}
    for key, value in (extra or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value)
    temperature = getattr(model, "temperature", None)
    meta[TEMPERATURE_KEY] = json.dumps(float(temperature) if temperature is not None else 1.0)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def check_checkpoint_fits(path: str | Path, config: ISTVTConfig, expected: Mapping[str, Shape]) -> float:
    """From the header alone: ``CheckpointError`` unless safetensors file ``path`` was made for ``config``
    and lists exactly the tensors ``expected`` (name -> shape); its temperature (1.0 for other formats)."""
    path = _existing(path)
    if not is_safetensors(path):
        return 1.0
    header = read_header(path)
    stored = stored_config(header)
    temperature = stored_temperature(header)
    if stored is not None and _architecture(stored) != _architecture(config):
        diff = ", ".join(
            f"{k}={stored.to_dict()[k]!r} (model has {config.to_dict()[k]!r})"
            for k in _architecture(config) if stored.to_dict()[k] != config.to_dict()[k]
        )
        raise CheckpointError(f"{path}: weights are for preset {stored.name!r}, not {config.name!r}: {diff}")
    check_tensors(header, expected, config.name)
    return temperature


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load our own checkpoint into ``model``, refusing one made for another configuration.

    The header is checked against the model before any tensor is read.  Also sets the model's
    calibration temperature from the checkpoint (1.0 when it stores none).
    """
    config: ISTVTConfig = model.config
    expected = model.state_dict()
    temperature = check_checkpoint_fits(path, config, {k: tuple(v.shape) for k, v in expected.items()})
    state = read_state_dict(path)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(mismatch(Path(path), config.name, missing, unexpected, wrong))
    model.load_state_dict(state)
    if hasattr(model, "set_temperature"):
        model.set_temperature(temperature)


def _architecture(config: ISTVTConfig) -> dict[str, Any]:
    """The config fields that decide tensor shapes (``name`` and ``dropout`` do not)."""
    values = config.to_dict()
    return {k: values[k] for k in values if k not in ("name", "dropout")}
