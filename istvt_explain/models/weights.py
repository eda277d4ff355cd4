"""Checkpoints: safetensors with the model config in the header; safe loading of foreign files.

Loading never runs code from a file: safetensors, or ``torch.load(weights_only=True)``.
The header also holds the calibration temperature (``temperature``, a JSON float, 1.0 when
uncalibrated; see docs/calibration.md); files without it load with temperature 1.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..errors import InputError
from .config import ISTVTConfig

CHECKPOINT_FORMAT = "istvt-explain"
TEMPERATURE_KEY = "temperature"


class CheckpointError(InputError):
    """A weight file that is missing, unreadable, corrupt, or made for another model."""


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` and rename the result over ``path``: no half-written files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or pickled ``.pth``/``.pt``/``.bin`` file, loaded safely."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    try:
        if _is_safetensors(path):
            return load_file(str(path), device="cpu")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        raise CheckpointError(f"{path}: unreadable or corrupt weight file ({_first_line(err)})") from None
    except Exception as err:  # pickle errors of several kinds, weights_only refusals
        raise CheckpointError(f"{path}: unreadable or corrupt weight file ({_first_line(err)})") from None
    for key in ("state_dict", "model", "model_state_dict", "network"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: does not hold a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors files start with a little-endian header length, then '{'.
    return len(head) == 9 and head[8:9] == b"{"


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__


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
        raise CheckpointError(f"{path}: unreadable or corrupt weight file ({_first_line(err)})") from None


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
    from .. import __version__

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
