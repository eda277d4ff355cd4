"""`istvt-explain scan`: every video of folders and files, a table, an index, errors that never stop it, resume."""

from __future__ import annotations

import csv
import itertools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from e2e_support import face_video, tiny_weights
from test_cli_explain_video import run_cli

from istvt_explain.errors import InputError
from istvt_explain.pipeline.scan import CSV_COLUMNS, find_videos, video_key


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scan-in")
    (root / "videos" / "sub").mkdir(parents=True)
    face_video(root / "videos" / "a.mp4")
    face_video(root / "videos" / "sub" / "b.mp4", frames=18, visible=np.arange(18) < 12)
    (root / "videos" / "sub" / "broken.mov").write_text("not a video\n")
    (root / "videos" / "notes.txt").write_text("not looked at\n")
    return {"root": root, "videos": root / "videos", "weights": tiny_weights(root / "tiny.safetensors")}


@pytest.fixture(scope="module")
def first_scan(inputs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("scan-out") / "results"
    code, stdout, stderr = run_cli("scan", inputs["videos"], "--out", out, "--weights", inputs["weights"],
                                   "--method", "rollout", "-q")
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out}


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_find_videos_walks_folders_and_takes_files_as_given(tmp_path: Path) -> None:
    for name in ("z.mp4", "a/b.MKV", "a/.hidden.mp4", ".cache/c.mp4", "a/readme.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "odd.bin").write_bytes(b"")
    found = find_videos([tmp_path, tmp_path / "z.mp4", tmp_path / "odd.bin"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/b.MKV", "z.mp4", "odd.bin"]
    with pytest.raises(InputError, match="no such file"):
        find_videos([tmp_path / "missing"])


def test_keys_differ_for_same_names_in_other_folders(tmp_path: Path) -> None:
    assert video_key(tmp_path / "x" / "clip.mp4") != video_key(tmp_path / "y" / "clip.mp4")
    assert video_key(tmp_path / "x" / "clip.mp4").startswith("clip-")


def test_one_row_per_video_and_errors_do_not_stop_the_scan(first_scan, inputs) -> None:
    assert first_scan["code"] == 0, first_scan["stderr"]
    rows = _rows(first_scan["out"])
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_name) == ["a.mp4", "b.mp4", "broken.mov"]
    assert by_name["broken.mov"]["error"].startswith("not a readable video") and by_name["broken.mov"]["verdict"] == ""
    for name in ("a.mp4", "b.mp4"):
        row = by_name[name]
        assert row["error"] == "" and row["verdict"] in ("real", "fake") and row["faces"] == "1"
        assert 0 <= float(row["fake_probability"]) <= 1 and float(row["seconds"]) > 0
        report = json.loads((first_scan["out"] / row["report"]).read_text())
        assert report["input"]["path"] == row["path"] and report["face_tracks"][0]["frames"] in (12, 18)


def test_index_shows_a_thumbnail_per_video_most_suspicious_first(first_scan) -> None:
    out = first_scan["out"]
    page = (out / "index.html").read_text()
    thumbs = sorted((out / "thumbs").glob("*.jpg"))
    assert len(thumbs) == 2 and all(t.read_bytes()[:2] == b"\xff\xd8" for t in thumbs)  # JPEG
    for t in thumbs:
        assert f'src="thumbs/{t.name}"' in page
    peaks = []
    for row in _rows(out):
        if not row["error"]:
            report = json.loads((out / row["report"]).read_text())
            peaks.append((max(c["fake_probability"] for c in report["clips"]), Path(row["path"]).name))
    order = [name for _, name in sorted(peaks, reverse=True)] + ["broken.mov"]
    positions = [page.index(f"/{name}</p>") for name in order]
    assert positions == sorted(positions)


def test_files_get_the_umask_s_permissions(first_scan) -> None:
    mask = os.umask(0)
    os.umask(mask)
    out = first_scan["out"]
    for path in (out / "results.csv", out / "index.html", *out.glob("reports/*.json"), *out.glob("thumbs/*")):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path
    assert not list(out.rglob("*.part"))


def test_rerun_skips_finished_videos_and_takes_new_ones(first_scan, inputs, tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(first_scan["out"], out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "reports").iterdir()}
    videos = tmp_path / "more"
    videos.mkdir()
    face_video(videos / "c.mp4")
    code, stdout, stderr = run_cli("scan", inputs["videos"], videos, "--out", out, "--weights", inputs["weights"],
                                   "--method", "rollout")
    assert code == 0, stderr
    after = {p.name: p.stat().st_mtime_ns for p in (out / "reports").iterdir()}
    assert {k: after[k] for k in before} == before  # nothing redone, the failed file included
    assert len(after) == len(before) + 1
    assert "1 analysed now" in stdout and "3 done before" in stdout
    assert [Path(r["path"]).name for r in _rows(out)] == ["a.mp4", "b.mp4", "broken.mov", "c.mp4"]


def test_bad_usage_exits_2_before_any_work(inputs, tmp_path: Path) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine")
    for argv in (["scan", tmp_path / "missing", "--out", tmp_path / "R"],
                 ["scan", inputs["videos"], "--out", tmp_path / "foreign"],
                 ["scan", inputs["videos"], "--out", tmp_path / "no" / "such" / "R"],
                 ["scan", inputs["videos"], "--out", tmp_path / "R", "--detect-every", "0"]):
        code, _, stderr = run_cli(*argv)
        assert code == 2 and len(stderr.strip().splitlines()) == 1, (argv, stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign"]


def test_worker_processes_give_the_same_rows(first_scan, inputs, tmp_path: Path) -> None:
    """--workers 1: faces are found in another process while the model runs; nothing else changes."""
    out = tmp_path / "results"
    code, _, stderr = run_cli("scan", inputs["videos"], "--out", out, "--weights", inputs["weights"],
                              "--method", "rollout", "--workers", "1", "-q")
    assert code == 0, stderr
    keep = ("path", "verdict", "fake_probability", "segments", "faces", "error", "report")
    assert [{k: r[k] for k in keep} for r in _rows(out)] == [{k: r[k] for k in keep} for r in _rows(first_scan["out"])]


def test_torchrun_shards_give_the_same_rows(first_scan, inputs, tmp_path: Path) -> None:
    """Two CPU processes under torchrun: each takes every second video; rank 0 writes the whole table."""
    import subprocess
    import sys

    torchrun = Path(sys.executable).parent / "torchrun"
    cli = Path(sys.executable).parent / "istvt-explain"
    if not torchrun.exists() or not cli.exists():
        pytest.skip("torchrun or the istvt-explain script is not installed next to this Python")
    out = tmp_path / "results"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "--no-python", str(cli), "scan",
                           str(inputs["videos"]), "--out", str(out), "--weights", str(inputs["weights"]),
                           "--method", "rollout"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2" in proc.stdout
    keep = ("path", "verdict", "fake_probability", "segments", "faces", "error", "report")
    assert [{k: r[k] for k in keep} for r in _rows(out)] == [{k: r[k] for k in keep} for r in _rows(first_scan["out"])]
    assert len(list((out / "thumbs").glob("*.jpg"))) == 2 and (out / "index.html").exists()
    ranks = {json.loads(p.read_text())["scan"]["rank"] for p in (out / "reports").glob("*.json")
             if not p.name.endswith(".error.json")}
    assert ranks == {0, 1}  # a.mp4 and sub/broken.mov on rank 0, sub/b.mp4 on rank 1


def test_clips_of_short_videos_share_model_calls() -> None:
    """Groups end when their clips fill whole batches (or at the end); errors ride along."""
    from types import SimpleNamespace

    from istvt_explain.pipeline.scan.runner import _batches, _Failed

    def item(name: str, clips: int | None):
        made = _Failed("bad") if clips is None else SimpleNamespace(frame_indices=[0] * clips)
        return Path(name), made, 0.0

    items = [item("a", 2), item("b", None), item("c", 1), item("d", 1), item("e", 9), item("f", 3)]
    groups = [[p.name for p, _, _ in g] for g in _batches(items, batch_size=4)]
    assert groups == [["a", "b", "c", "d"], ["e", "f"]]

    # errors with no clips waiting go at once, each its own group: before, a run of unreadable files was
    # held to the end of the scan (the next clips, or the end), and a kill lost all their records
    items = [item("x", None), item("y", None), item("z", 2), item("w", None), item("v", 2)]
    groups = [[p.name for p, _, _ in g] for g in _batches(items, batch_size=4)]
    assert groups == [["x"], ["y"], ["z", "w", "v"]]

    def unreadable_files():  # a stream that is never exhausted: every group must come without the end
        while True:
            yield item("junk", None)

    first_groups = itertools.islice(_batches(unreadable_files(), batch_size=4), 3)
    assert [[p.name for p, _, _ in g] for g in first_groups] == [["junk"]] * 3


def test_batched_scores_equal_one_video_at_a_time(first_scan, inputs) -> None:
    """a.mp4 (2 clips) shared model calls with sub/b.mp4: its scores are those of analyze_video alone."""
    import istvt_explain as ie
    from istvt_explain.pipeline import PipelineOptions, analyze_video

    model = ie.load_model(inputs["weights"])
    alone = analyze_video(inputs["videos"] / "a.mp4", model, PipelineOptions(method="rollout"))
    row = next(r for r in _rows(first_scan["out"]) if r["path"].endswith("a.mp4"))
    report = json.loads((first_scan["out"] / row["report"]).read_text())
    np.testing.assert_allclose([c["fake_probability"] for c in report["clips"]], alone.clip_probability, atol=2e-6)
    assert report["verdict"] == alone.verdict
