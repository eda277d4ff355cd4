"""Methods that read the attention maps: raw attention, rollout, gradient-weighted relevance,
and the decomposed spatial-only / temporal-only views (docs/explanations.md)."""

from __future__ import annotations

from typing import Any

import torch

from .base import Attribution, MethodResult, Target
from .capture import AttentionCapture
from .catalogue import BUILT_IN
from .propagation import (
    BlockMaps,
    class_column,
    class_start,
    fuse_heads,
    propagate_row,
    read_full,
    spatial_step,
    temporal_step,
    weighted_relevance,
)
from .registry import register_method


class _AttentionMethod(Attribution):
    """Shared forward: run the model inside an ``AttentionCapture`` and return per-block fused maps."""

    def _forward_maps(self, clips: torch.Tensor, target: Target, *, weighted: bool,
                      fusion: str = "mean", discard_ratio: float = 0.0,
                      layers: list[int] | None = None
                      ) -> tuple[list[BlockMaps], torch.Tensor, torch.Tensor]:
        """-> ([(temporal, spatial)] per block in forward order, logits, target index).

        ``weighted``: Chefer's gradient-weighted maps (one backward pass, to
        the maps only: no weight gradients, no backbone backward); otherwise
        the head-fused, row-normalised probabilities of rollout.
        """
        if weighted:
            maps, grads, logits, index, _ = self._gradient_pass(clips, target, layers)
            fused = {k: weighted_relevance(maps[k], grads[k]) for k in maps}
        else:
            with AttentionCapture(self.model, layers=layers) as cap, torch.no_grad():
                logits = self.model(clips)
                fused = {k: fuse_heads(cap.to_grid(m), fusion, discard_ratio) for k, m in cap.maps.items()}
            index = self._index(target, logits)
        return _blocks(fused), logits.detach(), index

    def _gradient_pass(self, clips: torch.Tensor, target: Target, layers: list[int] | None = None
                       ) -> tuple[dict, dict, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Maps and d(target score)/d(map), keyed (layer, kind), in grid shape; plus logits, index
        and the embedded token grid (so a second pass can skip the entry flow).

        The entry flow runs without autograd and only the maps are asked for,
        so backward skips the weights and the backbone.
        """
        model = self.model
        with torch.no_grad():
            tokens = model.embed(clips)
        with AttentionCapture(model, layers=layers, detach=False) as cap:
            grid = tokens.detach().requires_grad_(True)  # so the maps need grad even for a frozen model
            logits = model.forward_head(model.forward_blocks(grid))
            index = self._index(target, logits)
            keys = sorted(cap.maps)
            grads = torch.autograd.grad(self._scores(logits, index).sum(), [cap.maps[k] for k in keys])
            maps = {k: cap.to_grid(cap.maps[k].detach()) for k in keys}
            grads = {k: cap.to_grid(g) for k, g in zip(keys, grads, strict=True)}
        return maps, grads, logits.detach(), index, tokens


@register_method
class RawAttention(_AttentionMethod):
    """The last block's attention along the paths the logit reads, heads fused as ``fusion`` says.

    The logit reads only the class token (0, 0) after the last block, which is built by the spatial
    attention of the class row (time row 0) over positions s, each holding the temporal attention
    of its column over frames.  So patch s of frame t weighs ``As[0][0, s] * At[s][0, t]``: what the
    class query took from position s, times how much of frame t that position carried.  The spatial
    class rows of frames t >= 1 are never read by the last block's logit (its gradient with respect
    to them is exactly 0), so they are not used.  Frame importance is the mass of the frame's patches.
    """

    facts = BUILT_IN["attention"]

    def __init__(self, model, *, fusion: str = "mean", **options: Any) -> None:
        super().__init__(model, **options)
        fuse_heads(torch.ones(1, 2, 2), fusion)  # validates the name early
        self.settings = {"fusion": fusion}

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        last = self.model.config.depth - 1
        blocks, logits, index = self._forward_maps(clips, target, weighted=False,
                                                   fusion=self.settings["fusion"], layers=[last])
        temporal, spatial = blocks[-1]
        paths = last_block_paths(temporal, spatial)  # (B, T+1, N+1)
        patches = paths[:, 1:, 1:]
        return MethodResult(self._grid_maps(patches), patches.sum(dim=-1), logits, index,
                            {"class_token_importance": class_column(paths)})


def last_block_paths(temporal: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """(B, T+1, N+1) weight of input token (t, s) on the class token through one block's attention:
    ``As[0][0, s] * At[s][0, t]`` (spatial after temporal; the residual paths left out)."""
    class_query = spatial[:, 0, 0, :]  # (B, N+1): the class row's spatial attention over positions
    column_query = temporal[:, :, 0, :]  # (B, N+1, T+1): each position's class-frame query over frames
    return (class_query[:, :, None] * column_query).transpose(1, 2)


@register_method
class Rollout(_AttentionMethod):
    """Attention rollout (Abnar & Zuidema 2020) on the factorised grid: ``e_00^T Mhat_L ... Mhat_1``.

    ``Mhat_l = (S_l T_l + I) / 2`` with heads fused by ``fusion`` (mean/max/min)
    after discarding the lowest ``discard_ratio`` of each row.  Target-agnostic
    (the attention does not depend on the class), as rollout is.
    """

    facts = BUILT_IN["rollout"]

    def __init__(self, model, *, fusion: str = "mean", discard_ratio: float = 0.0, **options: Any) -> None:
        super().__init__(model, **options)
        fuse_heads(torch.ones(1, 2, 2), fusion, discard_ratio)
        self.settings = {"fusion": fusion, "discard_ratio": discard_ratio}

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        blocks, logits, index = self._forward_maps(clips, target, weighted=False, **self.settings)
        r = _propagate_class_row(blocks, keep=0.5, mix=0.5)
        spatial, frames = read_full(r, self.model.config.grid)
        return MethodResult(spatial, frames, logits, index,
                            {"class_row": r, "class_token_importance": class_column(r)})


@register_method
class Relevance(_AttentionMethod):
    """Gradient-weighted relevance, Chefer, Gur & Wolf 2021 ("Generic Attention-model
    Explainability"), rules 5-6: ``Abar = mean_h (grad A * A)^+``, ``R <- R + Mbar_l R``,
    with ``Mbar_l = Sbar_l Tbar_l`` on the factorised grid; the class row of R is the map."""

    facts = BUILT_IN["relevance"]

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        blocks, logits, index = self._forward_maps(clips, target, weighted=True)
        r = _propagate_class_row(blocks, keep=1.0, mix=1.0)
        spatial, frames = read_full(r, self.model.config.grid)
        return MethodResult(spatial, frames, logits, index,
                            {"class_row": r, "class_token_importance": class_column(r)})


class _DecomposedView(_AttentionMethod):
    """Propagation through one kind of map only (the paper's separate spatial and temporal maps).

    ``weighting="relevance"`` (default) uses Chefer's gradient-weighted maps and
    ``R <- R + Mbar R``; ``weighting="rollout"`` the raw, head-fused maps and
    ``(M + I) / 2``.
    """

    _WEIGHTINGS = ("relevance", "rollout")

    def __init__(self, model, *, weighting: str = "relevance", **options: Any) -> None:
        super().__init__(model, **options)
        if weighting not in self._WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(self._WEIGHTINGS)}, got {weighting!r}")
        self.settings = {"weighting": weighting}

    def _propagated(self, clips: torch.Tensor, target: Target, start: torch.Tensor | None, step
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weighted = self.settings["weighting"] == "relevance"
        blocks, logits, index = self._forward_maps(clips, target, weighted=weighted)
        keep = 1.0 if weighted else 0.5
        return propagate_row(start(blocks), blocks, keep=keep, mix=keep, step=step), logits, index


@register_method
class SpatialOnly(_DecomposedView):
    """Every frame's spatial class token propagated through the spatial maps alone.

    Row t starts at its own class token (t, 0) and only spatial mixing is
    applied, so frame t's map ``r[t, 1:]`` says where *within the frame* the
    frame's summary looked; a frame's importance is the patch mass of its row.
    """

    facts = BUILT_IN["spatial-only"]

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        def start(blocks: list[BlockMaps]) -> torch.Tensor:
            temporal, spatial = blocks[0]
            r = torch.zeros(spatial.shape[:3], dtype=spatial.dtype, device=spatial.device)
            r[:, :, 0] = 1.0
            return r

        r, logits, index = self._propagated(clips, target, start, spatial_step)
        patches = r[:, 1:, 1:]
        return MethodResult(self._grid_maps(patches), patches.sum(dim=-1), logits, index, {"rows": r})


@register_method
class TemporalOnly(_DecomposedView):
    """Every position of the temporal class row propagated through the temporal maps alone.

    Column s starts at (0, s) and only temporal mixing is applied; the spatial
    map shows, per position, how much each frame's token there contributed, and
    a frame's importance is the mass of its patches (the class column, a learned
    input constant, is reported apart as ``class_token_importance``).
    """

    facts = BUILT_IN["temporal-only"]

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        def start(blocks: list[BlockMaps]) -> torch.Tensor:
            temporal, spatial = blocks[0]
            r = torch.zeros(spatial.shape[:3], dtype=spatial.dtype, device=spatial.device)
            r[:, 0, :] = 1.0
            return r

        r, logits, index = self._propagated(clips, target, start, temporal_step)
        patches = r[:, 1:, 1:]
        return MethodResult(self._grid_maps(patches), patches.sum(dim=-1), logits, index,
                            {"columns": r, "class_token_importance": class_column(r)})


def _blocks(fused: dict) -> list[BlockMaps]:
    """{(layer, kind): map} -> [(temporal, spatial)] in forward order."""
    return [(fused[(layer, "temporal")], fused[(layer, "spatial")])
            for layer in sorted({layer for layer, _ in fused})]


def _propagate_class_row(blocks: list[BlockMaps], *, keep: float, mix: float) -> torch.Tensor:
    temporal, spatial = blocks[0]
    start = class_start(spatial.shape[0], spatial.shape[1], spatial.shape[2],
                        device=spatial.device, dtype=spatial.dtype)
    return propagate_row(start, blocks, keep=keep, mix=mix)
