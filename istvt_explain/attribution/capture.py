"""Hooks that read ISTVT's attention maps (and their gradients), always released.

The model runs its fused attention kernel unless a capture is active: inside
``with AttentionCapture(model)`` every attention module takes its explicit
path, whose probabilities pass an ``AttentionProbe`` we hook.  Maps and
gradients are keyed by (layer, kind), never by list position: gradients
arrive in reverse order.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..models.precision import upcast

AttentionKey = tuple[int, str]  # (layer index, "temporal" | "spatial")


class AttentionCapture:
    """Context manager holding every hook handle; ``__exit__`` removes them all.

    Shapes, for B clips, T frames, N + 1 tokens per frame and H heads:
      temporal maps: (B, N+1, H, T+1, T+1)  one map per spatial position
      spatial maps:  (B, T+1, H, N+1, N+1)  one map per time row

    Args:
        model: an ``ISTVT``.
        gradients: also keep d(output)/d(map) when ``backward`` runs.
        layers: capture only these layer indices (default: all).
        detach: store maps detached from the graph (default).  LRP-style
            methods that differentiate through the stored maps pass False.
    """

    def __init__(self, model: nn.Module, gradients: bool = False, layers: Iterable[int] | None = None,
                 detach: bool = True) -> None:
        self.model = model
        self.gradients = gradients
        self.detach = detach
        self.layers = None if layers is None else set(layers)
        self.maps: dict[AttentionKey, torch.Tensor] = {}
        self.grads: dict[AttentionKey, torch.Tensor] = {}
        self._handles: list[RemovableHandle] = []
        self._fused: dict[nn.Module, bool] = {}
        self._batch: int | None = None

    # -- context ---------------------------------------------------------------------------------
    def __enter__(self) -> AttentionCapture:
        try:
            for layer, kind, module in self.model.attention_modules():
                if self.layers is not None and layer not in self.layers:
                    continue
                self._fused[module] = module.fused_attn
                module.fused_attn = False
                # The batch is read at every attention module (not only at model(...)), so a
                # forward that starts at the token grid (model.forward_blocks) is captured too.
                self._handles.append(module.register_forward_pre_hook(self._on_attention_input))
                self._handles.append(module.probe.register_forward_hook(self._make_hook((layer, kind))))
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Remove every hook and restore the fused attention path."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module, fused in self._fused.items():
            module.fused_attn = fused
        self._fused.clear()

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def clear(self) -> None:
        self.maps.clear()
        self.grads.clear()

    # -- hooks -----------------------------------------------------------------------------------
    def _on_attention_input(self, _module: nn.Module, args: tuple) -> None:
        self._batch = args[0].shape[0]  # the token grid (B, T+1, N+1, D)

    def _make_hook(self, key: AttentionKey):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            self.maps[key] = output.detach() if self.detach else output
            if self.gradients and output.requires_grad:
                output.register_hook(lambda grad: self._store_grad(key, grad))
        return hook

    def _store_grad(self, key: AttentionKey, grad: torch.Tensor) -> None:
        self.grads[key] = grad.detach()

    # -- read-out --------------------------------------------------------------------------------
    def _grid(self, key: AttentionKey, tensor: torch.Tensor) -> torch.Tensor:
        """(groups * B?, H, n, n) -> the documented grid shape, the batch first."""
        if self._batch is None:
            raise RuntimeError("no forward pass ran inside this capture")
        groups, heads, n, _ = tensor.shape
        # float32 whatever the model ran in: the methods multiply these over a dozen blocks
        return upcast(tensor).view(self._batch, groups // self._batch, heads, n, n)

    def to_grid(self, tensor: torch.Tensor) -> torch.Tensor:
        """Any (groups * B, H, n, n) tensor of the last forward (a map, its gradient, its relevance)
        -> the documented grid shape."""
        return self._grid(None, tensor)

    def attention(self, layer: int, kind: str) -> torch.Tensor:
        """The captured map of one module, in grid shape (see the class docstring)."""
        key = (layer, kind)
        if key not in self.maps:
            raise KeyError(f"no {kind} attention captured for layer {layer}")
        return self._grid(key, self.maps[key])

    def gradient(self, layer: int, kind: str) -> torch.Tensor:
        """The gradient of the backpropagated output w.r.t. one captured map, in grid shape."""
        key = (layer, kind)
        if key not in self.grads:
            raise KeyError(f"no gradient captured for {kind} attention of layer {layer}; "
                           "use gradients=True and call backward() inside the capture")
        return self._grid(key, self.grads[key])

    def layers_captured(self) -> list[int]:
        return sorted({layer for layer, _ in self.maps})
