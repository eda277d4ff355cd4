"""A checkpoint's header, read and checked before a tensor is read or a model is built.

Why its own torch-free module: a weight file is foreign input.  Its safetensors header (8 bytes of
little-endian length, then JSON) says what the file holds, so the header alone can refuse a crafted
file at once, within the bounds of ``limits``: the command line does so before it imports torch,
``load_model`` before it allocates the model.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .config import ISTVTConfig
from .limits import MAX_HEADER_BYTES, MAX_TENSORS, check_temperature, header_byte_limit

CHECKPOINT_FORMAT = "istvt-explain"
TEMPERATURE_KEY = "temperature"
Shape = tuple[int, ...]


class CheckpointError(InputError):
    """A weight file that is missing, unreadable, corrupt, or made for another model."""


@dataclass(frozen=True)
class CheckpointHeader:
    """What a safetensors file says it holds: tensor shapes and string metadata, nothing read beyond."""

    path: Path
    size: int  # header bytes
    shapes: dict[str, Shape]
    metadata: dict[str, str]


def is_safetensors(path: Path) -> bool:
    """By suffix, or by the first bytes (a little-endian header length, then ``{``)."""
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable weight file ({err.strerror or err})") from None
    return len(head) == 9 and head[8:9] == b"{"


def read_header(path: str | Path) -> CheckpointHeader:
    """The header of safetensors file ``path``; ``CheckpointError`` when it is too large, truncated or
    malformed.  The length is checked before the header is read, the tensor count before it is used."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            file_size = os.fstat(fh.fileno()).st_size
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: only {file_size} bytes, too short for a weight file")
            length = struct.unpack("<Q", prefix)[0]
            if length > MAX_HEADER_BYTES:
                raise CheckpointError(f"{path}: safetensors header of {length:,} bytes, more than the "
                                      f"{MAX_HEADER_BYTES // 2**20} MiB any checkpoint needs; refused unread")
            if length > file_size - 8:
                raise CheckpointError(f"{path}: truncated weight file (its header claims {length:,} bytes, "
                                      f"the file has {file_size - 8:,} after the length)")
            raw = fh.read(length)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such weight file") from None
    except OSError as err:
        raise CheckpointError(f"{path}: unreadable weight file ({err.strerror or err})") from None
    return _parse_header(path, raw)


def _parse_header(path: Path, raw: bytes) -> CheckpointHeader:
    try:
        table = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"{path}: corrupt weight file (its safetensors header is not JSON)") from None
    if not isinstance(table, dict):
        raise CheckpointError(f"{path}: corrupt weight file (its safetensors header is not a JSON object)")
    metadata = table.pop("__metadata__", None) or {}
    if len(table) > MAX_TENSORS:
        raise CheckpointError(f"{path}: lists {len(table):,} tensors, more than the {MAX_TENSORS:,} any "
                              "checkpoint holds; refused")
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt weight file (its metadata is not a table of strings)")
    shapes = {}
    for name, entry in table.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise CheckpointError(f"{path}: corrupt weight file (tensor {name[:80]!r} has no valid shape)")
        shapes[name] = tuple(shape)
    return CheckpointHeader(path, len(raw), shapes, metadata)


def stored_config(header: CheckpointHeader) -> ISTVTConfig | None:
    """The model config an istvt-explain checkpoint stores (bounded by ``limits``), None for foreign files."""
    meta = header.metadata
    if meta.get("format") != CHECKPOINT_FORMAT or "config" not in meta:
        return None
    try:
        values = json.loads(meta["config"])
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        return ISTVTConfig.from_dict(values)
    except (ValueError, TypeError, RecursionError) as err:
        raise CheckpointError(f"{header.path}: checkpoint config is invalid ({str(err)[:200]})") from None


def stored_temperature(header: CheckpointHeader) -> float:
    """The calibration temperature stored in an istvt-explain checkpoint, 1.0 when absent;
    ``CheckpointError`` unless it is a number inside ``limits.TEMPERATURE_RANGE``."""
    meta = header.metadata
    if meta.get("format") != CHECKPOINT_FORMAT or TEMPERATURE_KEY not in meta:
        return 1.0
    raw = meta[TEMPERATURE_KEY]
    try:
        return check_temperature(json.loads(raw))
    except (ValueError, RecursionError) as err:
        reason = str(err) if isinstance(err, ValueError) and "temperature must" in str(err) else "not a number"
        raise CheckpointError(f"{header.path}: stored temperature {raw[:40]!r} is refused ({reason})") from None


def check_tensors(header: CheckpointHeader, expected: Mapping[str, Shape], model_name: str) -> None:
    """``CheckpointError`` unless the header lists exactly ``expected``'s tensors with their shapes, in a
    header no larger than such a checkpoint needs."""
    limit = header_byte_limit(len(expected))
    if header.size > limit:
        raise CheckpointError(f"{header.path}: safetensors header of {header.size:,} bytes, more than a "
                              f"{model_name!r} checkpoint needs ({limit:,}); refused")
    missing = [k for k in expected if k not in header.shapes]
    unexpected = [k for k in header.shapes if k not in expected]
    wrong = [k for k in expected if k in header.shapes and header.shapes[k] != tuple(expected[k])]
    if missing or unexpected or wrong:
        raise CheckpointError(mismatch(header.path, model_name, missing, unexpected, wrong))


def mismatch(path: Path, model_name: str, missing: list[str], unexpected: list[str], wrong: list[str]) -> str:
    """The one line that says how a weight file fails to fit a model."""
    first = (missing + unexpected + wrong)[0]
    return (f"{path}: weights do not fit this {model_name!r} model ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong)} of wrong shape; e.g. {first[:80]})")


def check_weight_file(path: str | Path) -> ISTVTConfig | None:
    """Everything about a weight file that needs no torch: that it exists, and for safetensors its header,
    stored config and temperature.  The stored config (None for foreign and pickled files)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    if not is_safetensors(path):
        return None
    header = read_header(path)
    stored_temperature(header)
    return stored_config(header)
