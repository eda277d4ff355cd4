"""Dense reference of the block operator, for tests and the speed benchmark only.

It builds the (T+1)(N+1) x (T+1)(N+1) matrix that ``propagation`` avoids:
at the paper's grid (7 x 362 = 2534 tokens) that is 6.4 M entries per block
and a cubic product.  No explanation method imports this module.
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
