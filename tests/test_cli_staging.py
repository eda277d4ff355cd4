"""StagedOutputs: outputs appear all at once, or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from istvt_explain.cli.errors import UserError
from istvt_explain.cli.staging import StagedOutputs


def test_commit_moves_everything_into_place(tmp_path: Path) -> None:
    with StagedOutputs() as staged:
        video = staged.claim(tmp_path / "a.mp4", "--out")
        folder = staged.claim(tmp_path / "frames", "--frames", directory=True)
        video.write_bytes(b"video")
        (folder / "01.png").write_bytes(b"png")
        assert not (tmp_path / "a.mp4").exists()  # nothing visible before the commit
        staged.commit()
    assert (tmp_path / "a.mp4").read_bytes() == b"video"
    assert (tmp_path / "frames" / "01.png").read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "frames"]
    assert oct((tmp_path / "a.mp4").stat().st_mode & 0o777) != oct(0o600)  # not left private


def test_an_error_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("old")
    with pytest.raises(RuntimeError), StagedOutputs(force=True) as staged:
        staged.claim(tmp_path / "old.json", "--json").write_text("new")
        staged.claim(tmp_path / "kf", "--frames", directory=True)
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "old"


def test_forced_folder_replaces_only_earlier_key_frames(tmp_path: Path) -> None:
    folder = tmp_path / "kf"
    folder.mkdir()
    (folder / "01_frame000003.png").write_bytes(b"old")
    (folder / "notes.txt").write_text("mine")
    with StagedOutputs(force=True) as staged:
        temp = staged.claim(folder, "--frames", directory=True, replace="[0-9][0-9]_frame*.png")
        (temp / "01_frame000007.png").write_bytes(b"new")
        staged.commit()
    assert sorted(p.name for p in folder.iterdir()) == ["01_frame000007.png", "notes.txt"]


@pytest.mark.parametrize("setup, message", [
    (lambda t: (t / "x.mp4").write_bytes(b"1"), "already exists"),
    (lambda t: (t / "x.mp4").mkdir(), "is a folder"),
])
def test_claiming_an_existing_file_or_a_folder_as_output_is_refused(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path)
    with StagedOutputs() as staged, pytest.raises(UserError, match=message):
        staged.claim(tmp_path / "x.mp4", "--out")
