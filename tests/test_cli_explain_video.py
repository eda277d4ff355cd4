"""`istvt-explain VIDEO --out heatmap.mp4`: outputs checked with PyAV, and every kind of bad input.

The command runs in-process (``cli.main``): the same code path as the console script, without
paying torch's import time for every case.  ``test_cli_demo.py`` runs the real console script.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from e2e_support import (
    FPS,
    FRAMES,
    box_contrast,
    face_video,
    faceless_video,
    leftovers,
    probe,
    tiny_weights,
    truncated_faststart,
)

import istvt_explain as ie
from istvt_explain.cli import main


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-media")
    weights = tiny_weights(root / "tiny.safetensors")
    torch_small = root / "small.safetensors"
    ie.save_checkpoint(ie.create_model("small", depth=1), torch_small)
    corrupt = root / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all" + bytes(64))
    video = face_video(root / "face.mp4")
    partial = face_video(root / "partial.mp4", frames=18, visible=np.arange(18) < 12)
    truncated = root / "truncated.mp4"
    truncated.write_bytes(video.path.read_bytes()[:1500])
    text = root / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    return {"root": root, "weights": weights, "small": torch_small, "corrupt": corrupt, "video": video.path,
            "truth": video.boxes, "partial": partial.path, "truncated": truncated, "text": text,
            "empty": empty, "faceless": faceless_video(root / "faceless.mp4"),
            "cut": truncated_faststart(video.path, root / "cut.mp4")}


@pytest.fixture(scope="module")
def full_run(media, tmp_path_factory) -> dict:
    """One run with every output: video, JSON report, maps and key frames."""
    out = tmp_path_factory.mktemp("cli-out")
    code, stdout, stderr = run_cli(media["video"], "--out", out / "heatmap.mp4", "--json", out / "report.json",
                                   "--maps", out / "maps.npz", "--frames", out / "keyframes", "--keyframes", 3,
                                   "--weights", media["weights"], "--method", "relevance", "--colormap", "inferno")
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out}


def test_a_run_succeeds_silently_on_stderr_and_prints_a_summary(full_run) -> None:
    assert full_run["code"] == 0, full_run["stderr"]
    assert full_run["stderr"] == ""  # no progress bar when stderr is not a terminal, no demo notice
    summary = full_run["stdout"]
    assert "verdict" in summary and "frames/s" in summary and "heatmap.mp4" in summary


def test_video_is_h264_with_input_frames_and_rate(full_run, media) -> None:
    info = probe(full_run["out"] / "heatmap.mp4")
    assert info["codec"] == "h264"
    assert info["frames"] == FRAMES and info["fps"] == pytest.approx(FPS)
    assert info["width"] == 320 and info["height"] > 240  # the timeline strip under the frame


def test_heatmap_is_drawn_where_the_face_is(full_run, media) -> None:
    rendered = probe(full_run["out"] / "heatmap.mp4")["pixels"]
    original = probe(media["video"])["pixels"]
    report = json.loads((full_run["out"] / "report.json").read_text())
    for i in (0, FRAMES // 2, FRAMES - 1):
        box = np.array(report["frames"][i]["box"])
        truth = media["truth"][i]
        assert box[0] < (truth[0] + truth[2]) / 2 < box[2]  # the box is on the face
        inside, outside = box_contrast(original[i], rendered[i], box)
        assert inside > 8.0 and outside < 3.0, (i, inside, outside)


def test_report_holds_the_verdict_method_weights_and_every_frame(full_run, media) -> None:
    report = json.loads((full_run["out"] / "report.json").read_text())
    assert report["verdict"] in ("real", "fake") and 0 <= report["fake_probability"] <= 1
    assert report["method"]["name"] == "relevance" and report["tool"]["version"] == ie.__version__
    assert report["weights"]["path"] == str(media["weights"]) and report["weights"]["demo"] is False
    assert len(report["frames"]) == FRAMES and len(report["clips"]) == 2
    assert all(f["fake_probability"] is not None and f["box"] for f in report["frames"])
    assert len(report["suspicious_frames"]) == 3 and report["skipped_frames"] == []


def test_maps_and_keyframes_are_written_and_nothing_else(full_run) -> None:
    data = np.load(full_run["out"] / "maps.npz")
    assert data["maps"].shape == (FRAMES, 240, 320) and data["maps"].dtype == np.float16
    assert data["maps"].max() > 0
    pngs = sorted((full_run["out"] / "keyframes").glob("*.png"))
    assert len(pngs) == 3 and pngs[0].name.startswith("01_frame")
    assert leftovers(full_run["out"], {"heatmap.mp4", "report.json", "maps.npz", "keyframes"}) == []


def test_outputs_get_the_umask_s_permissions(full_run) -> None:
    mask = os.umask(0)
    os.umask(mask)
    out = full_run["out"]
    for path in (out / "heatmap.mp4", out / "report.json", out / "maps.npz", *(out / "keyframes").glob("*.png")):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path
    assert (out / "keyframes").stat().st_mode & 0o777 == 0o777 & ~mask


def test_frame_numbers_agree_everywhere(full_run) -> None:
    """Key-frame names, the report and the summary count frames from 0 (docs/cli.md)."""
    report = json.loads((full_run["out"] / "report.json").read_text())
    names = sorted(p.name for p in (full_run["out"] / "keyframes").glob("*.png"))
    assert names == [f"{rank:02d}_frame{i:06d}.png" for rank, i in enumerate(report["suspicious_frames"], 1)]
    assert report["frame_numbering"] == "0-based" and report["frames"][0]["index"] == 0
    line = next(x for x in full_run["stdout"].splitlines() if "most suspicious" in x)
    shown = [int(part.split(" (")[0]) for part in line.split("frames ", 1)[1].split(", ")]
    assert shown[:3] == report["suspicious_frames"]


def test_face_tracks_in_report_and_summary(full_run) -> None:
    report = json.loads((full_run["out"] / "report.json").read_text())
    assert report["face"] == 0
    [track] = report["face_tracks"]
    assert track["ranges"] == [[0, FRAMES - 1]] and track["frames"] == FRAMES and track["explained"]
    assert 20 < track["size"] < 240
    assert "1 track found" in full_run["stdout"] and f"#0: frames 0-{FRAMES - 1}" in full_run["stdout"]


def test_face_all_explains_every_track(media, two_face_video, tmp_path: Path) -> None:
    code, out, err = run_cli(two_face_video.path, "--face", "all", "--out", tmp_path / "h.mp4", "--json",
                             tmp_path / "r.json", "--weights", media["weights"], "--method", "rollout")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    faces = report["faces"]
    assert [f["index"] for f in faces] == [0, 1] and faces[0]["size"] > faces[1]["size"]
    for f in faces:
        assert f["verdict"] in ("real", "fake") and 0 <= f["fake_probability"] <= 1
        assert isinstance(f["segments"], list) and f["ranges"] == [[0, 19]]
    assert all(t["explained"] for t in report["face_tracks"])
    lead = max(faces, key=lambda f: (f["verdict"] == "fake", f["peak_probability"], -f["index"]))
    assert report["face"] == lead["index"] and report["verdict"] == lead["verdict"]
    assert "2 tracks found" in out and "#0: frames 0-19" in out and "#1: frames 0-19" in out
    # both faces get a box and a map: the picture changes around each of them
    rendered = probe(tmp_path / "h.mp4")["pixels"][0][:240].astype(float)
    original = probe(two_face_video.path)["pixels"][0].astype(float)
    for truth in (two_face_video.boxes[0], two_face_video.other_boxes[0]):
        x0, y0, x1, y1 = (int(v) for v in truth)
        assert np.abs(rendered[y0:y1, x0:x1] - original[y0:y1, x0:x1]).mean() > 8.0, truth


def test_default_lists_the_other_face(media, two_face_video, tmp_path: Path) -> None:
    code, out, err = run_cli(two_face_video.path, "--json", tmp_path / "r.json", "--weights", media["weights"],
                             "--method", "rollout")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert "faces" not in report and [t["explained"] for t in report["face_tracks"]] == [True, False]
    assert "#1: frames 0-19" in out and "not explained" in out and "--face all" in out


def test_container_follows_the_out_extension(media, tmp_path: Path) -> None:
    code, _, err = run_cli(media["video"], "--out", tmp_path / "h.mkv", "--weights", media["weights"],
                           "--method", "rollout", "--quiet")
    assert code == 0, err
    with av.open(str(tmp_path / "h.mkv")) as container:
        assert container.format.name.startswith("matroska")
    assert leftovers(tmp_path, {"h.mkv"}) == []


def test_frames_without_a_face_are_reported_as_skipped_and_still_rendered(media, tmp_path: Path) -> None:
    code, _, err = run_cli(media["partial"], "--out", tmp_path / "h.mp4", "--json", tmp_path / "r.json",
                           "--weights", media["weights"], "--method", "rollout", "--quiet")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["skipped_frames"] == list(range(12, 18)) and report["skipped_ranges"] == [[12, 17]]
    assert probe(tmp_path / "h.mp4")["frames"] == 18


def test_force_overwrites_and_quiet_prints_nothing(media, tmp_path: Path) -> None:
    out = tmp_path / "h.mp4"
    out.write_bytes(b"old")
    code, stdout, stderr = run_cli(media["video"], "--out", out, "--weights", media["weights"],
                                   "--method", "rollout", "--force", "--quiet")
    assert code == 0 and stdout == "" and stderr == ""
    assert probe(out)["frames"] == FRAMES


BAD_INPUTS = {
    "missing path": lambda m, t: [t / "nope.mp4", "--out", t / "o.mp4"],
    "directory": lambda m, t: [m["root"], "--out", t / "o.mp4"],
    "not a video": lambda m, t: [m["text"], "--out", t / "o.mp4"],
    "empty file": lambda m, t: [m["empty"], "--out", t / "o.mp4"],
    "truncated file": lambda m, t: [m["truncated"], "--out", t / "o.mp4"],
    "truncated mid-stream": lambda m, t: [m["cut"], "--out", t / "o.mp4"],
    "no face": lambda m, t: [m["faceless"], "--out", t / "o.mp4", "--json", t / "r.json"],
    "unknown container": lambda m, t: [m["video"], "--out", t / "o.avi"],
    "missing output folder": lambda m, t: [m["video"], "--out", t / "no" / "such" / "o.mp4"],
    "unwritable output": lambda m, t: [m["video"], "--out", "/proc/istvt-explain-o.mp4"],
    "output is a folder": lambda m, t: [m["video"], "--out", t],
    "existing output": lambda m, t: [m["video"], "--out", t / "exists.mp4"],
    "existing report": lambda m, t: [m["video"], "--out", t / "o.mp4", "--json", t / "exists.mp4"],
    "output over input": lambda m, t: [m["video"], "--out", m["video"], "--force"],
    "wrong preset weights": lambda m, t: [m["video"], "--out", t / "o.mp4", "--preset", "tiny",
                                          "--weights", m["small"]],
    "corrupt weights": lambda m, t: [m["video"], "--out", t / "o.mp4", "--weights", m["corrupt"]],
    "missing weights": lambda m, t: [m["video"], "--out", t / "o.mp4", "--weights", t / "none.safetensors"],
    "unknown colour map": lambda m, t: [m["video"], "--out", t / "o.mp4", "--colormap", "nope"],
    "no output asked": lambda m, t: [m["video"]],
    "video and --demo": lambda m, t: [m["video"], "--demo", "--out", t / "o.mp4"],
    "bad stride": lambda m, t: [m["video"], "--out", t / "o.mp4", "--stride", "0"],
    "face track that is not there": lambda m, t: [m["video"], "--out", t / "o.mp4", "--face", "3"],
}
if not torch.cuda.is_available():
    BAD_INPUTS["cuda without a GPU"] = lambda m, t: [m["video"], "--out", t / "o.mp4", "--device", "cuda"]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_2_nothing_written(case: str, media, tmp_path: Path) -> None:
    (tmp_path / "exists.mp4").write_bytes(b"keep me")
    argv = BAD_INPUTS[case](media, tmp_path)
    if "--weights" not in argv:
        argv += ["--weights", media["weights"]]
    before = sorted(p.name for p in media["root"].iterdir())
    code, stdout, stderr = run_cli(*argv, "--method", "rollout")
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("istvt-explain: error:"), stderr
    assert "Traceback" not in stderr
    assert leftovers(tmp_path, {"exists.mp4"}) == []
    assert (tmp_path / "exists.mp4").read_bytes() == b"keep me"
    assert sorted(p.name for p in media["root"].iterdir()) == before


def test_wrong_preset_checkpoint_header(media, tmp_path: Path) -> None:
    """A checkpoint whose stored config says tiny but whose tensors are another model's."""
    from safetensors.torch import load_file, save_file

    from istvt_explain.models.weights import read_metadata

    tensors = load_file(str(media["small"]))
    meta = read_metadata(media["weights"])
    save_file(tensors, str(tmp_path / "mixed.safetensors"), metadata=meta)
    code, _, stderr = run_cli(media["video"], "--out", tmp_path / "o.mp4", "--weights", tmp_path / "mixed.safetensors")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.mp4").exists()


def test_precision_bf16_reaches_the_model_and_the_report(media, tmp_path: Path) -> None:
    code, _, err = run_cli(media["video"], "--json", tmp_path / "r.json", "--weights", media["weights"],
                           "--method", "rollout", "--precision", "bf16")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["method"]["settings"]["precision"] == "bf16"
    with pytest.raises(SystemExit) as refused:  # argparse refuses a choice it does not know
        run_cli(media["video"], "--json", tmp_path / "r.json", "--weights", media["weights"], "--precision", "fp8")
    assert refused.value.code == 2
