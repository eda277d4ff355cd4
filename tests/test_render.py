"""Renderers, the report and the maps file, on a hand-made VideoAnalysis (no model, no video decoding)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from istvt_explain.errors import InputError
from istvt_explain.explain.explanation import Explanation
from istvt_explain.pipeline import VideoAnalysis, _aggregate_frames, paste_map
from istvt_explain.render.curves import TimelinePanel
from istvt_explain.render.keyframes import save_keyframes
from istvt_explain.render.overlay import OverlayStyle, blend_heatmap, colorize, colormap_lut, overlay_frame
from istvt_explain.render.report import build_report, write_maps, write_report
from istvt_explain.render.video import FrameComposer


def _analysis(num_frames: int = 14, frames: int = 6, grid: int = 4, width: int = 64, height: int = 48
              ) -> VideoAnalysis:
    """Two clips (frames 0-5 and 6-11); frames 12-13 have no face; a bright token at the top-left."""
    k = 2
    spatial = torch.zeros(k, frames, grid, grid)
    spatial[:, :, 0, 0] = 1.0
    temporal = torch.arange(1, frames + 1, dtype=torch.float32).repeat(k, 1)
    logits = torch.tensor([2.0, -2.0])
    exp = Explanation(spatial, temporal, torch.sigmoid(logits), logits, "relevance")
    boxes = np.full((num_frames, 4), np.nan)
    boxes[:12] = [8, 4, 40, 36]
    face = np.zeros(num_frames, bool)
    face[:12] = True
    a = VideoAnalysis(Path("x.mp4"), 25.0, width, height, num_frames, "relevance", 0.5, exp,
                      np.arange(12).reshape(2, 6), boxes, face, np.empty(0), np.empty(0), np.empty(0))
    _aggregate_frames(a)
    return a


def test_aggregation_per_frame() -> None:
    a = _analysis()
    assert a.skipped_frames == [12, 13]
    np.testing.assert_allclose(a.frame_probability[:6], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    np.testing.assert_allclose(a.frame_probability[6:12], 1 / (1 + np.exp(2.0)), rtol=1e-6)
    # importance is the frame's share of its clip times T: increasing within each clip, mean 1
    np.testing.assert_allclose(a.frame_importance[:6].mean(), 1.0)
    assert np.all(np.diff(a.frame_importance[:6]) > 0)
    assert a.verdict == "real" and abs(a.video_probability - 0.5) < 1e-6
    assert a.suspicious_frames(3) == [5, 4, 3]


def test_full_frame_maps_follow_the_box() -> None:
    a = _analysis()
    maps = a.full_frame_maps()
    assert maps.shape == (14, 48, 64) and maps.dtype == np.float16
    assert not maps[12:].any()  # no face: zero
    assert maps[0, :4].max() == 0 and maps[0, :, :8].max() == 0  # outside the box
    assert maps[0, 4:12, 8:16].mean() > 0.5  # the top-left token of the box
    assert maps[0, 30:36, 34:40].max() < 0.1


def test_paste_map_clips_at_frame_edges() -> None:
    canvas = np.zeros((20, 20), np.float32)
    written = paste_map(canvas, np.ones((2, 2), np.float32), np.array([-10, -10, 10, 10]))
    assert written == (slice(0, 10), slice(0, 10))
    assert canvas[:10, :10].min() == 1 and canvas[10:].max() == 0
    assert paste_map(canvas, np.ones((2, 2)), np.array([30, 30, 40, 40])) is None


def test_colormaps_and_style_validation() -> None:
    lut = colormap_lut("inferno")
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert colorize(np.array([0.0, 1.0]), "gray").tolist() == [[0, 0, 0], [255, 255, 255]]
    with pytest.raises(InputError, match="colour map"):
        OverlayStyle(colormap="no-such-map")
    with pytest.raises(InputError, match="alpha"):
        OverlayStyle(alpha=1.5)


def test_blend_draws_only_inside_the_box() -> None:
    frame = np.full((48, 64, 3), 100, np.uint8)
    out = blend_heatmap(frame.copy(), np.ones((4, 4)), np.array([8, 4, 40, 36]), OverlayStyle(alpha=0.8))
    changed = np.abs(out.astype(int) - frame).sum(axis=2) > 0
    assert changed[4:36, 8:40].all() and not changed[:4].any() and not changed[:, 40:].any()
    untouched = overlay_frame(frame, None, np.full(4, np.nan), None, OverlayStyle())
    assert np.array_equal(untouched, frame)


def test_timeline_panel_and_composer() -> None:
    a = _analysis(width=320, height=240)
    panel = TimelinePanel(320, 240, a.frame_probability, a.frame_importance)
    first, last = panel.draw(0, "REAL"), panel.draw(13, "REAL")
    assert first.shape == (panel.layout.height, 320, 3) and panel.layout.height % 2 == 0
    assert not np.array_equal(first, last)  # the cursor moved
    composer = FrameComposer(a, OverlayStyle())
    frame = np.zeros((240, 320, 3), np.uint8)
    out = composer.compose(0, frame)
    assert out.shape == (240 + panel.layout.height, 320, 3)
    assert out[:240].any()  # heatmap and box drawn on a black frame


def test_report_is_complete_json(tmp_path: Path) -> None:
    a = _analysis()
    report = build_report(a, {"path": "w.safetensors", "demo": False, "preset": "tiny"}, top_k=2)
    path = tmp_path / "r.json"
    write_report(report, path)
    back = json.loads(path.read_text())
    assert back["verdict"] == "real" and back["method"]["name"] == "relevance"
    assert back["tool"]["version"] and back["weights"]["preset"] == "tiny"
    assert len(back["clips"]) == 2 and len(back["frames"]) == 14
    assert back["skipped_frames"] == [12, 13] and back["skipped_ranges"] == [[12, 13]]
    assert back["frames"][13]["box"] is None and back["frames"][0]["box"] == [8, 4, 40, 36]
    assert back["suspicious_frames"] == [5, 4]


def test_maps_file(tmp_path: Path) -> None:
    a = _analysis()
    write_maps(a, tmp_path / "m.npz")
    data = np.load(tmp_path / "m.npz")
    assert data["maps"].shape == (14, 48, 64) and data["maps"].dtype == np.float16
    assert data["processed"].tolist() == [True] * 12 + [False] * 2


def test_keyframes_png(tmp_path: Path) -> None:
    frames = {3: np.zeros((10, 12, 3), np.uint8), 7: np.full((10, 12, 3), 255, np.uint8)}
    paths = save_keyframes(frames, [7, 3], tmp_path / "kf")
    assert [p.name for p in paths] == ["01_frame000007.png", "02_frame000003.png"]
    assert all(p.stat().st_size > 0 for p in paths)
