"""Training configuration: frozen dataclasses, read from YAML at the edge and checked there.

A config is a file or the name of a preset shipped in ``istvt_explain/configs``.  Every key is
checked against the dataclasses before anything runs: an unknown key or a value of the wrong type
is refused with the key named (``optim.lr``), not discovered an hour into a run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..models.precision import DEFAULT_PRECISION, TRAINING_PRECISIONS
from ..models.presets import available_presets, preset_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DATA_KINDS = ("cached", "pseudofake_cached", "pseudofake_pictures")


class ConfigError(InputError):
    """A config file that cannot be read, or holds an unknown key or a bad value (named)."""


@dataclass(frozen=True)
class ModelSection:
    """Which model to train: a preset, its overrides, and optional local weights to start from."""

    preset: str = "tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    backbone_weights: str | None = None  # ImageNet Xception weights (local file), else random init
    init_weights: str | None = None  # an istvt-explain checkpoint to fine-tune


@dataclass(frozen=True)
class DataSection:
    """Where clips come from.

    ``cached``: the clip cache of the data pipeline (real and fake videos).  ``pseudofake_cached``:
    only the real clips of that cache, half of them self-blended (training without fakes).
    ``pseudofake_pictures``: face pictures and videos shipped by installed packages
    (``data.material.catalogue``: ``astronaut``, ``lfw_subset[0:80]``, ``carphone``...), pictures animated,
    every clip paired with a self-blend of itself (the bundled demo weights).  No person may be in
    both the training and the test material: the config is refused otherwise.  ``degrade_eval``
    applies the training degradations to validation and test clips too (one draw per pair).
    """

    kind: str = "cached"
    cache_dir: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    stride: int | None = None
    train_pictures: list[str] = field(default_factory=lambda: ["astronaut", "camera"])
    val_pictures: list[str] = field(default_factory=lambda: ["astronaut", "camera"])
    test_pictures: list[str] = field(default_factory=lambda: ["grace_hopper"])
    train_clips: int = 256  # pseudofake_pictures: items per epoch (half real, half fake)
    val_clips: int = 64
    test_clips: int = 200
    blend: str = "auto"  # "auto", "data" (the data package's blender) or "builtin"
    augment: bool = True
    degrade_eval: bool = False
    degrade_ramp_epochs: int = 0  # training degradation rates grow over this many epochs (clean first)
    degrade: dict[str, Any] = field(default_factory=dict)  # DegradeOptions fields to change (data/degrade.py)
    blend_frequency: dict[str, float] | None = None  # builtin blend: weights of none/blur/sharpen/resample
    blend_warp: str = "linear"  # builtin blend: interpolation of the copy's misalignment, linear or cubic
    # Cross-identity blends (data/face_swap.py, Face X-ray's recipe): this share of the fakes pastes
    # another person of the same split, chosen by landmarks among swap_pool drawn at random, with the
    # blends named in swap_blends (alpha, poisson); pseudofake_pictures only.
    swap_share: float = 0.0
    swap_blends: list[str] = field(default_factory=lambda: ["alpha", "poisson"])
    swap_pool: int = 8
    num_workers: int = 0


@dataclass(frozen=True)
class OptimSection:
    """Optimizer and schedule: linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""

    name: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0  # max global grad norm; 0 turns clipping off


@dataclass(frozen=True)
class TrainConfig:
    """One training run.  ``batch_size`` is per process (DDP multiplies it by the world size)."""

    name: str = "run"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    epochs: int = 20
    batch_size: int = 16
    eval_batch_size: int = 16
    seed: int = 0
    precision: str = DEFAULT_PRECISION  # models.precision: "auto" (bf16 on a GPU that has it, else fp32), "bf16", "fp32"
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    checkpoint_every_steps: int = 0  # also write the resumable state every N steps (0: each epoch)
    best_metric: str = "auc"  # validation metric that picks the best checkpoint: auc, ap, acc, loss
    mask_loss_weight: float = 0.0  # > 0: also predict each token's blend mask (see train/mask_head.py)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_CHOICES: dict[str, tuple[str, ...]] = {
    "data.kind": DATA_KINDS,
    "data.blend": ("auto", "data", "builtin"),
    "data.blend_warp": ("linear", "cubic"),
    "optim.name": ("sgd", "adamw"),
    "precision": TRAINING_PRECISIONS,
    "best_metric": ("auc", "ap", "acc", "loss"),
}


def load_config(spec: str | Path, **overrides: Any) -> TrainConfig:
    """A config from a YAML file, or from a preset name (``demo``, ``ffpp_c23_paper``, ``pseudofake``).

    ``overrides`` are dotted keys (``{"optim.lr": 0.01}``) applied on top, checked the same way.
    """
    path = Path(spec)
    if not path.is_file():
        if str(spec) in available_configs():
            path = CONFIG_DIR / f"{spec}.yaml"
        else:
            raise ConfigError(f"{spec}: no such config file or preset (presets: {', '.join(available_configs())})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read config ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    for dotted, value in overrides.items():
        _set_dotted(raw, dotted, value)
    return config_from_dict(raw, source=str(path))


def available_configs() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build and check a TrainConfig from plain data (as YAML gives it)."""
    config = _build(TrainConfig, raw, "", source)
    _check_values(config, source)
    return config


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown config key {prefix}{unknown[0]!s} "
                          f"(known here: {', '.join(sorted(names))})")
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{key}.", source)
        else:
            values[name] = _coerce(value, hint, key, source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check ``value`` against a simple type hint (int, float, str, bool, list[str], dict, X | None)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(o for o in options if o is not type(None))
        origin = typing.get_origin(hint)
    bad = ConfigError(f"{source}: config key {key} must be {_type_name(hint)}, got {value!r}")
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad
        return list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    raise TypeError(f"config type {hint} of {key} is not supported")  # a bug, not a user error


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is list:
        return "a list of strings"
    if origin is dict:
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _check_values(config: TrainConfig, source: str) -> None:
    values = _flatten(config.to_dict())
    for key, choices in _CHOICES.items():
        if values[key] not in choices:
            raise ConfigError(f"{source}: config key {key} must be one of {', '.join(choices)}, got {values[key]!r}")
    positive = ("epochs", "batch_size", "eval_batch_size", "data.train_clips", "data.val_clips", "data.test_clips")
    for key in positive:
        if values[key] < 1:
            raise ConfigError(f"{source}: config key {key} must be >= 1, got {values[key]}")
    for key in ("optim.lr",):
        if not values[key] > 0:
            raise ConfigError(f"{source}: config key {key} must be > 0, got {values[key]}")
    for key in ("optim.weight_decay", "optim.warmup_epochs", "optim.grad_clip", "optim.momentum",
                "data.num_workers", "threads", "checkpoint_every_steps", "mask_loss_weight",
                "data.degrade_ramp_epochs"):
        if values[key] < 0:
            raise ConfigError(f"{source}: config key {key} must be >= 0, got {values[key]}")
    if not 0 <= values["optim.min_lr_ratio"] <= 1:
        raise ConfigError(f"{source}: config key optim.min_lr_ratio must be within [0, 1]")
    if config.model.preset not in available_presets():
        raise ConfigError(f"{source}: config key model.preset must be one of {', '.join(available_presets())}, "
                          f"got {config.model.preset!r}")
    try:
        preset_config(config.model.preset, **config.model.overrides)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{source}: config key model.overrides: {err}") from None
    if config.data.kind == "pseudofake_pictures":
        _check_identity_split(config, source)
    if config.data.degrade:
        from ..data.degrade import degrade_options
        try:
            degrade_options(config.data.degrade)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{source}: config key data.degrade: {err}") from None
    if config.data.blend_frequency is not None or config.data.blend_warp != "linear":
        from ..data.pseudofake import resolve_blend
        try:  # the data set resolves the blend the same way
            resolve_blend(config.data.blend, config.data.blend_frequency, config.data.blend_warp)
        except (InputError, ValueError, TypeError, AttributeError) as err:
            raise ConfigError(f"{source}: config keys data.blend, data.blend_frequency, data.blend_warp: "
                              f"{err}") from None
    _check_swaps(config, source)
    if config.data.kind in ("cached", "pseudofake_cached") and not config.data.cache_dir:
        raise ConfigError(f"{source}: config key data.cache_dir is needed for data.kind {config.data.kind!r}")


def _check_swaps(config: TrainConfig, source: str) -> None:
    """Cross-identity blends: a share within [0, 1], known blend kinds, and a second person in every
    split that makes them (a donor is never the target's own person, nor from another split)."""
    from ..data.face_swap import SWAP_BLENDS

    data = config.data
    if not 0 <= data.swap_share <= 1:
        raise ConfigError(f"{source}: config key data.swap_share must be within [0, 1], got {data.swap_share}")
    if not data.swap_blends or set(data.swap_blends) - set(SWAP_BLENDS):
        raise ConfigError(f"{source}: config key data.swap_blends must be a non-empty list of "
                          f"{', '.join(SWAP_BLENDS)}, got {data.swap_blends}")
    if data.swap_pool < 1:
        raise ConfigError(f"{source}: config key data.swap_pool must be >= 1, got {data.swap_pool}")
    if data.swap_share == 0:
        return
    if data.kind != "pseudofake_pictures":
        raise ConfigError(f"{source}: config key data.swap_share needs data.kind pseudofake_pictures "
                          f"(face material with landmarks), not {data.kind!r}")
    from ..data.material.catalogue import expand_material, material_person

    for key in ("train_pictures", "val_pictures", "test_pictures"):
        people = {material_person(n) for n in expand_material(getattr(data, key))}
        if len(people) < 2:
            raise ConfigError(f"{source}: data.swap_share > 0 needs at least two people in data.{key} "
                              f"(a donor is never the target's own person), got {len(people)}")


def _check_identity_split(config: TrainConfig, source: str) -> None:
    """Refuse a config whose test material shows a person that training also sees."""
    from ..data.material.catalogue import expand_material, material_person

    people = {}
    for key in ("train_pictures", "test_pictures"):
        try:
            names = expand_material(getattr(config.data, key))
        except InputError as err:
            raise ConfigError(f"{source}: config key data.{key}: {err}") from None
        people[key] = {material_person(n) for n in names}
    shared = sorted(people["train_pictures"] & people["test_pictures"])
    if shared:
        raise ConfigError(f"{source}: data.test_pictures shows {', '.join(shared)}, who is also in "
                          "data.train_pictures: held-out test people must not be trained on")


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and key not in ("overrides", "degrade", "blend_frequency"):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
