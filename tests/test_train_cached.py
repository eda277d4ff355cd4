"""Training on the data pipeline's clip cache (real fakes, and pseudo-fakes from its real clips),
with a corrupt and a missing video in the cache: left out, named, never a crash."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from istvt_explain.data.cache import CacheSettings, open_cache, store_video
from istvt_explain.data.datasets.entry import VideoEntry
from istvt_explain.train import config_from_dict, fit
from istvt_explain.train.data import build_dataset
from istvt_explain.train.logs import read_metrics

SIZE, FRAMES = 64, 3


def build_cache(root: Path) -> Path:
    """Eight videos (train: 3 real, 3 fake; val: 1 + 1) of six 64 px crops each."""
    cache = open_cache(root / "cache", CacheSettings(image_size=SIZE, frames=FRAMES))
    rng = np.random.default_rng(0)
    videos = [("train", 0, "original"), ("train", 1, "Deepfakes"), ("train", 0, "original"),
              ("train", 1, "FaceSwap"), ("train", 0, "original"), ("train", 1, "Deepfakes"),
              ("val", 0, "original"), ("val", 1, "Deepfakes")]
    for i, (split, label, manipulation) in enumerate(videos):
        crops = rng.integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8)
        if label:
            crops[:, 20:40, 20:40] = 255  # an easy signal
        clips = SimpleNamespace(
            crops=crops, crop_frames=np.arange(6), boxes=np.zeros((6, 4), np.float32),
            keypoints=np.full((6, 5, 2), np.nan, np.float32), masks=None, fps=25.0, num_frames=6,
            frame_size=(SIZE, SIZE), face_frames=np.ones(6, bool), num_tracks=1, track_index=0)
        entry = VideoEntry(path=Path(f"/videos/{i}.mp4"), label=label, video_id=f"{manipulation}/{i:03d}",
                           dataset="toy", manipulation=manipulation, split=split)
        store_video(cache, entry, clips)
    return cache


def config(cache: Path, kind: str):
    return config_from_dict({
        "name": "cached", "model": {"preset": "tiny", "overrides": {"image_size": SIZE, "frames": FRAMES,
                                                                    "depth": 1}},
        "data": {"kind": kind, "cache_dir": str(cache), "blend": "auto"},
        "optim": {"name": "adamw", "lr": 1e-3}, "epochs": 1, "batch_size": 2, "eval_batch_size": 4,
        "device": "cpu", "threads": 1,
    })


def test_cached_training_skips_corrupt_and_missing_videos(tmp_path):
    cache = build_cache(tmp_path)
    videos = sorted((cache / "videos").iterdir())
    (videos[0] / "crops.npy").write_bytes(b"not an array")  # corrupt
    (videos[1] / "crops.npy").unlink()  # missing
    cfg = config(cache, "cached")
    train = build_dataset(cfg, cfg_model(cfg), "train")
    assert len(train) == 8  # the 4 intact train videos x 2 clips of 3 frames; the broken two are named
    reasons = {s["video"]: s["reason"] for s in train.skipped}
    assert sorted(reasons) == [videos[0].name, videos[1].name]
    assert "crops.npy is unreadable" in reasons[videos[0].name] and "crops.npy is missing" in reasons[videos[1].name]
    with pytest.warns(UserWarning, match="2 broken cache entries left out of the training data"):
        result = fit(cfg, tmp_path / "run", progress=False, tensorboard=False)
    assert result.epochs_done == 1
    (row,) = read_metrics(tmp_path / "run" / "metrics.csv")
    assert int(row["skipped"]) == 0  # found before training: no clip of theirs was ever drawn


def test_pseudofake_from_cached_real_clips(tmp_path):
    cache = build_cache(tmp_path)
    cfg = config(cache, "pseudofake_cached")
    train = build_dataset(cfg, cfg_model(cfg), "train")
    assert len(train) == 12  # 3 real videos x 2 clips, each as itself and as a pseudo-fake
    items = [train[i] for i in range(4)]
    assert [it["label"] for it in items] == [0.0, 1.0, 0.0, 1.0]
    assert {it["manipulation"] for it in items} == {"real", "pseudofake"}
    assert float(items[1]["mask"].max()) > 0
    result = fit(cfg, tmp_path / "run", progress=False, tensorboard=False)
    assert result.epochs_done == 1


def cfg_model(cfg):
    from istvt_explain.models import preset_config
    return preset_config(cfg.model.preset, **cfg.model.overrides)
