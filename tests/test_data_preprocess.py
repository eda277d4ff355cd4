"""`istvt-explain preprocess` on a generated FF++ tree: cache, resume, failures, cached datasets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from istvt_explain.cli import main
from istvt_explain.data.cache import cached_videos
from istvt_explain.data.datasets import CachedClipDataset, PseudoFakeClips
from istvt_explain.data.media import make_face_video
from istvt_explain.data.video import VideoWriter
from istvt_explain.errors import InputError

ARGS = ["--dataset", "ffpp", "--preset", "tiny", "--image-size", "64", "--no-progress"]


def _mask_video(path: Path, boxes: np.ndarray, size: tuple[int, int]) -> None:
    """A FaceForensics++-style mask video: white where the face was swapped, black elsewhere."""
    with VideoWriter(path, 25, *size) as writer:
        for x0, y0, x1, y1 in boxes:
            frame = np.zeros((size[1], size[0], 3), np.uint8)
            cv2.ellipse(frame, (int((x0 + x1) / 2), int((y0 + y1) / 2)), (int((x1 - x0) / 2), int((y1 - y0) / 2)),
                        0, 0, 360, (255, 255, 255), -1)
            writer.write(frame)


def build_ffpp_tree(root: Path, frames: int = 16, reals: tuple[str, ...] = ("000", "003")) -> Path:
    """Real face videos in the FF++ layout: originals, Deepfakes with masks, a corrupt and a faceless file."""
    size = (160, 120)
    originals = root / "original_sequences/youtube/c23/videos"
    fakes = root / "manipulated_sequences/Deepfakes/c23/videos"
    masks = root / "manipulated_sequences/Deepfakes/masks/videos"
    for folder in (originals, fakes, masks):
        folder.mkdir(parents=True)
    for name in reals:
        make_face_video(originals / f"{name}.mp4", frames=frames, size=size, motion="pan")
    for name in ("000_003", "003_000"):
        video = make_face_video(fakes / f"{name}.mp4", frames=frames, size=size, face="astronaut-mirrored")
        _mask_video(masks / f"{name}.mp4", video.boxes, size)
    (originals / "010.mp4").write_text("not a video at all")
    make_face_video(originals / "020.mp4", frames=8, size=size, visible=[False] * 8)
    (root / "train.json").write_text(json.dumps([["000", "003"]]))
    (root / "test.json").write_text(json.dumps([["010", "020"]]))
    return root


def _snapshot(cache: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (cache / "videos").glob("*/crops.npy")}


def test_preprocess_twice_does_the_work_once(tmp_path, capsys):
    root, cache = build_ffpp_tree(tmp_path / "ffpp"), tmp_path / "cache"
    assert main(["preprocess", str(root), "--out", str(cache), *ARGS]) == 1  # two videos fail
    out = capsys.readouterr().out
    assert "6 videos: 4 processed, 0 already cached, 2 failed" in out
    assert f"{root}/original_sequences/youtube/c23/videos/010.mp4: not a readable video" in out
    assert "020.mp4: no face found in any of its 8 frames" in out
    failures = json.loads((cache / "failures.json").read_text())
    assert sorted(Path(f["path"]).name for f in failures) == ["010.mp4", "020.mp4"]
    first = _snapshot(cache)
    assert len(first) == 4

    assert main(["preprocess", str(root), "--out", str(cache), *ARGS]) == 1
    assert "6 videos: 0 processed, 4 already cached, 2 failed" in capsys.readouterr().out
    assert _snapshot(cache) == first  # nothing rewritten

    # Other settings into the same cache: refused, nothing touched.
    assert main(["preprocess", str(root), "--out", str(cache), *ARGS, "--image-size", "96"]) == 2
    assert "cache was made with other settings: image_size 64 (asked 96)" in capsys.readouterr().err
    assert _snapshot(cache) == first


def test_cached_datasets_serve_clips_masks_and_pseudofakes(tmp_path):
    root, cache = build_ffpp_tree(tmp_path / "ffpp"), tmp_path / "cache"
    main(["preprocess", str(root), "--out", str(cache), *ARGS])
    train = CachedClipDataset(cache, split="train", frames=6, stride=3)
    assert len(train.videos) == 4 and len(train) == 4 * 4  # 16 frames -> windows at 0, 3, 6, 9
    assert sorted(train.labels.tolist()) == [0] * 8 + [1] * 8
    item = train[int(np.flatnonzero(train.labels == 1)[0])]
    assert item["clip"].shape == (6, 3, 64, 64) and item["clip"].dtype == torch.float32
    assert -1 <= item["clip"].min() and item["clip"].max() <= 1
    assert item["label"].item() == 1.0 and item["manipulation"] == "Deepfakes" and bool(item["has_mask"])
    mask = item["mask"]
    assert mask.shape == (6, 64, 64) and mask[:, 28:36, 28:36].mean() > 0.9 and mask[:, :4, :4].max() < 0.1
    real = train[int(np.flatnonzero(train.labels == 0)[0])]
    assert real["mask"].abs().sum() == 0 and bool(real["has_mask"])
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=3)))
    assert batch["clip"].shape == (3, 6, 3, 64, 64) and batch["label"].dtype == torch.float32
    assert len(CachedClipDataset(cache, split="test")) == 0
    assert len(CachedClipDataset(cache, labels=[0], max_clips_per_video=1)) == 2

    pseudo = PseudoFakeClips(CachedClipDataset(cache, labels=[0]), probability=1.0, seed=0)
    fake = pseudo[0]
    assert fake["label"].item() == 1.0 and fake["manipulation"] == "pseudofake"
    assert fake["mask"].max() > 0.2 and fake["clip"].shape == (6, 3, 64, 64)


def test_missing_and_corrupt_files_of_a_tree_are_reported_by_name(tmp_path, capsys):
    part = tmp_path / "dfdc" / "dfdc_train_part_0"
    part.mkdir(parents=True)
    make_face_video(part / "real.mp4", frames=8, size=(160, 120), motion="still")
    (part / "cut.mp4").write_bytes((part / "real.mp4").read_bytes()[:300])
    (part / "metadata.json").write_text(json.dumps({
        "real.mp4": {"label": "REAL", "split": "train"}, "cut.mp4": {"label": "FAKE", "original": "real.mp4"},
        "gone.mp4": {"label": "FAKE", "split": "train", "original": None}}))
    cache = tmp_path / "cache"
    code = main(["preprocess", str(tmp_path / "dfdc"), "--out", str(cache), "--dataset", "dfdc", "--preset", "tiny",
                 "--image-size", "64", "--frames", "4", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "3 videos: 1 processed, 0 already cached, 2 failed" in out
    assert f"{part / 'gone.mp4'}: no such file" in out and f"{part / 'cut.mp4'}: " in out
    assert [m["video_id"] for m in cached_videos(cache)] == ["dfdc_train_part_0/real"]


@pytest.mark.slow
def test_killed_run_resumes_and_loses_nothing(tmp_path):
    root = build_ffpp_tree(tmp_path / "ffpp", frames=30, reals=("000", "003", "005", "007", "009"))
    cache = tmp_path / "cache"
    code = ("import sys; from istvt_explain.cli import main; "
            f"sys.exit(main({['preprocess', str(root), '--out', str(cache), *ARGS]!r}))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((cache / "videos").glob("*/meta.json"))) >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _snapshot(cache)
    assert 1 <= len(finished) < 7, "the run was not interrupted midway"
    for entry in (cache / "videos").iterdir():  # only whole entries were published
        assert {"meta.json", "crops.npy", "frames.npy"} <= {p.name for p in entry.iterdir()}

    assert main(["preprocess", str(root), "--out", str(cache), *ARGS, "--workers", "2"]) == 1
    after = _snapshot(cache)
    assert len(after) == 7 and all(after[k] == v for k, v in finished.items())
    assert not any((cache / ".tmp").iterdir())  # the killed run's half-built entry is gone


def test_a_folder_that_is_not_a_cache_is_refused(tmp_path):
    with pytest.raises(InputError, match="not an istvt-explain cache"):
        CachedClipDataset(tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "--workers must be at least 1"),
    (["--manipulations", "Deepfakes"], "apply to --dataset ffpp only"),
])
def test_bad_usage_is_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "real").mkdir()
    code = main(["preprocess", str(tmp_path), "--dataset", "folder", "--out", str(tmp_path / "c"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
