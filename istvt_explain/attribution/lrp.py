"""Layer-wise relevance propagation that holds still: conservative propagation in gradient x input form.

The model's relevance rules (``models.layers``, switched on by ``lrp_rules``) make the transformer
locally linear in what carries relevance: LayerNorm's scale, GELU's gate and (rule ``"cp"``, Ali et
al., ICML 2022) the attention weights become constants, while the forward output stays the same.  The
score is then exactly linear in the embedded tokens and the biases, so one forward and one backward
pass give the relevance of every token as gradient x input (AttnLRP, Achtibat et al., ICML 2024, in
its efficient form), and what the tokens do not take, the biases do:

    score = sum over tokens (grad . token) + sum over biases (grad . bias)

Nothing is divided by an activation, so no near-zero denominator can throw relevance around: a
nudge of the input moves the map as little as it moves the model.  The relevance of a patch token
is split by linearity into its content (the map), its positional embedding and the projection's
bias; the class tokens and every bias of the blocks and the head take their own shares.
``extras["account"]`` (B, P) holds each share per clip, named by ``extras["account_parts"]``, and
``extras["conservation"]`` the accounted sum over the explained score (1 when nothing is lost).

Rule ``"attnlrp"`` lets relevance through the softmax as well (AttnLRP's softmax rule, with the
uniform rule on the two attention products); it is not conservative, and the unaccounted rest is
reported as ``account["unaccounted"]``.

The Xception entry flow is not traversed: the map is read at the token grid (one value per token,
as every attention method's), and pixel-level attributions are left to the Captum baselines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..models.layers import RULES
from ..models.precision import upcast
from .base import Attribution, MethodResult, Target
from .catalogue import BUILT_IN
from .registry import register_method


@contextmanager
def lrp_rules(model: nn.Module, rule: str = "cp") -> Iterator[nn.Module]:
    """Switch every relevance rule of ``model`` to ``rule`` for the block; always switched back.

    The forward output is unchanged; only the graph, and so the backward pass, differs.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    switched = [m for m in model.modules() if hasattr(m, "lrp")]
    saved = [m.lrp for m in switched]
    try:
        for module in switched:
            module.lrp = rule
        yield model
    finally:
        for module, value in zip(switched, saved, strict=True):
            module.lrp = value


@dataclass
class RelevanceAccount:
    """The shares of the explained score that land on biases, per clip.

    Bias sites are found by forward hooks on the transformer's linear layers and layer norms: each adds
    a zero "probe" with one row per clip to its output, so the gradient at a probe is the summed gradient
    at that output, clip by clip, and its dot product with the bias is the bias's share.
    """

    batch: int
    probes: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # name -> (probe, bias)
    _handles: list[Any] = field(default_factory=list)

    @contextmanager
    def watching(self, modules: dict[str, nn.Module]) -> Iterator[RelevanceAccount]:
        """Add the probes to the outputs of ``modules`` (name -> module with a ``bias``) for the block."""
        try:
            for name, module in modules.items():
                self._handles.append(module.register_forward_hook(self._hook(name, module.bias)))
            yield self
        finally:
            for handle in self._handles:
                handle.remove()
            self._handles.clear()

    def _hook(self, name: str, bias: torch.Tensor):
        def add_probe(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
            probe = torch.zeros(self.batch, 1, output.shape[-1], device=output.device, dtype=output.dtype,
                                requires_grad=True)
            self.probes[name] = (probe, bias)
            return (output.reshape(self.batch, -1, output.shape[-1]) + probe).reshape(output.shape)
        return add_probe

    def bias_shares(self, gradients: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """(B,) share of each bias site from the gradients at its probe."""
        return {name: (upcast(gradients[name]).reshape(self.batch, -1) * upcast(bias.detach())).sum(dim=1)
                for name, (_, bias) in self.probes.items()}


def bias_sites(model: nn.Module) -> dict[str, nn.Module]:
    """Every layer of the transformer and the head that adds a bias to the relevance-carrying path.

    The query / key projections carry none (they are bias-free); the entry flow is not traversed.
    """
    return {name: module for name, module in model.named_modules()
            if not name.startswith("backbone") and name != "proj"
            and isinstance(module, (nn.Linear, nn.LayerNorm)) and getattr(module, "bias", None) is not None}


@register_method
class LRPAttribution(Attribution):
    """Conservative LRP of the explained score at the token grid (see the module doc).

    Options: ``rule`` (``"cp"``, default: attention weights constant; ``"attnlrp"``: relevance also
    through the softmax).  The map is signed: positive tokens speak for the explained class, negative
    ones against it.
    """

    facts = BUILT_IN["lrp"]

    def __init__(self, model, *, rule: str = "cp", **options: Any) -> None:
        super().__init__(model, **options)
        if rule not in RULES:
            raise ValueError(f"lrp: rule must be one of {', '.join(RULES)}, got {rule!r}")
        self.settings = {"rule": rule}

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        model = self.model
        b, t = clips.shape[:2]
        with torch.no_grad():
            embedded = model.embed(clips)
            parts = _token_parts(model, embedded)
        account = RelevanceAccount(b)
        with lrp_rules(model, self.settings["rule"]), account.watching(bias_sites(model)):
            tokens = embedded.detach().requires_grad_(True)
            logits = model.forward_head(model.forward_blocks(tokens))
            index = self._index(target, logits)
            score = self._scores(logits, index)
            names = list(account.probes)
            grads = torch.autograd.grad(score.sum(), [tokens] + [account.probes[n][0] for n in names])
        grad = upcast(grads[0])
        shares = _token_shares(grad, parts)
        shares.update({f"bias:{n}": v for n, v in account.bias_shares(dict(zip(names, grads[1:], strict=True))).items()})
        explained = upcast(score.detach())
        accounted = torch.stack(list(shares.values())).sum(dim=0)
        shares["unaccounted"] = explained - accounted
        content = (grad * parts["content"]).sum(dim=-1)[:, 1:, 1:]  # (B, T, N): the frames' patches
        spatial = self._grid_maps(content)
        tokens_relevance = (grad * upcast(embedded)).sum(dim=-1).detach()  # (B, T+1, N+1), all of each token
        extras = {"account": torch.stack(list(shares.values()), dim=1).detach(), "account_parts": list(shares),
                  "conservation": (accounted / explained).detach(), "explained_score": explained,
                  "token_relevance": tokens_relevance, "class_token_importance": tokens_relevance[:, 1:, 0]}
        return MethodResult(spatial, content.sum(dim=-1), logits.detach(), index, extras)


def _token_parts(model: nn.Module, embedded: torch.Tensor) -> dict[str, torch.Tensor]:
    """The embedded grid (B, T+1, N+1, D) split into what adds up to it: patch content, positional
    embedding, projection bias, spatial and temporal class tokens (each zero where it is absent)."""
    zeros = torch.zeros_like(embedded)
    pos = zeros.clone()
    pos[:, 1:] = model.pos_embed.to(embedded.dtype)
    spatial_cls, temporal_cls, proj_bias = zeros.clone(), zeros.clone(), zeros.clone()
    spatial_cls[:, 1:, :1] = model.spatial_cls.to(embedded.dtype)
    temporal_cls[:, :1] = model.temporal_cls.to(embedded.dtype)
    bias = getattr(model.proj, "bias", None)
    if bias is not None:
        proj_bias[:, 1:, 1:] = bias.to(embedded.dtype)
    content = embedded - pos - spatial_cls - temporal_cls - proj_bias
    content[:, :1] = 0
    content[:, :, :1] = 0
    return {name: upcast(value) for name, value in (("content", content), ("positional", pos),
                                                     ("projection_bias", proj_bias), ("spatial_class", spatial_cls),
                                                     ("temporal_class", temporal_cls))}


def _token_shares(grad: torch.Tensor, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(B,) relevance of each part of the token grid: gradient x input, summed over tokens and features."""
    return {name: (grad * value).flatten(1).sum(dim=1) for name, value in parts.items()}
