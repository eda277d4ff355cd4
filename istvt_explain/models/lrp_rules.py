"""Layer-wise relevance propagation (LRP) rules used by the model's ``lrp`` path.

Each rule is a ``torch.autograd.Function`` whose forward is the ordinary
operation and whose backward receives the *relevance* of the output (not a
gradient) and returns the relevance of the inputs.  Running ``backward`` on a
graph built with these functions therefore propagates relevance, which is how
Chefer, Gur & Wolf (2021, "Transformer Interpretability Beyond Attention
Visualization", CVPR) obtain the relevance ``R_A`` of every attention map.

The rules live with the model (not in ``attribution``) because the layers call
them when their ``lrp`` flag is on, the same way ``fused_attn`` switches the
attention kernel; the model never imports a later stage.

Notation: ``R`` the relevance of an output, ``S = R / z`` with a stabiliser
``eps`` that keeps the sign of ``z`` (``z + eps * sign(z)``).

One forward, two backward signals.  Chefer's attribution needs both the
ordinary gradient at every attention map and the LRP relevance there.  The
rules' forward is the ordinary operation, so one forward graph serves both:
every rule takes a ``RuleSignal`` and its backward returns the true gradient
while ``signal.mode == "gradient"`` and relevance otherwise.  The LRP method
runs backward twice over that graph (``retain_graph``), switching the mode in
between, instead of building a second forward graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .precision import upcast

EPS = 1e-9


@dataclass
class RuleSignal:
    """What the rules' backward carries: ``"relevance"`` (LRP) or ``"gradient"`` (ordinary autograd).

    Read at backward time, so one forward graph can be walked once for each.  Shared by every
    rule of one model while ``attribution.lrp.lrp_mode`` is on (it is the truthy value of their ``lrp`` flag).
    """

    mode: str = "relevance"
    linear: str = "zplus"  # the rule of every linear layer: "zplus" (Chefer 2021) or "epsilon" (AttnLRP)

    def __bool__(self) -> bool:
        return True


def _gradient(signal: object) -> bool:
    return isinstance(signal, RuleSignal) and signal.mode == "gradient"


def _f32(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """The rules compute in float32 at least, even when the forward ran under 16-bit autocast:
    ratios R / z and their sums lose too much in bf16.  (float32 and float64 pass unchanged.)"""
    return [upcast(t) for t in tensors]


def stabilize(z: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``z + eps * sign(z)`` (sign(0) taken as +1): a denominator that never crosses zero."""
    return z + eps * torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))


def _per_sample_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over every dimension but the first, kept broadcastable."""
    return t.flatten(1).sum(dim=1).view(-1, *([1] * (t.dim() - 1)))


class LinearZPlus(torch.autograd.Function):
    """z+ rule (LRP-alpha1-beta0) for ``y = x W^T + b``.

    Chefer et al. 2021, eq. for the alpha-beta rule with alpha = 1, beta = 0
    (Bach et al. 2015; Montavon et al. 2017 call it z+ when inputs are signed):

        z_k  = sum_j x_j^+ W_kj^+ + x_j^- W_kj^-          (the positive contributions)
        R_j  = x_j^+ sum_k W_kj^+ R_k / z_k + x_j^- sum_k W_kj^- R_k / z_k

    The bias is not a contribution and takes no relevance, so sum_j R_j = sum_k R_k
    whenever z_k > 0.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                signal: RuleSignal | None = None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.signal = signal
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, weight, relevance = _f32(*ctx.saved_tensors, relevance)
        if _gradient(ctx.signal):
            return relevance @ weight, None, None, None
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        wp, wn = weight.clamp(min=0), weight.clamp(max=0)
        z = F.linear(xp, wp) + F.linear(xn, wn)
        s = relevance / stabilize(z)
        r_in = xp * (s @ wp) + xn * (s @ wn)
        return r_in, None, None, None


class LinearEpsilon(torch.autograd.Function):
    """Epsilon rule (LRP-0 with a stabiliser) for ``y = x W^T + b``, the bias taking no relevance.

        z_k = sum_j x_j W_kj   (= y_k - b_k, kept from the forward),   R_j = x_j sum_k W_kj R_k / z_k

    AttnLRP (Achtibat et al., ICML 2024) uses this rule for every linear layer: its backward is one
    matrix product, like a gradient's, where z+ needs four.  Leaving the bias out of z makes it
    conserve relevance exactly (sum_j R_j = sum_k R_k).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                signal: RuleSignal | None = None) -> torch.Tensor:
        y = F.linear(x, weight, bias)
        ctx.save_for_backward(x, weight, y if bias is None else y - bias)
        ctx.signal = signal
        return y

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, weight, z, relevance = _f32(*ctx.saved_tensors, relevance)
        if _gradient(ctx.signal):
            return relevance @ weight, None, None, None
        return x * ((relevance / stabilize(z)) @ weight), None, None, None


LINEAR_RULES = {"zplus": LinearZPlus, "epsilon": LinearEpsilon}


def check_linear_rule(name: str) -> str:
    """``name`` if it is a key of ``LINEAR_RULES``, else a ValueError naming the choices."""
    if name not in LINEAR_RULES:
        raise ValueError(f"linear_rule must be one of {', '.join(LINEAR_RULES)}, got {name!r}")
    return name


class IdentityRule(torch.autograd.Function):
    """Identity rule: ``R_in = R_out`` through a token-wise map (LayerNorm, GELU, softmax).

    Chefer et al. 2021 pass relevance unchanged through these non-linearities
    (Ali et al. 2022 argue the same for LayerNorm); the forward is ``fn(x)``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn, signal: RuleSignal | None = None) -> torch.Tensor:
        ctx.signal, ctx.fn = signal, fn
        if isinstance(signal, RuleSignal):  # the gradient walk recomputes fn's vector-Jacobian product
            ctx.save_for_backward(x)
        return fn(x)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        if _gradient(ctx.signal):
            x, relevance = _f32(*ctx.saved_tensors, relevance)
            with torch.enable_grad():
                leaf = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(ctx.fn(leaf), leaf, relevance)
            return grad, None, None
        return relevance, None, None


def identity_rule(x: torch.Tensor, fn, signal: RuleSignal | None = None) -> torch.Tensor:
    """``fn(x)`` whose backward passes relevance through unchanged (see ``IdentityRule``)."""
    return IdentityRule.apply(x, fn, signal)


class MatMulHalves(torch.autograd.Function):
    """Relevance of a product of two activations ``z = scale * a @ b`` (attention scores, A @ V).

    Chefer et al. 2021, the rule for non-parametric layers (their eqs. for
    matrix multiplication): gradient x input for each operand, halved so the
    two shares add up to the output's relevance:

        S   = R / z
        R_a = 1/2 * a * (S @ b^T) * scale
        R_b = 1/2 * b * (a^T @ S) * scale

    Because z is bilinear, sum(R_a) = sum(R_b) = sum(R) / 2 (up to the stabiliser).
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, scale: float,
                signal: RuleSignal | None = None) -> torch.Tensor:
        z = (a @ b) * scale
        ctx.save_for_backward(a, b, z)
        ctx.scale, ctx.signal = scale, signal
        return z

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        a, b, z, relevance = _f32(*ctx.saved_tensors, relevance)
        if _gradient(ctx.signal):
            return ((relevance @ b.transpose(-2, -1)) * ctx.scale, (a.transpose(-2, -1) @ relevance) * ctx.scale,
                    None, None)
        s = relevance / stabilize(z)
        r_a = 0.5 * a * (s @ b.transpose(-2, -1)) * ctx.scale
        r_b = 0.5 * b * (a.transpose(-2, -1) @ s) * ctx.scale
        return r_a, r_b, None, None


class ResidualAdd(torch.autograd.Function):
    """Relevance through a residual ``y = a + b``, rescaled so it is conserved.

    Chefer et al. 2021 (relevance through skip connections, with the
    normalisation that counters the numerical loss of the z-rule):

        R_a = a * R / (a + b),   R_b = b * R / (a + b)                  (z-rule)
        Rbar_a = R_a * |sum R_a| / (|sum R_a| + |sum R_b|) * sum R / sum R_a
        Rbar_b = R_b * |sum R_b| / (|sum R_a| + |sum R_b|) * sum R / sum R_b

    Sums run over each sample separately, so sum(Rbar_a) + sum(Rbar_b) = sum(R)
    per clip exactly.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, signal: RuleSignal | None = None) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        ctx.signal = signal
        return a + b

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        if _gradient(ctx.signal):
            return relevance, relevance, None
        a, b, relevance = _f32(*ctx.saved_tensors, relevance)
        s = relevance / stabilize(a + b)
        r_a, r_b = a * s, b * s
        sum_a, sum_b, total = _per_sample_sum(r_a), _per_sample_sum(r_b), _per_sample_sum(relevance)
        denom = stabilize(sum_a.abs() + sum_b.abs())
        r_a = r_a * (sum_a.abs() / denom) * (total / stabilize(sum_a))
        r_b = r_b * (sum_b.abs() / denom) * (total / stabilize(sum_b))
        return r_a, r_b, None


class SelfSubtract(torch.autograd.Function):
    """ISTVT's self-subtract along time (dim -2), with an absolute-contribution rule.

    Forward: rows 0, 1 kept; row t >= 2 becomes ``x_t - x_(t-1)``.
    Backward: a kept row passes its relevance on; a difference row splits its
    relevance between its two operands in proportion to their magnitudes,

        R_(x_t) += R_t * |x_t| / (|x_t| + |x_(t-1)|),  R_(x_(t-1)) += R_t * |x_(t-1)| / (...)

    (the |z| rule).  It conserves relevance like the z-rule, but stays bounded
    when the frame difference cancels, where R / z would blow up.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, signal: RuleSignal | None = None) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.signal = signal
        if x.shape[-2] < 3:
            return x.clone()
        return torch.cat([x[..., :2, :], x[..., 2:, :] - x[..., 1:-1, :]], dim=-2)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, relevance = _f32(*ctx.saved_tensors, relevance)
        if x.shape[-2] < 3:
            return relevance, None
        if _gradient(ctx.signal):  # the transpose of "row t minus row t-1 for t >= 2"
            grad = relevance.clone()
            grad[..., 1:-1, :] -= relevance[..., 2:, :]
            return grad, None
        cur, prev = x[..., 2:, :].abs(), x[..., 1:-1, :].abs()
        share = cur / stabilize(cur + prev)
        r_diff = relevance[..., 2:, :]
        r_in = relevance.clone()
        r_in[..., 2:, :] = r_diff * share
        r_in[..., 1:-1, :] += r_diff * (1 - share)
        return r_in, None


def lrp_linear(x: torch.Tensor, linear: torch.nn.Linear, signal: RuleSignal | None = None) -> torch.Tensor:
    """``linear(x)`` whose backward applies the signal's linear rule (z+ when no signal is given)."""
    rule = LINEAR_RULES[signal.linear] if isinstance(signal, RuleSignal) else LinearZPlus
    return rule.apply(x, linear.weight, linear.bias, signal)
