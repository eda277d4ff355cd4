"""Slow, obvious references of the fast explanation paths, for tests and the speed benchmarks only.

``dense_row`` builds the (T+1)(N+1) x (T+1)(N+1) matrix that ``propagation`` avoids: at the
paper's grid (7 x 362 = 2534 tokens) that is 6.4 M entries per block and a cubic product.
``frozen_gate_relevance`` re-computes the transformer by hand with the gates of conservative
LRP (attention weights, LayerNorm scales, GELU ratios) recorded from an ordinary forward and then
held fixed, and reads every token's relevance as the exact change of the score when that token is
removed (the frozen network is affine, so this is exact).  No explanation method imports this module.
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


def frozen_gate_relevance(model: torch.nn.Module, clips: torch.Tensor, target: int = 1
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token relevance of conservative LRP the slow way, for one clip (B = 1).

    Returns (relevance of every embedded token (T+1, N+1), score of the frozen network at the
    tokens, score of the frozen network with every token zeroed: the biases' share).
    ``target``: 1 explains the fake logit, 0 its negation (the real class of a one-logit head).
    """
    from .capture import AttentionCapture

    model = model.eval()
    with torch.no_grad():
        tokens = model.embed(clips)[0].double()
        gates: dict[str, torch.Tensor] = {}

        def record(name):
            def hook(module, inputs, output):
                x = inputs[0]
                if isinstance(module, torch.nn.LayerNorm):
                    gates[name] = (x.var(dim=-1, unbiased=False, keepdim=True) + module.eps).sqrt().double()
                else:  # GELU: the ratio gelu(x) / x
                    gates[name] = (output / torch.where(x == 0, torch.ones_like(x), x)).double()
            return hook

        handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules()
                   if isinstance(m, (torch.nn.LayerNorm, torch.nn.GELU)) and not n.startswith("backbone")]
        try:
            with AttentionCapture(model) as cap:
                model.forward_head(model.forward_blocks(model.embed(clips)))
                maps = {key: cap.to_grid(m)[0].double() for key, m in cap.maps.items()}
        finally:
            for h in handles:
                h.remove()

    def norm(name: str, module: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=-1, keepdim=True)
        return centred / gates[name].reshape(centred.shape[:-1] + (1,)) * module.weight.double() \
            + module.bias.double()

    def linear(module: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        out = x @ module.weight.double().T
        return out + module.bias.double() if module.bias is not None else out

    def heads(module, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[:-1], module.heads, module.dim_head)

    def score(grid: torch.Tensor) -> torch.Tensor:
        x = grid
        for i, block in enumerate(model.blocks):
            h = norm(f"blocks.{i}.norm_t", block.norm_t, x)
            v = heads(block.attn_t, h @ block.attn_t.to_v.weight.double().T)  # (T+1, N+1, H, d)
            at = maps[(i, "temporal")]  # (N+1, H, T+1, T+1): per position, rows attend to rows
            mixed = torch.einsum("shtu,ushd->tshd", at, v).reshape(*x.shape[:-1], -1)
            h = linear(block.attn_t.to_out, mixed)
            h = norm(f"blocks.{i}.norm_s", block.norm_s, h)
            qkv_v = (h @ block.attn_s.to_qkv.weight.double().T).chunk(3, dim=-1)[2]
            v = heads(block.attn_s, qkv_v)  # (T+1, N+1, H, d)
            as_ = maps[(i, "spatial")]  # (T+1, H, N+1, N+1): per row, tokens attend to tokens
            mixed = torch.einsum("thsk,tkhd->tshd", as_, v).reshape(*x.shape[:-1], -1)
            x = linear(block.attn_s.to_out, mixed) + x
            h = norm(f"blocks.{i}.mlp.norm", block.mlp.norm, x)
            h = linear(block.mlp.fc1, h)
            h = h * gates[f"blocks.{i}.mlp.act"].reshape(h.shape)
            x = linear(block.mlp.fc2, h) + x
        x = norm("norm", model.norm, x)
        cls = norm("head.0", model.head[0], x[0, 0])
        logit = linear(model.head[1], cls).reshape(())
        return logit if target == 1 else -logit

    full = score(tokens)
    relevance = torch.empty(tokens.shape[:2], dtype=torch.float64)
    for t in range(tokens.shape[0]):
        for s in range(tokens.shape[1]):
            without = tokens.clone()
            without[t, s] = 0
            relevance[t, s] = full - score(without)
    return relevance, full, score(torch.zeros_like(tokens))
