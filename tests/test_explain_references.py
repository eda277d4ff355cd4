"""Each attention-based method against a slow, obvious rebuild from the captured maps.

The rebuild multiplies dense (T+1)(N+1)-square block operators (``explain._reference``) from maps
read by ``AttentionCapture`` and gradients from one plain backward pass through the whole model,
so a method that stops reading the attention, reads the wrong maps or the wrong gradients fails.
"""

from __future__ import annotations

import pytest
import torch
from support import random_clips, tiny_model

import istvt_explain as ie
from istvt_explain.attribution import AttentionCapture, explain
from istvt_explain.attribution._reference import dense_row
from istvt_explain.attribution.base import class_scores
from istvt_explain.attribution.propagation import class_start, fuse_heads, weighted_relevance


@pytest.fixture(scope="module")
def model() -> ie.ISTVT:
    return tiny_model(seed=5)


def _captured(model, clips, gradients: bool):
    """[(temporal, spatial)] per block, heads unfused, and their gradients of the fake score."""
    with AttentionCapture(model, gradients=gradients) as cap:
        logits = model(clips)
        if gradients:
            class_scores(model, logits)[:, 1].sum().backward()
        maps = [(cap.attention(i, "temporal").detach(), cap.attention(i, "spatial").detach())
                for i in range(model.config.depth)]
        grads = [(cap.gradient(i, "temporal"), cap.gradient(i, "spatial")) for i in range(model.config.depth)] \
            if gradients else None
    model.zero_grad(set_to_none=True)
    return maps, grads


def _read(r: torch.Tensor, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    patches = r[:, 1:, 1:]
    return patches.reshape(r.shape[0], r.shape[1] - 1, grid, grid), patches.sum(dim=-1)


def test_rollout_equals_the_dense_product_of_the_captured_attention(model):
    clips = random_clips(model, 1, seed=1)
    maps, _ = _captured(model, clips, gradients=False)
    blocks = [(fuse_heads(t.double()), fuse_heads(s.double())) for t, s in maps]
    start = class_start(1, blocks[0][1].shape[1], blocks[0][1].shape[2], dtype=torch.float64)
    spatial, frames = _read(dense_row(start, blocks, keep=0.5, mix=0.5), model.config.grid)
    exp = explain(model, clips, method="rollout")
    torch.testing.assert_close(exp.spatial.double(), spatial, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(exp.temporal.double(), frames, rtol=1e-4, atol=1e-7)
    assert spatial.std() > 0  # the attention of a random model is not uniform: the test can tell


def test_relevance_equals_the_dense_product_of_gradient_weighted_attention(model):
    clips = random_clips(model, 1, seed=2)
    maps, grads = _captured(model, clips, gradients=True)
    blocks = [(weighted_relevance(t.double(), gt.double()), weighted_relevance(s.double(), gs.double()))
              for (t, s), (gt, gs) in zip(maps, grads, strict=True)]
    start = class_start(1, blocks[0][1].shape[1], blocks[0][1].shape[2], dtype=torch.float64)
    spatial, frames = _read(dense_row(start, blocks, keep=1.0, mix=1.0), model.config.grid)
    exp = explain(model, clips, method="relevance", target="fake")
    torch.testing.assert_close(exp.spatial.double(), spatial, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(exp.temporal.double(), frames, rtol=1e-4, atol=1e-9)


def test_lrp_is_not_the_relevance_map(model):
    """LRP swaps the attention for its LRP relevance: on a random model the two maps must differ."""
    clips = random_clips(model, 1, seed=3)
    lrp = explain(model, clips, method="lrp", target="fake").spatial.flatten()
    rel = explain(model, clips, method="relevance", target="fake").spatial.flatten()
    lrp, rel = lrp / lrp.abs().max(), rel / rel.abs().max()
    assert (lrp - rel).abs().max() > 1e-3
