"""Transformer attribution with LRP (Chefer, Gur & Wolf 2021, "Transformer Interpretability
Beyond Attention Visualization"): the method the ISTVT paper used.

Two passes over the transformer (the entry flow runs once, the token grid is reused):
1. the gradient ``dA`` of the target score at every attention map (ordinary backward);
2. the model's LRP path (``lrp`` flags, rules in ``istvt_explain.models.lrp_rules``):
   backward then carries relevance, and the relevance ``R_A`` arriving at each
   attention map is read where the capture hooks sit.
Then ``Abar = mean_h (dA * R_A)^+`` and the class row is propagated exactly as
for ``relevance`` (``R <- R + Mbar R``, vector form).

Rules (see ``lrp_rules``): z+ for every linear layer (the class head
included), gradient x input halves for both matrix products of attention,
identity through LayerNorm, GELU and softmax, the |z| split for the
self-subtract, and residual rescaling so relevance is conserved.  The conv
stem is *not* traversed: the read-out is at the token grid, where the
relevance of the embedded tokens is returned (``extras["token_relevance"]``)
and the conservation check is made (``extras["conservation"]``: the relevance
reaching the token grid divided by the relevance put on the target, 1 when
conserved).  Chefer et al. use z^B for a ViT's patch projection; with an
Xception stem of 14 BatchNorm'd conv layers before the tokens, relevance in
pixel space is left to the Captum baselines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..models.lrp_rules import LinearZPlus, identity_rule
from .attention_methods import Relevance, _blocks, _propagate_class_row
from .base import MethodResult, Target
from .capture import AttentionCapture
from .propagation import class_column, read_full, weighted_relevance
from .registry import register_method


@contextmanager
def lrp_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Turn the model's LRP path on for the ``with`` block and restore every flag after, even on error."""
    saved = {module: module.lrp for module in model.modules() if hasattr(module, "lrp")}
    if not saved:
        raise ValueError("this model has no LRP path (no module carries an `lrp` flag)")
    try:
        for module in saved:
            module.lrp = True
        yield model
    finally:
        for module, flag in saved.items():
            module.lrp = flag


def signed_head(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's last linear as one row per class column of ``class_scores``.

    A one-logit head becomes two rows, ``-w`` (real) and ``+w`` (fake), so the
    z+ rule explains the real class with its own positive contributions rather
    than with the fake class's relevance negated.
    """
    linear = model.head[-1]
    weight, bias = linear.weight, linear.bias
    if model.config.num_classes == 1:
        return torch.cat([-weight, weight]), torch.cat([-bias, bias])
    return weight, bias


@register_method
class LRPAttribution(Relevance):
    """Chefer et al. 2021 transformer attribution: ``Abar = mean_h (dA * R_A)^+`` with LRP ``R_A``."""

    name = "lrp"
    label = "LRP transformer attribution (Chefer 2021)"

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        maps, grads, logits, index, embedded = self._gradient_pass(clips, target)
        del maps  # the LRP pass below supplies R_A in place of A
        model = self.model
        with lrp_mode(model), AttentionCapture(model, detach=False) as cap:
            tokens = embedded.detach().requires_grad_(True)  # the entry flow ran once, in the first pass
            cls = model.forward_blocks(tokens)[:, 0, 0]
            hidden = identity_rule(cls, model.head[0])
            weight, bias = signed_head(model)
            scores = LinearZPlus.apply(hidden, weight, bias)
            seed = F.one_hot(index, scores.shape[1]).to(scores.dtype)
            keys = sorted(cap.maps)
            relevances = torch.autograd.grad(scores, [cap.maps[k] for k in keys] + [tokens], grad_outputs=seed)
            lrp_maps = {k: cap.to_grid(r) for k, r in zip(keys, relevances[:-1], strict=True)}
            token_relevance = relevances[-1].sum(dim=-1)
        fused = {k: weighted_relevance(lrp_maps[k], grads[k]) for k in keys}
        r = _propagate_class_row(_blocks(fused), keep=1.0, mix=1.0)
        spatial, frames = read_full(r, model.config.grid)
        extras = {"class_row": r, "class_token_importance": class_column(r), "token_relevance": token_relevance,
                  "conservation": token_relevance.flatten(1).sum(dim=1)}
        return MethodResult(spatial, frames, logits, index, extras)
