"""The perturbations: shape and type kept, strength matters, seeded, input untouched, frames tracked."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_support import smooth_uint8_clips

from istvt_explain.analysis.perturbations import PERTURBATIONS, get_perturbation, resolve_perturbations


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return smooth_uint8_clips(1, seed=3)[0]


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_every_perturbation_keeps_shape_and_leaves_input_alone(clip, name):
    before = clip.copy()
    p = get_perturbation(name)
    for strength in p.strengths:
        out, source = p(clip, strength, np.random.default_rng(0))
        assert out.dtype == np.uint8 and out.shape == clip.shape
        assert source.shape == (clip.shape[0],) and source.min() >= 0 and source.max() < clip.shape[0]
    np.testing.assert_array_equal(clip, before)


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_same_seed_same_result(clip, name):
    p = get_perturbation(name)
    a, sa = p(clip, p.strengths[-1], np.random.default_rng(7))
    b, sb = p(clip, p.strengths[-1], np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)


@pytest.mark.parametrize("name", ["jpeg", "blur", "noise", "downscale", "brightness", "contrast"])
def test_stronger_means_further_from_the_clean_clip(clip, name):
    p = get_perturbation(name)
    errors = [np.abs(p(clip, s, np.random.default_rng(0))[0].astype(float) - clip).mean() for s in p.strengths]
    assert errors[0] > 0
    assert errors[-1] > errors[0]


def test_frame_perturbations_report_where_each_frame_came_from(clip):
    out, source = get_perturbation("shuffle_frames")(clip, 6, np.random.default_rng(1))
    assert sorted(source.tolist()) == list(range(6)) and (source != np.arange(6)).all()
    np.testing.assert_array_equal(out, clip[source])
    out, source = get_perturbation("drop_frames")(clip, 3, np.random.default_rng(1))
    assert source[0] == 0 and (np.diff(source) >= 0).all() and len(set(source.tolist())) == 3
    np.testing.assert_array_equal(out, clip[source])


def test_frame_perturbations_keep_order_where_nothing_moves(clip):
    for name in ("jpeg", "blur", "noise", "contrast"):
        _, source = get_perturbation(name)(clip, get_perturbation(name).strengths[0])
        np.testing.assert_array_equal(source, np.arange(6))


def test_float_input_and_unknown_names_are_refused_and_none_means_every_perturbation():
    with pytest.raises(ValueError, match="uint8"):
        get_perturbation("blur")(np.zeros((6, 8, 8, 3), np.float32), 1.0)
    with pytest.raises(ValueError, match="unknown perturbation"):
        get_perturbation("sepia")
    assert [p.name for p in resolve_perturbations(None)] == list(PERTURBATIONS)
