"""Slow, obvious references of the fast explanation paths, for tests and the speed benchmarks only.

``dense_row`` builds the (T+1)(N+1) x (T+1)(N+1) matrix that ``propagation`` avoids: at the
paper's grid (7 x 362 = 2534 tokens) that is 6.4 M entries per block and a cubic product.
``two_pass_lrp_row`` computes Chefer's LRP with two forward passes.  No explanation method
imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .propagation import BlockMaps


def dense_mixing(temporal: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """``(S T)[(t, s), (t'', s'')] = As[t][s, s''] * At[s''][t, t'']`` as a (B, G, G) matrix, G = (T+1)(N+1)."""
    b, rows, cols, _ = spatial.shape
    dense = torch.einsum("btsk,bktj->btsjk", spatial, temporal)
    return dense.reshape(b, rows * cols, rows * cols)


def dense_row(start: torch.Tensor, blocks: Sequence[BlockMaps], *, keep: float = 1.0,
              mix: float = 1.0) -> torch.Tensor:
    """``start^T (keep I + mix M_L) ... (keep I + mix M_1)`` with explicit dense matrices."""
    b, rows, cols = start.shape
    eye = torch.eye(rows * cols, dtype=start.dtype, device=start.device)
    product = eye.expand(b, -1, -1).clone()
    for temporal, spatial in reversed(list(blocks)):  # the row meets block L first
        product = product @ (keep * eye + mix * dense_mixing(temporal, spatial))
    return (start.reshape(b, 1, -1) @ product).reshape(b, rows, cols)


def two_pass_lrp_row(model: torch.nn.Module, clips: torch.Tensor, target=None) -> torch.Tensor:
    """Chefer's LRP class row the obvious way, two forwards: ordinary autograd on the plain model for
    ``dA``, then a separate LRP-path forward and backward for ``R_A``.  ``LRPAttribution`` gets the
    same row from one forward walked twice."""
    import torch.nn.functional as F

    from ..models.lrp_rules import IdentityRule, LinearZPlus
    from .attention_methods import _blocks, _propagate_class_row
    from .capture import AttentionCapture
    from .lrp import LRPAttribution, lrp_mode, signed_head
    from .propagation import weighted_relevance

    _, grads, _, index, tokens = LRPAttribution(model)._gradient_pass(clips, target)
    with lrp_mode(model), AttentionCapture(model, detach=False) as cap:
        leaf = tokens.detach().requires_grad_(True)
        hidden = IdentityRule.apply(model.forward_blocks(leaf)[:, 0, 0], model.head[0])
        weight, bias = signed_head(model)
        scores = LinearZPlus.apply(hidden, weight, bias)
        keys = sorted(cap.maps)
        seed = F.one_hot(index, scores.shape[1]).to(scores.dtype)
        relevance = torch.autograd.grad(scores, [cap.maps[k] for k in keys], grad_outputs=seed)
        relevance = {k: cap.to_grid(r) for k, r in zip(keys, relevance, strict=True)}
    fused = {k: weighted_relevance(relevance[k], grads[k]) for k in keys}
    return _propagate_class_row(_blocks(fused), keep=1.0, mix=1.0)
