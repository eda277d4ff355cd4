"""Renderers, the report and the maps file, on a hand-made VideoAnalysis (no model, no video decoding)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from istvt_explain.attribution.explanation import Explanation
from istvt_explain.errors import InputError
from istvt_explain.pipeline.analysis import VideoAnalysis, aggregate_frames
from istvt_explain.pipeline.heatmap_video import FrameComposer
from istvt_explain.pipeline.report import build_report, write_maps, write_report
from istvt_explain.render.curves import TimelinePanel
from istvt_explain.render.keyframes import save_keyframes
from istvt_explain.render.overlay import (
    OverlayStyle,
    blend_heatmap,
    colorize,
    colormap_lut,
    overlay_frame,
    paste_map,
)


def _analysis(num_frames: int = 14, frames: int = 6, grid: int = 4, width: int = 64, height: int = 48,
              spatial: torch.Tensor | None = None, method: str = "relevance") -> VideoAnalysis:
    """Two clips (frames 0-5 and 6-11); frames 12-13 have no face; a bright token at the top-left."""
    k = 2
    if spatial is None:
        spatial = torch.zeros(k, frames, grid, grid)
        spatial[:, :, 0, 0] = 1.0
    temporal = torch.arange(1, frames + 1, dtype=torch.float32).repeat(k, 1)
    logits = torch.tensor([2.0, -2.0])
    exp = Explanation(spatial, temporal, torch.sigmoid(logits), logits, method)
    boxes = np.full((num_frames, 4), np.nan)
    boxes[:12] = [8, 4, 40, 36]
    face = np.zeros(num_frames, bool)
    face[:12] = True
    a = VideoAnalysis(Path("x.mp4"), 25.0, width, height, num_frames, method, 0.5, exp,
                      np.arange(12).reshape(2, 6), boxes, face, np.empty(0), np.empty(0), np.empty(0))
    aggregate_frames(a)
    return a


def test_clip_scores_aggregate_into_per_frame_probability_and_importance() -> None:
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


def test_colormaps_are_uint8_tables_and_bad_styles_are_refused() -> None:
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


def test_timeline_cursor_moves_and_the_composer_stacks_the_panel_under_the_frame() -> None:
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


def test_maps_file_holds_a_float16_map_per_frame_and_which_frames_were_processed(tmp_path: Path) -> None:
    a = _analysis()
    write_maps(a, tmp_path / "m.npz")
    data = np.load(tmp_path / "m.npz")
    assert data["maps"].shape == (14, 48, 64) and data["maps"].dtype == np.float16
    assert data["processed"].tolist() == [True] * 12 + [False] * 2


def test_keyframes_are_saved_as_pngs_in_rank_order(tmp_path: Path) -> None:
    frames = {3: np.zeros((10, 12, 3), np.uint8), 7: np.full((10, 12, 3), 255, np.uint8)}
    paths = save_keyframes(frames, [7, 3], tmp_path / "kf")
    assert [p.name for p in paths] == ["01_frame000007.png", "02_frame000003.png"]
    assert all(p.stat().st_size > 0 for p in paths)


# -- the display convention (docs/display.md) ------------------------------------------------------
def _two_strengths(method: str = "relevance", weak: float = 1e-9, strong: float = 1e-7) -> VideoAnalysis:
    """Clip 0 with weak evidence, clip 1 with strong evidence at the same token (raw scale of LRP)."""
    spatial = torch.zeros(2, 6, 4, 4)
    spatial[0, :, 1, 1] = weak
    spatial[1, :, 1, 1] = strong
    return _analysis(spatial=spatial, method=method)


def test_one_display_scale_per_video_so_frames_compare() -> None:
    a = _two_strengths()
    # per-clip min-max would stretch both clips to 1: the weak clip must stay faint
    assert a.frame_maps[6, 1, 1] == pytest.approx(1.0) and a.frame_maps[0, 1, 1] < 0.05
    assert a.display is not None and not a.display.signed and a.display.high == pytest.approx(1e-7, rel=0.05)
    raw = a.explanation.spatial.numpy()
    np.testing.assert_allclose(a.explanation.display_spatial(a.display)[1], a.frame_maps[6:12], atol=1e-6)
    assert raw.max() == pytest.approx(1e-7)  # the raw values are kept as they came


def test_signed_maps_keep_zero_in_the_middle() -> None:
    spatial = torch.zeros(2, 6, 4, 4)
    spatial[:, :, 0, 0] = 2.0
    spatial[:, :, 3, 3] = -2.0
    a = _analysis(spatial=spatial, method="lrp")
    assert a.display.signed and a.display.low == -a.display.high
    assert a.frame_maps[0, 0, 0] == pytest.approx(1.0) and a.frame_maps[0, 3, 3] == pytest.approx(-1.0)
    assert a.frame_maps[0, 1, 1] == 0.0
    unsigned = _analysis(spatial=spatial, method="relevance")  # not a signed method: negatives clipped
    assert not unsigned.display.signed and np.nanmin(unsigned.frame_maps) >= 0


def test_low_evidence_leaves_the_face_untouched_and_signs_get_opposite_colours() -> None:
    frame = np.full((48, 64, 3), 100, np.uint8)
    style = OverlayStyle()
    token_map = np.zeros((4, 4), np.float32)
    token_map[0, 0] = 1.0
    out = blend_heatmap(frame.copy(), token_map, np.array([0, 0, 48, 48]), style)
    assert np.array_equal(out[30:, 30:48], frame[30:, 30:48])  # value 0: no tint at all
    assert np.abs(out[:6, :6].astype(int) - 100).sum() > 0
    signed = np.zeros((4, 4), np.float32)
    signed[0, 0], signed[3, 3] = 1.0, -1.0
    out = blend_heatmap(frame.copy(), signed, np.array([0, 0, 48, 48]), style, signed=True)
    hot, cold = out[2, 2].astype(int), out[45, 45].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red for, blue against
    assert np.array_equal(out[20:28, 20:28], frame[20:28, 20:28])  # 0: untouched
    assert style.cmap(False) == "inferno" and style.cmap(True) == "RdBu_r"
    assert OverlayStyle(colormap="viridis").cmap(True) == "viridis"  # --colormap wins


def test_video_panel_has_a_colour_bar_and_prints_the_json_importance() -> None:
    a = _analysis(width=320, height=240)
    frame = np.zeros((240, 320, 3), np.uint8)
    with_bar = FrameComposer(a, OverlayStyle()).compose(13, frame)  # frame 13: no face, only the bar
    without = FrameComposer(a, OverlayStyle(colorbar=False)).compose(13, frame)
    assert with_bar[:30, 200:].any() and not without[:30, 200:].any()
    panel = TimelinePanel(320, 240, a.frame_probability, a.frame_importance)
    assert panel._detail(5, 0.5, panel.raw_importance[5]).endswith(f"imp. {a.frame_importance[5]:.2f}")
    report = build_report(a)
    assert report["frames"][5]["importance"] == pytest.approx(a.frame_importance[5], rel=1e-5)


def test_report_keeps_tiny_values_and_the_display_scale() -> None:
    report = build_report(_two_strengths(weak=2.4e-9))
    assert report["clips"][0]["spatial_raw"]["max"] == pytest.approx(2.4e-9, rel=1e-5)
    assert report["display"]["high"] > 0 and report["display"]["signed"] is False
    a = _analysis()
    a.explanation.temporal[0, 0] = 3e-7
    assert build_report(a)["clips"][0]["temporal_importance"][0] == pytest.approx(3e-7, rel=1e-5)
