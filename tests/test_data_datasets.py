"""Data-set readers on small trees built in each layout: labels, ids, splits, masks, bad trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from istvt_explain.data.datasets import read_dataset
from istvt_explain.errors import InputError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # readers look at paths only; preprocessing tests use real videos
    return path


def build_ffpp(root: Path, compression: str = "c23") -> None:
    for name in ("000", "003", "010", "020"):
        _touch(root / f"original_sequences/youtube/{compression}/videos/{name}.mp4")
    for method in ("Deepfakes", "FaceShifter"):
        for name in ("000_003", "003_000", "010_020", "020_010"):
            _touch(root / f"manipulated_sequences/{method}/{compression}/videos/{name}.mp4")
    for name in ("000_003", "003_000", "010_020"):  # one mask missing, none for FaceShifter
        _touch(root / f"manipulated_sequences/Deepfakes/masks/videos/{name}.mp4")
    (root / "splits").mkdir()
    (root / "splits/train.json").write_text(json.dumps([["000", "003"]]))
    (root / "splits/test.json").write_text(json.dumps([["020", "010"]]))


def test_ffpp_entries_get_labels_splits_and_their_existing_masks(tmp_path):
    build_ffpp(tmp_path)
    entries = {e.video_id: e for e in read_dataset("ffpp", tmp_path)}
    assert len(entries) == 12
    real, fake = entries["original/c23/003"], entries["Deepfakes/c23/003_000"]
    assert (real.label, real.manipulation, real.split, real.mask_path) == (0, "original", "train", None)
    assert (fake.label, fake.manipulation, fake.split, fake.source) == (1, "Deepfakes", "train", "003")
    assert fake.mask_path == tmp_path / "manipulated_sequences/Deepfakes/masks/videos/003_000.mp4"
    assert entries["Deepfakes/c23/020_010"].mask_path is None  # its mask file is missing
    assert entries["FaceShifter/c23/010_020"].split == "test" and entries["FaceShifter/c23/010_020"].mask_path is None
    assert len({e.key for e in entries.values()}) == 12
    only = read_dataset("ffpp", tmp_path, manipulations=["FaceShifter"])
    assert {e.manipulation for e in only} == {"original", "FaceShifter"}
    with pytest.raises(InputError, match="no FaceForensics\\+\\+ videos at compression c40"):
        read_dataset("ffpp", tmp_path, compression="c40")


def test_ffpp_bad_trees_are_refused_by_name(tmp_path):
    with pytest.raises(InputError, match="not a FaceForensics"):
        read_dataset("ffpp", tmp_path)
    with pytest.raises(InputError, match="no such data set folder"):
        read_dataset("ffpp", tmp_path / "missing")
    build_ffpp(tmp_path)
    (tmp_path / "splits/val.json").write_text("[[\"001\", ")
    with pytest.raises(InputError, match="val.json: not a FaceForensics\\+\\+ split file"):
        read_dataset("ffpp", tmp_path)


def test_celebdf_test_list_sets_the_split_and_the_folder_sets_the_label(tmp_path):
    for rel in ("Celeb-real/id0_0000.mp4", "Celeb-real/id1_0001.mp4", "YouTube-real/00001.mp4",
                "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0001.mp4"):
        _touch(tmp_path / rel)
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n0 Celeb-synthesis/gone.mp4\n")
    entries = {e.video_id: e for e in read_dataset("celebdf", tmp_path)}
    assert len(entries) == 6
    assert (entries["Celeb-real/id0_0000"].label, entries["Celeb-real/id0_0000"].split) == (0, "test")
    assert (entries["Celeb-synthesis/id0_id1_0000"].label, entries["Celeb-synthesis/id0_id1_0000"].split) == (1, "test")
    assert entries["YouTube-real/00001"].split == "train" and entries["Celeb-synthesis/id1_id0_0001"].label == 1
    assert not entries["Celeb-synthesis/gone"].path.exists()  # listed but missing: preprocess reports it
    (tmp_path / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\nreal id1\n")
    with pytest.raises(InputError, match="List_of_testing_videos.txt: line 2"):
        read_dataset("celebdf", tmp_path)


def test_dfdc_metadata_gives_labels_and_sources_and_bad_metadata_is_refused(tmp_path):
    for part, meta in (("dfdc_train_part_0", {"a.mp4": {"label": "REAL", "split": "train"},
                                              "b.mp4": {"label": "FAKE", "split": "train", "original": "a.mp4"}}),
                       ("dfdc_train_part_1", {"c.mp4": {"label": "FAKE", "split": "train", "original": None}})):
        (tmp_path / part).mkdir()
        (tmp_path / part / "metadata.json").write_text(json.dumps(meta))
        for name in meta:
            _touch(tmp_path / part / name)
    entries = {e.video_id: e for e in read_dataset("dfdc", tmp_path)}
    assert set(entries) == {"dfdc_train_part_0/a", "dfdc_train_part_0/b", "dfdc_train_part_1/c"}
    assert (entries["dfdc_train_part_0/b"].label, entries["dfdc_train_part_0/b"].source) == (1, "a.mp4")
    assert (entries["dfdc_train_part_1/c"].source, entries["dfdc_train_part_0/a"].label) == (None, 0)
    assert len(read_dataset("dfdc", tmp_path / "dfdc_train_part_0")) == 2  # one part alone
    (tmp_path / "dfdc_train_part_1/metadata.json").write_text("{not json")
    with pytest.raises(InputError, match="dfdc_train_part_1/metadata.json: not valid JSON"):
        read_dataset("dfdc", tmp_path)
    (tmp_path / "dfdc_train_part_1/metadata.json").write_text(json.dumps({"c.mp4": {"label": "MAYBE"}}))
    with pytest.raises(InputError, match="has no label REAL or FAKE"):
        read_dataset("dfdc", tmp_path)


def test_folder_layouts_label_by_the_real_and_fake_folders(tmp_path):
    for rel in ("real/a.mp4", "fake/b.avi", "fake/notes.txt", "test/real/c.mkv", "test/fake/d.mov"):
        _touch(tmp_path / rel)
    entries = {e.video_id: e for e in read_dataset("folder", tmp_path)}
    assert set(entries) == {"real/a", "fake/b", "test/real/c", "test/fake/d"}
    assert (entries["fake/b"].label, entries["fake/b"].split) == (1, None)
    assert (entries["test/real/c"].label, entries["test/real/c"].split) == (0, "test")
    with pytest.raises(InputError, match="no videos in real/ or fake/"):
        read_dataset("folder", tmp_path / "real")
    with pytest.raises(ValueError, match="unknown data set"):
        read_dataset("kinetics", tmp_path)
