"""Propagating the class row through the factorised (T+1) x (N+1) token grid (docs/explanations.md).

One block mixes tokens with ``M = S T + I`` where

    (S T)[(t, s), (t'', s'')] = As[t][s, s''] * At[s''][t, t'']

(spatial after temporal).  Only the class token's row of a product of such
operators is ever needed, and a row vector ``r`` (shape (T+1, N+1)) passes
through ``S T`` in two cheap steps:

    spatial   u[t, k] = sum_s r[t, s] As[t][s, k]
    temporal  v[j, k] = sum_t u[t, k] At[k][t, j]

O(T N^2 + N T^2) per block instead of the O((T N)^3) of the dense
(T+1)(N+1) square matrix, which this module never builds (``_reference``
holds a dense version for tests only).

Shapes (batch first, heads already fused):
    r:        (B, T+1, N+1)
    temporal: (B, N+1, T+1, T+1)  one map per spatial position (rows = queries)
    spatial:  (B, T+1, N+1, N+1)  one map per time row
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..models.precision import full_precision

BlockMaps = tuple[torch.Tensor, torch.Tensor]  # (temporal, spatial) of one block, heads fused
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

FUSIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda maps: maps.mean(dim=-3),
    "max": lambda maps: maps.amax(dim=-3),
    "min": lambda maps: maps.amin(dim=-3),
}


@full_precision
def spatial_step(r: torch.Tensor, temporal: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """``u[t, k] = sum_s r[t, s] As[t][s, k]``: one vector-matrix product per time row."""
    return (r.unsqueeze(-2) @ spatial).squeeze(-2)


@full_precision
def temporal_step(r: torch.Tensor, temporal: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """``v[j, k] = sum_t r[t, k] At[k][t, j]``: one vector-matrix product per spatial position."""
    return (r.transpose(1, 2).unsqueeze(-2) @ temporal).squeeze(-2).transpose(1, 2)


@full_precision
def space_time_step(r: torch.Tensor, temporal: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """``r S T``: the spatial step, then the temporal step (the block's token mixing)."""
    return temporal_step(spatial_step(r, temporal, spatial), temporal, spatial)


@full_precision
def propagate_row(start: torch.Tensor, blocks: Sequence[BlockMaps], *, keep: float = 1.0,
                  mix: float = 1.0, step: Step = space_time_step) -> torch.Tensor:
    """``start^T (keep I + mix M_L) ... (keep I + mix M_1)`` for blocks given in forward order.

    ``keep = mix = 1/2`` is attention rollout (``Mhat = (S T + I) / 2``);
    ``keep = mix = 1`` is Chefer's ``R <- R + Mbar R`` read at the class row.
    ``step`` picks the decomposed views (``spatial_step`` or ``temporal_step``).
    """
    r = start
    for temporal, spatial in reversed(list(blocks)):
        r = keep * r + mix * step(r, temporal, spatial)
    return r


def class_start(batch: int, rows: int, cols: int, *, device=None, dtype=None) -> torch.Tensor:
    """e_(0,0): the row vector of the class token [t=0, s=0], for every clip."""
    r = torch.zeros(batch, rows, cols, device=device, dtype=dtype)
    r[:, 0, 0] = 1.0
    return r


@full_precision
def fuse_heads(maps: torch.Tensor, fusion: str = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """(..., H, n, n) attention probabilities -> (..., n, n) row-stochastic map for rollout.

    Heads are fused with mean, max or min (Abnar & Zuidema 2020; the
    discard variant of Gildenblat's rollout): the lowest ``discard_ratio``
    of each query's weights are zeroed (the class key is always kept), then
    every row is renormalised so ``(S T + I) / 2`` stays row-stochastic.
    """
    if fusion not in FUSIONS:
        raise ValueError(f"unknown head fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    fused = FUSIONS[fusion](maps)
    if discard_ratio > 0:
        n = fused.shape[-1]
        drop = int(discard_ratio * (n - 1))
        if drop > 0:
            patches = fused[..., 1:]
            threshold = patches.kthvalue(drop, dim=-1, keepdim=True).values
            keep_patch = patches > threshold
            fused = torch.cat([fused[..., :1], patches * keep_patch], dim=-1)
    return fused / fused.sum(dim=-1, keepdim=True).clamp_min(1e-12)


@full_precision
def weighted_relevance(maps: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Chefer et al. 2021 (generic, rule 5): ``Abar = mean_h( clamp(grad * maps, min=0) )``.

    ``maps`` is the attention (``relevance``) or its LRP relevance (``lrp``);
    (..., H, n, n) -> (..., n, n).
    """
    return (grads * maps).clamp(min=0).mean(dim=-3)


@full_precision
def read_full(r: torch.Tensor, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class-row relevance (B, T+1, N+1) -> spatial (B, T, g, g) and frame importance (B, T).

    The spatial map of frame t is ``r[t, 1:]``; a frame's importance is the mass of its patches.
    The frame's class-token column ``r[t, 0]`` is left out: that input token is a learned constant,
    the same for every video, so relevance that lands on it says nothing about the frame's content
    (``class_column`` reads it for those who want it).
    """
    b, rows = r.shape[:2]
    patches = r[:, 1:, 1:]
    return patches.reshape(b, rows - 1, grid, grid), patches.sum(dim=-1)


def class_column(r: torch.Tensor) -> torch.Tensor:
    """(B, T+1, N+1) -> (B, T): relevance on each frame's class token, an input no frame content reaches."""
    return r[:, 1:, 0]
