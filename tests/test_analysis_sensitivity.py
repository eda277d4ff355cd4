"""The sensitivity study: rank correlation, content alignment of moved frames, CSV, and a real model run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_support import content_explain, small_model, smooth_uint8_clips
from scipy.stats import spearmanr

from istvt_explain.analysis.common import spearman
from istvt_explain.analysis.sensitivity import SensitivityResult, run_sensitivity


def test_spearman_matches_scipy_and_handles_constant_maps():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4, 4)), rng.normal(size=(6, 4, 4))
    b[0] = a[0]  # some ties and some agreement
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert math.isnan(spearman(np.ones(5), np.arange(5)))
    with pytest.raises(ValueError):
        spearman(np.ones(4), np.ones(5))


@pytest.fixture(scope="module")
def study() -> SensitivityResult:
    clips = smooth_uint8_clips(2, seed=1)
    return run_sensitivity(None, clips, labels=[0, 1], clip_ids=["a", "b"], method="content",
                           explain_fn=content_explain, seed=0)


def test_rows_cover_every_clip_perturbation_and_strength(study):
    from istvt_explain.analysis.perturbations import PERTURBATIONS

    expected = 2 * sum(len(p.strengths) for p in PERTURBATIONS.values())
    assert len(study.rows) == expected
    assert study.perturbations() == list(PERTURBATIONS)
    assert {r.clip_id for r in study.rows} == {"a", "b"}


def test_moved_frames_are_compared_with_the_same_content(study):
    # The stand-in's map of a frame depends on that frame only: aligned on content, nothing changed.
    for row in study.rows:
        if row.perturbation in ("shuffle_frames", "drop_frames"):
            assert row.spatial_correlation == pytest.approx(1.0)
            assert row.temporal_correlation == pytest.approx(1.0)


def test_stronger_blur_moves_the_maps_more(study):
    blur = [r.spatial_correlation for r in study.rows if r.perturbation == "blur" and r.clip == 0]
    assert blur[0] > blur[-1]
    assert all(-1 <= r.spatial_correlation <= 1 for r in study.rows)


def test_study_survives_a_csv_round_trip_and_summarises_per_perturbation_and_strength(study, tmp_path):
    path = study.to_csv(tmp_path / "s.csv")
    back = SensitivityResult.from_csv(path)
    assert [r.perturbation for r in back.rows] == [r.perturbation for r in study.rows]
    assert back.rows[5].probability == pytest.approx(study.rows[5].probability, rel=1e-5)
    summary = study.summary()
    assert {"perturbation", "strength", "mean_abs_change", "decision_flips", "spatial_correlation"} <= set(summary[0])
    assert study.summary_to_csv(tmp_path / "summary.csv").read_text().count("\n") == len(summary) + 1


def test_choices_are_checked():
    clips = smooth_uint8_clips(1)
    with pytest.raises(ValueError, match="not studied"):
        run_sensitivity(None, clips, perturbations=["jpeg"], strengths={"blur": [1]}, explain_fn=content_explain)
    with pytest.raises(ValueError, match="uint8"):
        run_sensitivity(None, clips.astype(np.float32), explain_fn=content_explain)


def test_a_real_model_and_method_give_probabilities_and_repeatable_correlations():
    model = small_model()
    clips = smooth_uint8_clips(1, seed=2)
    result = run_sensitivity(model, clips, perturbations=["jpeg", "shuffle_frames"],
                             strengths={"jpeg": [50], "shuffle_frames": [6]}, method="attention")
    assert len(result.rows) == 2
    assert all(0.0 <= r.probability <= 1.0 for r in result.rows)
    # Re-running gives the same numbers: the figures depend on it.
    again = run_sensitivity(model, clips, perturbations=["jpeg", "shuffle_frames"],
                            strengths={"jpeg": [50], "shuffle_frames": [6]}, method="attention")
    assert [r.spatial_correlation for r in again.rows] == pytest.approx([r.spatial_correlation for r in result.rows])
