"""Transformer layers of ISTVT: factorised temporal / spatial attention and the MLP.

Tokens live on a (time, space) grid of shape (B, T+1, S, D): row 0 is the
temporal class row, column 0 the spatial class column.  Each attention module
has a fused path (``scaled_dot_product_attention``, which never materialises
the map) and an explicit path that does, and passes the probabilities through
an ``AttentionProbe`` so hooks can read them (see ``istvt_explain.attribution.capture``).

Every module also has an ``lrp`` flag (off by default, like ``fused_attn`` on
by default): when on, the forward output is unchanged but the graph is built
from the relevance rules of ``lrp_rules``, so ``backward`` propagates LRP
relevance instead of gradients (``istvt_explain.attribution`` turns it on and off).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .lrp_rules import MatMulHalves, ResidualAdd, RuleSignal, SelfSubtract, identity_rule, lrp_linear


class AttentionProbe(nn.Identity):
    """Identity on the attention probabilities: the one place hooks attach to.

    Only the explicit path calls it, so a forward hook here sees the map of
    shape (batch * groups, heads, queries, keys).
    """


def self_subtract(x: torch.Tensor) -> torch.Tensor:
    """ISTVT's self-subtract along time, for input (..., T+1, D) with row 0 the class row.

    Rows 0 and 1 (class row, first frame) stay; each later frame becomes its
    difference to the previous one, so queries and keys see motion, not appearance.
    """
    if x.shape[-2] < 3:
        return x
    return torch.cat([x[..., :2, :], x[..., 2:, :] - x[..., 1:-1, :]], dim=-2)


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    return scores.softmax(dim=-1)


class _RelevanceSwitch(nn.Module):
    """A module with an ``lrp`` flag: linear layers and norms switch to their relevance rules."""

    def __init__(self) -> None:
        super().__init__()
        # On only while an LRP explanation runs (then a lrp_rules.RuleSignal); see istvt_explain.attribution.lrp.
        self.lrp: bool | RuleSignal = False

    def _linear(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return lrp_linear(x, layer, self.lrp) if self.lrp else layer(x)

    def _pointwise(self, fn, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm / GELU: identity relevance rule on the LRP path."""
        return identity_rule(x, fn, self.lrp) if self.lrp else fn(x)


class _MultiHeadAttention(_RelevanceSwitch):
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

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.dim_head).transpose(1, 2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """(G, N, inner) q, k, v -> (G, N, dim) after the output projection."""
        g, n, _ = q.shape
        q, k, v = self._split(q), self._split(k), self._split(v)
        drop = self.attn_drop_p if self.training else 0.0
        if self.lrp:
            if drop:
                raise ValueError("the LRP path explains a model in eval mode (dropout off)")
            attn = MatMulHalves.apply(q, k.transpose(-2, -1), self.scale, self.lrp)
            attn = self.probe(identity_rule(attn, _softmax, self.lrp))
            out = MatMulHalves.apply(attn, v, 1.0, self.lrp)
        elif self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=self.scale)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn.softmax(dim=-1)
            attn = self.probe(attn)
            if drop:
                attn = F.dropout(attn, drop)
            out = attn @ v
        out = out.transpose(1, 2).reshape(g, n, self.heads * self.dim_head)
        return self.out_drop(self._linear(self.to_out, out))


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
        moved = SelfSubtract.apply(seq, self.lrp) if self.lrp else self_subtract(seq)
        q, k = self._linear(self.to_qk, moved).chunk(2, dim=-1)
        v = self._linear(self.to_v, seq)
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
        q, k, v = self._linear(self.to_qkv, seq).chunk(3, dim=-1)
        out = self._attend(q, k, v)
        return out.view(b, rows, cols, -1)


class FeedForward(_RelevanceSwitch):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm = nn.LayerNorm(dim, **factory)
        self.fc1 = nn.Linear(dim, hidden, **factory)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim, **factory)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lrp:
            h = self._pointwise(self.act, self._linear(self.fc1, self._pointwise(self.norm, x)))
            return self._linear(self.fc2, h)
        return self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))


class ISTVTBlock(_RelevanceSwitch):
    """``x = attn_s(LN(attn_t(LN(x)))) + x; x = mlp(x) + x``: one residual around both attentions."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float = 0.0,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.norm_t = nn.LayerNorm(dim, **factory)
        self.attn_t = TemporalAttention(dim, heads, dim_head, dropout, **factory)
        self.norm_s = nn.LayerNorm(dim, **factory)
        self.attn_s = SpatialAttention(dim, heads, dim_head, dropout, **factory)
        self.mlp = FeedForward(dim, mlp_dim, dropout, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lrp:
            mixed = self.attn_s(self._pointwise(self.norm_s, self.attn_t(self._pointwise(self.norm_t, x))))
            x = ResidualAdd.apply(mixed, x, self.lrp)
            return ResidualAdd.apply(self.mlp(x), x, self.lrp)
        x = self.attn_s(self.norm_s(self.attn_t(self.norm_t(x)))) + x
        return self.mlp(x) + x
