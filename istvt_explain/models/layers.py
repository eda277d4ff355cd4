"""Transformer layers of ISTVT: factorised temporal / spatial attention and the MLP.

Tokens live on a (time, space) grid of shape (B, T+1, S, D): row 0 is the
temporal class row, column 0 the spatial class column.  Each attention module
has a fused path (``scaled_dot_product_attention``, which never materialises
the map) and an explicit path that does, and passes the probabilities through
an ``AttentionProbe`` so hooks can read them (see ``istvt_explain.attribution.capture``).

Relevance rules.  Every module that carries one has an ``lrp`` attribute (None by default, as
``fused_attn`` is on by default).  Set to ``"cp"`` or ``"attnlrp"`` (by ``attribution.lrp.lrp_rules``),
the forward output is unchanged but its graph is that of a network made locally linear in what
carries relevance, so that gradient x input at the token grid *is* layer-wise relevance:

* ``LayerNorm``: the standard deviation is a constant, ``(x - mean) / std.detach() * w + b``
  (Ali et al., ICML 2022; AttnLRP, Achtibat et al., ICML 2024, eq. 9 applied to the scale);
* ``GELU``: the identity rule, ``gelu(x) = x * (gelu(x) / x)`` with the ratio a constant (AttnLRP eq. 9);
* attention, ``"cp"``: the attention weights are constants (queries and keys detached), so all
  relevance reaches the values, as conservative propagation prescribes; ``"attnlrp"``: relevance also
  flows through the softmax, whose gradient x input is AttnLRP's softmax rule, and every bilinear product
  splits it evenly between its two operands (queries and keys 1/4, values 1/2; AttnLRP eq. 7).

Linear layers need no rule: their gradient x input is LRP-epsilon with epsilon -> 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RULES = ("cp", "attnlrp")
"""The relevance rules a module's ``lrp`` attribute may hold (None: the ordinary graph)."""


class AttentionProbe(nn.Identity):
    """Identity on the attention probabilities: the one place hooks attach to.

    Only the explicit path calls it, so a forward hook here sees the map of
    shape (batch * groups, heads, queries, keys).
    """


class _GradientScale(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``factor`` (AttnLRP's uniform rule)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, factor: float) -> torch.Tensor:
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.factor, None


class _IdentityRule(torch.autograd.Function):
    """``fn(x)`` forward; backward ``grad * fn(x) / x``: relevance passes an element-wise non-linearity
    in proportion, so ``x * grad_in = fn(x) * grad_out`` (AttnLRP eq. 9, gradient x input form)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn) -> torch.Tensor:
        out = fn(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, out = ctx.saved_tensors
        # fn(x) / x with its limit where x is 0 (GELU: 1/2); x is never near 0 in float where it matters
        ratio = torch.where(x.abs() > 1e-12, out / torch.where(x == 0, torch.ones_like(x), x), 0.5)
        return grad * ratio, None


def self_subtract(x: torch.Tensor) -> torch.Tensor:
    """ISTVT's self-subtract along time, for input (..., T+1, D) with row 0 the class row.

    Rows 0 and 1 (class row, first frame) stay; each later frame becomes its
    difference to the previous one, so queries and keys see motion, not appearance.
    """
    if x.shape[-2] < 3:
        return x
    return torch.cat([x[..., :2, :], x[..., 2:, :] - x[..., 1:-1, :]], dim=-2)


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` (same parameters and state dict) whose scale is a constant under a relevance rule."""

    lrp: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.lrp:
            return super().forward(x)
        centred = x - x.mean(dim=-1, keepdim=True)
        std = (centred.pow(2).mean(dim=-1, keepdim=True) + self.eps).sqrt()
        y = centred / std.detach()
        if self.weight is not None:
            y = y * self.weight
        return y + self.bias if self.bias is not None else y


class GELU(nn.GELU):
    """``nn.GELU`` that passes relevance by the identity rule under a relevance rule."""

    lrp: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _IdentityRule.apply(x, super().forward) if self.lrp else super().forward(x)


class _MultiHeadAttention(nn.Module):
    """Shared machinery: head split, fused or explicit attention, output projection."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.heads = heads
        self.dim_head = dim_head
        self.scale = dim_head ** -0.5
        inner = heads * dim_head
        self.to_out = nn.Linear(inner, dim, **factory)
        self.out_drop = nn.Dropout(dropout)
        self.attn_drop_p = dropout
        self.probe = AttentionProbe()
        # Off only while an explanation captures maps; see capture.AttentionCapture.
        self.fused_attn = True
        # A relevance rule while an LRP explanation runs (``RULES``); see the module doc.
        self.lrp: str | None = None

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(G, N, inner) q, k, v -> (G, N, dim) after the output projection."""
        g, n, _ = q.shape
        if self.lrp == "cp":  # the attention weights are constants: relevance flows through the values only
            q, k = q.detach(), k.detach()
        elif self.lrp == "attnlrp":  # uniform rule on q.k (then softmax rule by autograd) and on A.v
            q, k, v = _GradientScale.apply(q, 0.25), _GradientScale.apply(k, 0.25), _GradientScale.apply(v, 0.5)
        q, k, v = self._split(q), self._split(k), self._split(v)
        drop = self.attn_drop_p if self.training else 0.0
        if self.lrp and drop:
            raise ValueError("relevance rules explain a model in eval mode (dropout off)")
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=self.scale)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn.softmax(dim=-1)
            attn = self.probe(attn)
            if drop:
                attn = F.dropout(attn, drop)
            out = attn @ v
        out = out.transpose(1, 2).reshape(g, n, self.heads * self.dim_head)
        return self.out_drop(self.to_out(out))


class TemporalAttention(_MultiHeadAttention):
    """Attention along time for every spatial position, with self-subtract on q and k."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__(dim, heads, dim_head, dropout, device=device, dtype=dtype)
        inner = heads * dim_head
        self.to_qk = nn.Linear(dim, 2 * inner, bias=False, device=device, dtype=dtype)
        self.to_v = nn.Linear(dim, inner, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, rows, cols, d = x.shape
        seq = x.permute(0, 2, 1, 3).reshape(b * cols, rows, d)  # one sequence per position
        q, k = self.to_qk(self_subtract(seq)).chunk(2, dim=-1)
        v = self.to_v(seq)
        out = self._attend(q, k, v)
        return out.view(b, cols, rows, -1).permute(0, 2, 1, 3)


class SpatialAttention(_MultiHeadAttention):
    """Attention over the tokens of each time row (class row included)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__(dim, heads, dim_head, dropout, device=device, dtype=dtype)
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, rows, cols, d = x.shape
        seq = x.reshape(b * rows, cols, d)
        q, k, v = self.to_qkv(seq).chunk(3, dim=-1)
        out = self._attend(q, k, v)
        return out.view(b, rows, cols, -1)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm = LayerNorm(dim, **factory)
        self.fc1 = nn.Linear(dim, hidden, **factory)
        self.act = GELU()
        self.fc2 = nn.Linear(hidden, dim, **factory)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))


class ISTVTBlock(nn.Module):
    """``x = attn_s(LN(attn_t(LN(x)))) + x; x = mlp(x) + x``: one residual around both attentions."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm_t = LayerNorm(dim, **factory)
        self.attn_t = TemporalAttention(dim, heads, dim_head, dropout, **factory)
        self.norm_s = LayerNorm(dim, **factory)
        self.attn_s = SpatialAttention(dim, heads, dim_head, dropout, **factory)
        self.mlp = FeedForward(dim, mlp_dim, dropout, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attn_s(self.norm_s(self.attn_t(self.norm_t(x)))) + x
        return self.mlp(x) + x
