"""Vector propagation of the class row on the factorised grid (docs/explanations.md)."""

from __future__ import annotations

import pytest
import torch

from istvt_explain.attribution._reference import dense_mixing, dense_row
from istvt_explain.attribution.propagation import (
    class_start,
    fuse_heads,
    propagate_row,
    read_full,
    spatial_step,
    temporal_step,
    weighted_relevance,
)


def random_blocks(batch: int, frames: int, tokens: int, depth: int, gen: torch.Generator,
                  stochastic: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rows, cols = frames + 1, tokens + 1
    blocks = []
    for _ in range(depth):
        t = torch.rand(batch, cols, rows, rows, generator=gen, dtype=torch.float64)
        s = torch.rand(batch, rows, cols, cols, generator=gen, dtype=torch.float64)
        if stochastic:
            t, s = t / t.sum(-1, keepdim=True), s / s.sum(-1, keepdim=True)
        blocks.append((t, s))
    return blocks


@pytest.mark.parametrize(("frames", "tokens", "depth"), [(2, 4, 1), (3, 8, 3), (5, 3, 2), (6, 15, 4)])
@pytest.mark.parametrize(("keep", "mix"), [(0.5, 0.5), (1.0, 1.0)])
def test_vector_propagation_equals_dense_product(frames, tokens, depth, keep, mix):
    gen = torch.Generator().manual_seed(frames * 100 + tokens * 10 + depth)
    blocks = random_blocks(2, frames, tokens, depth, gen, stochastic=keep == 0.5)
    start = torch.rand(2, frames + 1, tokens + 1, generator=gen, dtype=torch.float64)
    fast = propagate_row(start, blocks, keep=keep, mix=mix)
    slow = dense_row(start, blocks, keep=keep, mix=mix)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_dense_mixing_entry_matches_definition():
    gen = torch.Generator().manual_seed(3)
    ((t, s),) = random_blocks(1, 3, 5, 1, gen)
    dense = dense_mixing(t, s)[0]
    cols = s.shape[-1]
    for (ti, si, tj, sj) in [(0, 0, 2, 4), (3, 1, 0, 0), (1, 5, 3, 2)]:
        expected = s[0, ti, si, sj] * t[0, sj, ti, tj]
        assert dense[ti * cols + si, tj * cols + sj] == pytest.approx(float(expected))


def test_rollout_operator_is_row_stochastic():
    gen = torch.Generator().manual_seed(4)
    blocks = random_blocks(1, 4, 6, 3, gen)
    start = class_start(1, 5, 7, dtype=torch.float64)
    r = propagate_row(start, blocks, keep=0.5, mix=0.5)
    assert r.sum().item() == pytest.approx(1.0)


def test_uniform_attention_gives_uniform_map():
    frames, tokens, depth = 4, 9, 3
    rows, cols = frames + 1, tokens + 1
    uniform = (torch.full((1, cols, rows, rows), 1 / rows), torch.full((1, rows, cols, cols), 1 / cols))
    r = propagate_row(class_start(1, rows, cols), [uniform] * depth, keep=0.5, mix=0.5)
    spatial, frames_curve = read_full(r, 3)
    torch.testing.assert_close(spatial, torch.full_like(spatial, spatial.mean().item()))
    torch.testing.assert_close(frames_curve, torch.full_like(frames_curve, frames_curve.mean().item()))


def test_one_hot_attention_path_reaches_the_expected_token():
    """Class query attends to patch k* in space, then column k* attends to frame t* in time."""
    frames, tokens, depth, t_star, k_star = 3, 8, 2, 2, 5
    rows, cols = frames + 1, tokens + 1
    spatial = torch.eye(cols).expand(1, rows, cols, cols).clone()
    spatial[0, 0, 0] = torch.nn.functional.one_hot(torch.tensor(k_star), cols).float()
    temporal = torch.eye(rows).expand(1, cols, rows, rows).clone()
    temporal[0, k_star, 0] = torch.nn.functional.one_hot(torch.tensor(t_star), rows).float()
    identity = (torch.eye(rows).expand(1, cols, rows, rows), torch.eye(cols).expand(1, rows, cols, cols))
    blocks = [identity] * (depth - 1) + [(temporal, spatial)]  # the path sits in the last block
    r = propagate_row(class_start(1, rows, cols), blocks, keep=0.5, mix=0.5)
    expected = torch.zeros(1, rows, cols)
    expected[0, 0, 0] = expected[0, t_star, k_star] = 0.5
    torch.testing.assert_close(r, expected)
    patches = r[:, 1:, 1:]  # frame rows x patch columns
    assert patches[0].nonzero().tolist() == [[t_star - 1, k_star - 1]]


def test_decomposed_steps_only_mix_their_axis():
    gen = torch.Generator().manual_seed(5)
    ((t, s),) = random_blocks(2, 3, 4, 1, gen)
    r = torch.rand(2, 4, 5, generator=gen, dtype=torch.float64)
    u = spatial_step(r, t, s)
    v = temporal_step(r, t, s)
    torch.testing.assert_close(u, torch.einsum("bts,btsk->btk", r, s))
    torch.testing.assert_close(v, torch.einsum("btk,bktj->bjk", r, t))


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_head_fusion_rows_sum_to_one(fusion):
    maps = torch.rand(2, 3, 4, 6, 6).softmax(-1)
    fused = fuse_heads(maps, fusion, discard_ratio=0.5)
    torch.testing.assert_close(fused.sum(-1), torch.ones(2, 3, 6))
    assert (fused[..., 1:] == 0).sum() > 0  # discarding removed low patch weights


def test_head_fusion_rejects_bad_options():
    with pytest.raises(ValueError, match="head fusion"):
        fuse_heads(torch.rand(1, 2, 3, 3), "median")
    with pytest.raises(ValueError, match="discard_ratio"):
        fuse_heads(torch.rand(1, 2, 3, 3), "mean", 1.0)


def test_weighted_relevance_is_clamped_head_mean():
    a, g = torch.rand(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(weighted_relevance(a, g), torch.einsum("bhij->bij", (a * g).clamp(min=0)) / 4)
