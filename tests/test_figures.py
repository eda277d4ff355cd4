"""Paper figures from results: each draws, saves as PNG and PDF, and saves the same bytes twice."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from analysis_support import content_explain, smooth_uint8_clips
from matplotlib.text import Text
from PIL import Image

from istvt_explain.analysis.sensitivity import run_sensitivity
from istvt_explain.render import figures as F
from istvt_explain.render.style import COLUMN_WIDTH, DPI, MIN_FONT, PAGE_WIDTH, save_figure, text_problems


@pytest.fixture(scope="module")
def panels() -> list[F.ClipPanel]:
    clips = smooth_uint8_clips(2, seed=9)
    out = []
    for i, title in enumerate(["real", "fake"]):
        x = (torch.from_numpy(clips[i:i + 1]).permute(0, 1, 4, 2, 3).float() / 255 - 0.5) / 0.5
        exps = {m: content_explain(None, x * (k + 1), method=m) for k, m in enumerate(["a", "b", "c"])}
        out.append(F.ClipPanel(title, clips[i], exps))
    return out


def test_zero_alpha_blend_keeps_the_frame_and_heat_is_scaled_per_clip(panels):
    frame = panels[0].frames[0]
    assert F.blend(frame, np.zeros((4, 4)), alpha=0.0, size=None).tolist() == frame.tolist()
    heat = F.heat_to_pixels(panels[0].explanations["a"], 64, 64)
    assert heat.shape == (6, 64, 64) and heat.min() >= 0 and 0.9 < heat.max() <= 1  # one robust scale per clip
    assert F.normalized_temporal(panels[0].explanations["a"]).sum() == pytest.approx(1)


def test_every_figure_draws(panels, tmp_path):
    _draw_every_figure(panels, tmp_path)


def _draw_every_figure(panels, tmp_path) -> dict:
    """Every figure from the fixture's results, saved once (and kept in ISTVT_FIGURE_ARTEFACTS to look at)."""
    att = np.random.default_rng(0).random((4, 4, 4, 4))
    study = run_sensitivity(None, smooth_uint8_clips(1), perturbations=["jpeg", "shuffle_frames"],
                            explain_fn=content_explain)
    figures = {
        "roc": F.roc_figure({"clips": ([0, 1, 0, 1], [0.1, 0.8, 0.6, 0.4]), "other": ([0, 1], [0.2, 0.9])}),
        "heatmaps": F.heatmap_grid_figure(panels, frames=[0, 3]),
        "temporal": F.temporal_curves_figure(panels),
        "judging": F.judging_figure([{"method": "a", "deletion_auc": 0.2, "random_deletion_auc": 0.4, "note": "x"},
                                     {"method": "b", "deletion_auc": float("nan"), "random_deletion_auc": 0.4}],
                                    higher_is_better={"deletion_auc": False},
                                    reference={"deletion_auc": "random_deletion_auc"}),
        "attention": F.attention_figure(att, np.random.default_rng(1).random((4, 4, 6)), panels[0].frames[0]),
        "sensitivity": F.sensitivity_figure(study),
        "gallery": F.gallery_figure(panels),
    }
    # heatmap grid: (1 input row + 3 methods) x 2 frames per clip, and a colour bar
    assert len(figures["heatmaps"].axes) == 2 * 4 * 2 + 1
    assert len(figures["attention"].axes) == 4 * 4 + 4 + 1
    assert len(figures["sensitivity"].axes) == 3 * 2
    assert len(figures["judging"].axes) == 1  # one numeric metric; "note" and the reference are not panels
    for name, fig in figures.items():
        paths = save_figure(fig, tmp_path, name)
        assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    out = os.environ.get("ISTVT_FIGURE_ARTEFACTS")  # for looking at them: where CI keeps artefacts
    if out:
        for name, fig in figures.items():
            save_figure(fig, out, name)
    return figures


@pytest.fixture(scope="module")
def drawn(panels, tmp_path_factory):
    return _draw_every_figure(panels, tmp_path_factory.mktemp("drawn"))


@pytest.mark.parametrize("name", ["roc", "heatmaps", "temporal", "judging", "attention", "sensitivity", "gallery"])
def test_every_figure_is_print_ready(drawn, name, tmp_path):
    """IEEE widths, 300 dpi, no text under 7 pt, none overlapping or leaving the figure, colour bars on maps."""
    fig = drawn[name]
    png, pdf = save_figure(fig, tmp_path, name)
    with Image.open(png) as image:
        width_in = image.size[0] / DPI
        assert image.info["dpi"][0] == pytest.approx(DPI, abs=1)
    assert min(abs(width_in - COLUMN_WIDTH), abs(width_in - PAGE_WIDTH)) < 0.01, width_in
    assert pdf.read_bytes()[:4] == b"%PDF"
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert min(sizes) >= MIN_FONT
    assert text_problems(fig) == []
    if name in ("heatmaps", "attention", "gallery"):
        assert any(ax.get_label() == "<colorbar>" for ax in fig.axes), f"{name}: no colour bar"


def test_saving_is_byte_for_byte_repeatable(panels, tmp_path):
    first = [p.read_bytes() for p in save_figure(F.temporal_curves_figure(panels), tmp_path / "1", "t")]
    second = [p.read_bytes() for p in save_figure(F.temporal_curves_figure(panels), tmp_path / "2", "t")]
    assert first == second
    assert b"CreationDate" not in first[1]


def test_figures_refuse_empty_input():
    with pytest.raises(ValueError):
        F.heatmap_grid_figure([])
    with pytest.raises(ValueError):
        F.judging_figure([])
    with pytest.raises(ValueError, match="both"):
        F.roc_figure({"x": ([1, 1], [0.2, 0.3])})
