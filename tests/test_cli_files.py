"""Well-behaved files: the umask decides the permissions, the extension decides the container."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from istvt_explain.data.containers import VIDEO_CONTAINERS, container_for
from istvt_explain.data.video import VideoWriter, write_video
from istvt_explain.errors import InputError

FORMATS = {".mp4": "mov,mp4,m4a,3gp,3g2,mj2", ".mkv": "matroska,webm", ".mov": "mov,mp4,m4a,3gp,3g2,mj2"}


def _frames(n: int = 3) -> list[np.ndarray]:
    return [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(n)]


@pytest.mark.parametrize("suffix", sorted(VIDEO_CONTAINERS))
def test_container_follows_the_extension(tmp_path: Path, suffix: str) -> None:
    path = write_video(tmp_path / f"v{suffix}", _frames(), fps=10)
    with av.open(str(path)) as container:
        assert container.format.name == FORMATS[suffix]
        assert container.streams.video[0].codec_context.name == "h264"
        if suffix == ".mov":  # mp4 and mov share a demuxer: the brand tells them apart
            assert container.metadata.get("major_brand", "").strip() == "qt"
        if suffix == ".mp4":
            assert container.metadata.get("major_brand", "").strip() != "qt"
        assert sum(1 for _ in container.decode(video=0)) == 3


@pytest.mark.parametrize("name", ["v.avi", "v.webm", "v", "v.MP4.part"])
def test_other_extensions_are_refused_before_writing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="not a video container"):
        VideoWriter(tmp_path / name, 10, 48, 32)
    assert list(tmp_path.iterdir()) == []


def test_extension_is_case_insensitive() -> None:
    assert container_for("CLIP.MKV") == "matroska"


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_video_gets_the_umask_s_permissions(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        path = write_video(tmp_path / "v.mp4", _frames(), fps=10)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
