"""`istvt-explain --demo --out demo.mp4`: the README's first command, run as the console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import leftovers, probe, tiny_weights

from istvt_explain.models.pretrained import DEMO_WEIGHTS


def _command() -> list[str]:
    exe = shutil.which("istvt-explain") or str(Path(sys.executable).parent / "istvt-explain")
    if Path(exe).exists():
        return [exe]
    return [sys.executable, "-c", "import sys; from istvt_explain.cli import main; sys.exit(main())"]


def test_demo_command_writes_a_half_manipulated_video_and_its_report(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "tiny.safetensors")
    out = tmp_path / "demo.mp4"
    proc = subprocess.run([*_command(), "--demo", "--out", str(out), "--json", str(tmp_path / "demo.json"),
                           "--weights", str(weights), "--method", "rollout"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    assert "generated demo video" in proc.stdout and "verdict" in proc.stdout
    info = probe(out)
    assert info["codec"] == "h264" and info["frames"] == 48 and info["fps"] == pytest.approx(25.0)
    assert info["width"] == 640
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["demo"]["real_frames"] == [0, 23] and report["demo"]["manipulated_frames"] == [24, 47]
    assert report["skipped_frames"] == []  # one face track through both halves
    assert report["input"]["path"] is None and report["input"]["frames"] == 48
    assert leftovers(tmp_path, {"tiny.safetensors", "demo.mp4", "demo.json"}) == []


def test_demo_video_manipulates_only_the_second_half(tmp_path: Path) -> None:
    from istvt_explain.data.demo_video import make_demo_video

    demo = make_demo_video(tmp_path / "d.mp4", frames_per_half=6, size=(320, 240))
    assert demo.num_frames == 12 and demo.fake_start == 6
    assert not demo.masks[:6].any() and all(m.max() > 0.5 for m in demo.masks[6:])
    assert probe(demo.path)["frames"] == 12


def test_default_weights_notice_or_clear_error(tmp_path: Path) -> None:
    from test_cli_explain_video import run_cli

    code, _, stderr = run_cli("--demo", "--out", tmp_path / "demo.mp4", "--method", "rollout")
    if DEMO_WEIGHTS.is_file():
        assert code == 0 and "bundled demo weights" in stderr
    else:  # until the demo weights ship (issue 5): one clear line, nothing written
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and "demo weights" in stderr
        assert not (tmp_path / "demo.mp4").exists()
