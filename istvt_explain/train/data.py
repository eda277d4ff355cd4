"""Data sets for a training config: the clip cache of the data pipeline, or pseudo-fakes.

Everything returned here follows the clip contract (``clip``, ``label``, ``video_id``,
``manipulation``, optional ``mask``), so the loop and the evaluation do not care where clips
come from.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from ..data.datasets.pseudofake import CachedRealSource, MaterialClipSource, PseudoFakeDataset
from ..data.degrade import degrade_options
from ..data.landmarks import MODEL_ARCHIVE as LANDMARK_ARCHIVE
from ..data.material.archives import ensure_archives
from ..data.material.catalogue import material_archives
from ..errors import InputError
from ..models import ISTVTConfig
from .config import TrainConfig

SPLITS = ("train", "val", "test")
# Different seeds per split, so validation never sees the training draws of the same picture.
_SPLIT_SEED = {"train": 0, "val": 1_000_003, "test": 2_000_029}


def build_dataset(config: TrainConfig, model_config: ISTVTConfig, split: str) -> Dataset:
    """The data set of one split (train, val or test) as the config describes it."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    data = config.data
    seed = config.seed + _SPLIT_SEED[split]
    if data.kind == "pseudofake_pictures":
        pictures = {"train": data.train_pictures, "val": data.val_pictures, "test": data.test_pictures}[split]
        length = {"train": data.train_clips, "val": data.val_clips, "test": data.test_clips}[split]
        swaps = data.swap_share > 0
        # pictures of other packages (and the landmark model for swaps): fetched once, by pip
        ensure_archives([*material_archives(pictures), *([LANDMARK_ARCHIVE] if swaps else [])])
        # each split's donors are its own people: a training swap never shows a val or test person
        source = MaterialClipSource(pictures, model_config.frames, model_config.image_size, landmarks=swaps,
                                    donor_pool=data.swap_pool)
        degrade = data.augment and (split == "train" or data.degrade_eval)
        ramp = data.degrade_ramp_epochs if split == "train" else 0  # evaluation always sees the full rates
        return PseudoFakeDataset(source, length, seed=seed, augment=degrade, blend=data.blend,
                                 degrade=degrade_options(data.degrade), degrade_ramp_epochs=ramp,
                                 blend_frequency=data.blend_frequency, blend_warp=data.blend_warp,
                                 swap_share=data.swap_share, swap_blends=data.swap_blends)
    cached = _cached_dataset(config, model_config, split)
    if data.kind == "pseudofake_cached":
        return PseudoFakeDataset(CachedRealSource(cached), seed=seed, augment=data.augment and split == "train",
                                 blend=data.blend, blend_frequency=data.blend_frequency, blend_warp=data.blend_warp)
    return cached


def _cached_dataset(config: TrainConfig, model_config: ISTVTConfig, split: str) -> Dataset:
    try:
        from ..data.datasets import CachedClipDataset
    except ImportError as err:
        raise InputError(f"data.kind {config.data.kind!r} needs the clip cache reader "
                         f"(istvt_explain.data.datasets), which is not available: {err}") from None
    name = {"train": config.data.train_split, "val": config.data.val_split, "test": config.data.test_split}[split]
    kwargs = {"split": name, "frames": model_config.frames}
    if config.data.stride is not None:
        kwargs["stride"] = config.data.stride
    return CachedClipDataset(config.data.cache_dir, **kwargs)
