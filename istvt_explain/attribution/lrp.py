"""Transformer attribution with LRP (Chefer, Gur & Wolf 2021, "Transformer Interpretability
Beyond Attention Visualization"): the method the ISTVT paper used.

One forward pass and two backward walks over its graph (the entry flow runs
without autograd, the graph starts at the token grid):
the forward runs the model's LRP path (``lrp`` flags, rules in
``istvt_explain.models.lrp_rules``), whose forward is the ordinary model;
1. walked with the rules in gradient mode, backward gives the gradient ``dA``
   of the target score at every attention map;
2. walked again in relevance mode from the z+ head, it gives the relevance
   ``R_A`` arriving at each attention map, read where the capture hooks sit.
Then ``Abar = mean_h (dA * R_A)^+`` and the class row is propagated exactly as
for ``relevance`` (``R <- R + Mbar R``, vector form).

Rules (see ``lrp_rules``): z+ for every linear layer (the class head
included; with ``linear_rule="epsilon"`` the blocks' linear layers take the
bias-free epsilon rule of AttnLRP instead, whose backward costs one matrix
product where z+ costs four, but whose maps do not survive a 1e-4 nudge of the input: a speed
experiment, not a map to read), gradient x input halves for both matrix products of attention,
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

from ..models.lrp_rules import LinearZPlus, RuleSignal, check_linear_rule, identity_rule
from ..models.precision import autocast_off, upcast
from .attention_methods import Relevance, _blocks, _propagate_class_row
from .base import MethodResult, Target
from .capture import AttentionCapture
from .catalogue import BUILT_IN
from .propagation import class_column, read_full, weighted_relevance
from .registry import register_method


@contextmanager
def lrp_mode(model: nn.Module, linear_rule: str = "zplus") -> Iterator[RuleSignal]:
    """Turn the model's LRP path on for the ``with`` block and restore every flag after, even on error.

    Yields the ``RuleSignal`` shared by the model's rules: set its ``mode`` to ``"gradient"`` for a
    backward walk that returns ordinary gradients, ``"relevance"`` (the default) for LRP.
    ``linear_rule``: ``"zplus"`` or ``"epsilon"`` (``models.lrp_rules.LINEAR_RULES``).
    """
    check_linear_rule(linear_rule)
    saved = {module: module.lrp for module in model.modules() if hasattr(module, "lrp")}
    if not saved:
        raise ValueError("this model has no LRP path (no module carries an `lrp` flag)")
    signal = RuleSignal(linear=linear_rule)
    try:
        for module in saved:
            module.lrp = signal
        yield signal
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

    facts = BUILT_IN["lrp"]

    def __init__(self, model, *, linear_rule: str = "zplus", **options) -> None:
        super().__init__(model, **options)
        self.settings = {"linear_rule": check_linear_rule(linear_rule)}

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        model = self.model
        with torch.no_grad():
            embedded = model.embed(clips)
        # The transformer runs in float32 whatever the precision: the rules divide by activations
        # (R / z), and 16-bit activations turn a near-cancellation into a spike (under bf16 one
        # clip's map correlated 0.67 with float32).  The entry flow keeps the reduced precision.
        # Not TF32 either, though it halves LRP's time on an H200: with the demo weights its frame
        # curves correlated -0.61 with float32 (benchmarks/results/gpu_h200_tf32_lrp).
        with (lrp_mode(model, self.settings["linear_rule"]) as signal, AttentionCapture(model, detach=False) as cap,
              autocast_off()):
            tokens = upcast(embedded.detach()).requires_grad_(True)  # so the maps need grad even for a frozen model
            final = model.forward_blocks(tokens)
            logits = model.forward_head(final)  # the ordinary head: the score whose gradient Chefer weighs by
            index = self._index(target, logits)
            keys = sorted(cap.maps)
            maps = [cap.maps[k] for k in keys]
            signal.mode = "gradient"
            grads = torch.autograd.grad(self._scores(logits, index).sum(), maps, retain_graph=True)
            signal.mode = "relevance"
            hidden = identity_rule(final[:, 0, 0], model.head[0], signal)
            weight, bias = signed_head(model)
            scores = LinearZPlus.apply(hidden, weight, bias, signal)  # z+ at the head under either rule
            seed = F.one_hot(index, scores.shape[1]).to(scores.dtype)
            relevances = torch.autograd.grad(scores, maps + [tokens], grad_outputs=seed)
            lrp_maps = {k: cap.to_grid(r) for k, r in zip(keys, relevances[:-1], strict=True)}
            grads = {k: cap.to_grid(g) for k, g in zip(keys, grads, strict=True)}
            token_relevance = relevances[-1].sum(dim=-1)
        logits = logits.detach()
        fused = {k: weighted_relevance(lrp_maps[k], grads[k]) for k in keys}
        r = _propagate_class_row(_blocks(fused), keep=1.0, mix=1.0)
        spatial, frames = read_full(r, model.config.grid)
        extras = {"class_row": r, "class_token_importance": class_column(r), "token_relevance": token_relevance,
                  "conservation": token_relevance.flatten(1).sum(dim=1)}
        return MethodResult(spatial, frames, logits, index, extras)
