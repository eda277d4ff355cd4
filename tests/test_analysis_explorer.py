"""The notebook explorer without a browser: state, views, and the widgets' callbacks."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_support import content_explain, small_model, smooth_uint8_clips

from istvt_explain.analysis.attention import head_attention
from istvt_explain.analysis.common import model_input
from istvt_explain.analysis.explorer import (
    Explorer,
    ExplorerData,
    ExplorerState,
    clamp_state,
    explorer_view,
    render_view,
)


@pytest.fixture(scope="module")
def data() -> ExplorerData:
    return ExplorerData(small_model(), smooth_uint8_clips(2, seed=4), ["first", "second"],
                        methods=["content", "attention"], explain_fn=content_explain)


def test_head_attention_shapes_are_rows_of_stochastic_maps():
    model = small_model()
    att = head_attention(model, model_input(smooth_uint8_clips(1)))
    c = model.config
    assert att.spatial.shape == (c.depth, c.heads, c.frames, c.grid, c.grid)
    assert att.temporal.shape == (c.depth, c.heads, c.frames)
    # A softmax row over N+1 patches (+ the class token itself), over T+1 frames (+ the class row).
    assert (att.spatial.sum(axis=(-1, -2)) <= 1 + 1e-5).all() and (att.temporal.sum(-1) <= 1 + 1e-5).all()
    assert att.frame_maps(2).shape == (c.depth, c.heads, c.grid, c.grid)
    with pytest.raises(ValueError):
        att.frame_maps(c.frames)


def test_state_is_clamped_into_range(data):
    s = clamp_state(ExplorerState(clip=9, method="nope", frame=-3, layer=99, head=99, alpha=2.0), data)
    assert (s.clip, s.method, s.frame, s.layer, s.head, s.alpha) == (1, "content", 0, data.layers - 1,
                                                                     data.heads - 1, 1.0)


def test_view_follows_the_state(data):
    a = explorer_view(data, ExplorerState(clip=0, method="content", frame=1, layer=0, head=0, alpha=0.5))
    b = explorer_view(data, ExplorerState(clip=0, method="content", frame=1, layer=0, head=0, alpha=0.0))
    c = explorer_view(data, ExplorerState(clip=0, method="content", frame=1, layer=1, head=2, alpha=0.5))
    np.testing.assert_array_equal(b.overlay, data.clips[0][1])  # no opacity: the frame itself
    assert not np.array_equal(a.overlay, b.overlay)
    assert not np.array_equal(a.head_overlay, c.head_overlay) and "layer 2, head 3" in c.caption
    assert a.temporal.shape == (data.frames,) and a.temporal.sum() == pytest.approx(1.0)
    assert len(render_view(a).axes) == 4


def test_explanations_are_cached(data):
    first = data.explanation(1, "attention")
    assert data.explanation(1, "attention") is first


def test_widgets_update_in_place(data):
    explorer = Explorer(data)
    image = explorer.image
    before = image.value
    explorer.controls["frame"].value = 4
    assert explorer.state.frame == 4 and image.value != before and "frame 4" in explorer.caption.value  # 0-based
    explorer.controls["method"].value = "attention"
    assert explorer.state.method == "attention" and explorer.image is image
    explorer.controls["clip"].value = 1
    assert explorer.caption.value.startswith("<b>second")
