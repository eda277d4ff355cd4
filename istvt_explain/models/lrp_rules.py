"""Layer-wise relevance propagation (LRP) rules used by the model's ``lrp`` path.

Each rule is a ``torch.autograd.Function`` whose forward is the ordinary
operation and whose backward receives the *relevance* of the output (not a
gradient) and returns the relevance of the inputs.  Running ``backward`` on a
graph built with these functions therefore propagates relevance, which is how
Chefer, Gur & Wolf (2021, "Transformer Interpretability Beyond Attention
Visualization", CVPR) obtain the relevance ``R_A`` of every attention map.

The rules live with the model (not in ``explain``) because the layers call
them when their ``lrp`` flag is on, the same way ``fused_attn`` switches the
attention kernel; the model never imports a later stage.

Notation: ``R`` the relevance of an output, ``S = R / z`` with a stabiliser
``eps`` that keeps the sign of ``z`` (``z + eps * sign(z)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-9


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
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, weight = ctx.saved_tensors
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        wp, wn = weight.clamp(min=0), weight.clamp(max=0)
        z = F.linear(xp, wp) + F.linear(xn, wn)
        s = relevance / stabilize(z)
        r_in = xp * (s @ wp) + xn * (s @ wn)
        return r_in, None, None


class IdentityRule(torch.autograd.Function):
    """Identity rule: ``R_in = R_out`` through a token-wise map (LayerNorm, GELU, softmax).

    Chefer et al. 2021 pass relevance unchanged through these non-linearities
    (Ali et al. 2022 argue the same for LayerNorm); the forward is ``fn(x)``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn) -> torch.Tensor:
        return fn(x)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        return relevance, None


def identity_rule(x: torch.Tensor, fn) -> torch.Tensor:
    """``fn(x)`` whose backward passes relevance through unchanged (see ``IdentityRule``)."""
    return IdentityRule.apply(x, fn)


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
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
        z = (a @ b) * scale
        ctx.save_for_backward(a, b, z)
        ctx.scale = scale
        return z

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        a, b, z = ctx.saved_tensors
        s = relevance / stabilize(z)
        r_a = 0.5 * a * (s @ b.transpose(-2, -1)) * ctx.scale
        r_b = 0.5 * b * (a.transpose(-2, -1) @ s) * ctx.scale
        return r_a, r_b, None


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
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        a, b = ctx.saved_tensors
        s = relevance / stabilize(a + b)
        r_a, r_b = a * s, b * s
        sum_a, sum_b, total = _per_sample_sum(r_a), _per_sample_sum(r_b), _per_sample_sum(relevance)
        denom = stabilize(sum_a.abs() + sum_b.abs())
        r_a = r_a * (sum_a.abs() / denom) * (total / stabilize(sum_a))
        r_b = r_b * (sum_b.abs() / denom) * (total / stabilize(sum_b))
        return r_a, r_b


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
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        if x.shape[-2] < 3:
            return x.clone()
        return torch.cat([x[..., :2, :], x[..., 2:, :] - x[..., 1:-1, :]], dim=-2)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        (x,) = ctx.saved_tensors
        if x.shape[-2] < 3:
            return relevance
        cur, prev = x[..., 2:, :].abs(), x[..., 1:-1, :].abs()
        share = cur / stabilize(cur + prev)
        r_diff = relevance[..., 2:, :]
        r_in = relevance.clone()
        r_in[..., 2:, :] = r_diff * share
        r_in[..., 1:-1, :] += r_diff * (1 - share)
        return r_in


def lrp_linear(x: torch.Tensor, linear: torch.nn.Linear) -> torch.Tensor:
    """``linear(x)`` whose backward applies the z+ rule."""
    return LinearZPlus.apply(x, linear.weight, linear.bias)
