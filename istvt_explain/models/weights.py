"""Checkpoints: safetensors with the model config in the header; safe loading of foreign files.

Loading never runs code from a file: safetensors, or ``torch.load(weights_only=True)``.
The header also holds the calibration temperature (``temperature``, a JSON float, 1.0 when
uncalibrated; see docs/calibration.md); files without it load with temperature 1.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..data._files import atomic_write
from ..errors import InputError
from .config import ISTVTConfig

CHECKPOINT_FORMAT = "istvt-explain"
TEMPERATURE_KEY = "temperature"


class CheckpointError(InputError):
    """A weight file that is missing, unreadable, corrupt, or made for another model."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or pickled ``.pth``/``.pt``/``.bin`` file, loaded safely.

    Refuses non-finite weights: a checkpoint full of NaN would otherwise load and give a
    confident, meaningless verdict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    try:
        is_safetensors = _is_safetensors(path)
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable weight file ({err.strerror or err})") from None
    if is_safetensors:
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


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors files start with a little-endian header length, then '{'.
    return len(head) == 9 and head[8:9] == b"{"


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
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    if not _is_safetensors(path):
        return {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable or corrupt weight file ({error_reason(err)})") from None


def read_config(path: str | Path) -> ISTVTConfig | None:
    """The model config stored in an istvt-explain checkpoint, or None for foreign files."""
    meta = read_metadata(path)
    if meta.get("format") != CHECKPOINT_FORMAT or "config" not in meta:
        return None
    try:
        return ISTVTConfig.from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: checkpoint config is invalid ({err})") from None


def read_temperature(path: str | Path) -> float:
    """The calibration temperature stored in an istvt-explain checkpoint: 1.0 when absent
    (older checkpoints, pickled and foreign files); ``CheckpointError`` when it is not a finite number > 0."""
    meta = read_metadata(path)
    if meta.get("format") != CHECKPOINT_FORMAT or TEMPERATURE_KEY not in meta:
        return 1.0
    raw = meta[TEMPERATURE_KEY]
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CheckpointError(f"{path}: stored temperature {raw[:40]!r} is not a finite number > 0")
    return float(value)


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


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load our own checkpoint into ``model``, refusing one made for another configuration.

    Also sets the model's calibration temperature from the checkpoint (1.0 when it stores none).
    """
    stored = read_config(path)
    temperature = read_temperature(path)
    config: ISTVTConfig = model.config
    if stored is not None and _architecture(stored) != _architecture(config):
        diff = ", ".join(
            f"{k}={stored.to_dict()[k]!r} (model has {config.to_dict()[k]!r})"
            for k in _architecture(config) if stored.to_dict()[k] != config.to_dict()[k]
        )
        raise CheckpointError(f"{path}: weights are for preset {stored.name!r}, not {config.name!r}: {diff}")
    state = read_state_dict(path)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} of wrong shape; e.g. "
                  f"{(missing + unexpected + wrong)[0]}")
        raise CheckpointError(f"{path}: weights do not fit this {config.name!r} model ({detail})")
    model.load_state_dict(state)
    if hasattr(model, "set_temperature"):
        model.set_temperature(temperature)


def _architecture(config: ISTVTConfig) -> dict[str, Any]:
    """The config fields that decide tensor shapes (``name`` and ``dropout`` do not)."""
    values = config.to_dict()
    return {k: values[k] for k in values if k not in ("name", "dropout")}
