"""The ISTVT model family (Zhao et al., IEEE TIFS 2023): blocks live in layers.py, presets in presets.py."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

import torch
from torch import nn

from .backbone import XceptionEntryFlow, load_xception_weights
from .checkpoint_file import Shape, is_safetensors, read_header, stored_config
from .config import BACKBONE_CHANNELS, ISTVTConfig
from .layers import ISTVTBlock, LayerNorm, SpatialAttention, TemporalAttention
from .limits import MAX_PARAMETERS, check_temperature
from .presets import preset_config
from .weights import CheckpointError, check_checkpoint_fits, load_checkpoint

ATTENTION_KINDS = ("temporal", "spatial")


class ISTVT(nn.Module):
    """Xception entry-flow tokens on a (T+1) x (N+1) grid, factorised space-time attention, one logit.

    Input: clips (B, T, 3, H, W), normalised as Xception expects ((x/255 - 0.5) / 0.5).
    Output: (B,) fake logits when ``num_classes == 1``, else (B, num_classes).

    The head divides its logits by a temperature ``T > 0`` (the ``temperature``
    buffer, 1 unless a calibrated checkpoint set it; see docs/calibration.md), so
    ``sigmoid(model(clips))`` is the calibrated fake probability wherever it is
    computed.  The buffer is non-persistent: ``state_dict`` keys are unchanged
    and the checkpoint stores T in its metadata instead.
    """

    def __init__(self, config: ISTVTConfig, device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.config = config
        dim = config.embed_dim
        self.backbone = XceptionEntryFlow().to(**{k: v for k, v in factory.items() if v is not None})
        self.proj = nn.Linear(BACKBONE_CHANNELS, dim, **factory) if config.projects_features else nn.Identity()
        self.spatial_cls = nn.Parameter(torch.zeros(1, 1, 1, dim, **factory))
        self.temporal_cls = nn.Parameter(torch.zeros(1, 1, 1, dim, **factory))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.frames, config.tokens_per_frame, dim, **factory))
        self.blocks = nn.ModuleList(
            ISTVTBlock(dim, config.heads, config.dim_head, config.mlp_dim, config.dropout, **factory)
            for _ in range(config.depth)
        )
        self.norm = LayerNorm(dim, **factory)
        self.head = nn.Sequential(LayerNorm(dim, **factory), nn.Linear(dim, config.num_classes, **factory))
        # Calibration temperature: forward_head returns logits / T (set_temperature; 1 = uncalibrated).
        self.register_buffer("temperature", torch.ones((), device=device), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for p in (self.spatial_cls, self.temporal_cls, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        for name, module in self.named_modules():
            if name.startswith("backbone"):
                continue
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    # -- forward ---------------------------------------------------------------------------------
    def check_clips(self, clips: torch.Tensor) -> None:
        """Raise ValueError unless ``clips`` is (B, T, 3, H, W) as this model's config says."""
        c = self.config
        if clips.dim() != 5:
            raise ValueError(f"clips must be (B, T, 3, H, W), got shape {tuple(clips.shape)}")
        _, t, ch, h, w = clips.shape
        if t != c.frames:
            raise ValueError(f"model expects {c.frames} frames per clip, got {t}")
        if ch != 3:
            raise ValueError(f"clips must have 3 colour channels, got {ch}")
        if (h, w) != (c.image_size, c.image_size):
            raise ValueError(f"model expects {c.image_size} x {c.image_size} crops, got {h} x {w}")

    def embed(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips -> token grid (B, T+1, N+1, D) with class tokens and positional embedding."""
        self.check_clips(clips)
        b, t = clips.shape[:2]
        tokens = self.frame_tokens(clips.flatten(0, 1))
        return self.token_grid(tokens.reshape(b, t, *tokens.shape[1:]))

    def frame_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (P, 3, H, W) -> their projected patch tokens (P, N, D).

        Each frame is embedded on its own (in eval mode), so a caller that scores many clips built from
        the same frames (the judge's frame removals) embeds each distinct frame once.
        """
        feats = self.backbone(frames)  # (P, 728, g, g)
        return self.proj(feats.flatten(2).transpose(1, 2))

    def token_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, T, N, D) -> token grid (B, T+1, N+1, D): class tokens and positions added."""
        b, t = tokens.shape[:2]
        dim = tokens.shape[-1]
        x = torch.cat([self.spatial_cls.expand(b, t, 1, dim), tokens], dim=2) + self.pos_embed
        return torch.cat([self.temporal_cls.expand(b, 1, x.shape[2], dim), x], dim=1)

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        return self.forward_blocks(self.embed(clips))

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """Token grid (B, T+1, N+1, D) from ``embed`` -> normalised tokens after every block.

        Split from ``forward_features`` so explanations can start the graph at
        the token grid (the entry flow then needs no autograd record).
        """
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class token -> calibrated logits: the head's output divided by ``temperature``."""
        logits = self.head(tokens[:, 0, 0]) / self.temperature
        return logits.squeeze(-1) if self.config.num_classes == 1 else logits

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(clips))

    # -- calibration -----------------------------------------------------------------------------
    def set_temperature(self, t: float) -> None:
        """Set the calibration temperature (inside ``limits.TEMPERATURE_RANGE``, 0.05..20); 1 gives the raw,
        uncalibrated logits.  Why bounded: 1e-300 would become 0 in float32 and every probability 0 or 1."""
        try:
            value = float(t)
        except (TypeError, ValueError):
            raise ValueError(f"temperature must be a number, got {t!r}") from None
        self.temperature.fill_(check_temperature(value))

    def get_temperature(self) -> float:
        """The calibration temperature as a Python float."""
        return float(self.temperature.item())

    # -- introspection ---------------------------------------------------------------------------
    def attention_modules(self) -> Iterator[tuple[int, str, TemporalAttention | SpatialAttention]]:
        """(layer index, "temporal"|"spatial", module) for every attention module, in forward order."""
        for layer, block in enumerate(self.blocks):
            yield layer, "temporal", block.attn_t
            yield layer, "spatial", block.attn_s

    def transformer_parameters(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("backbone."))

    def backbone_parameters(self) -> int:
        return sum(p.numel() for p in self.backbone.parameters())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def expected_tensors(config: ISTVTConfig) -> Mapping[str, Shape]:
    """The state dict ``ISTVT(config)`` has, name -> shape, found without allocating it (on torch's "meta"
    device); ``ValueError`` when the model would have more than ``limits.MAX_PARAMETERS`` parameters."""
    return _expected_tensors(config)


@functools.lru_cache(maxsize=16)
def _expected_tensors(config: ISTVTConfig) -> Mapping[str, Shape]:
    with torch.device("meta"):
        model = ISTVT(config)
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMETERS:
        raise ValueError(f"model config {config.name!r} would build {count:,} parameters, more than the "
                         f"{MAX_PARAMETERS:,} allowed")
    return MappingProxyType({k: tuple(v.shape) for k, v in model.state_dict().items()})


def create_model(
    name: str = "paper",
    *,
    weights: str | Path | None = None,
    backbone_weights: str | Path | None = None,
    device: str | torch.device | None = None,
    **overrides,
) -> ISTVT:
    """Build a preset ("paper", "small", "tiny") with optional config overrides.

    ``weights`` loads an istvt-explain checkpoint (refused when it was made for
    another configuration); ``backbone_weights`` loads ImageNet Xception weights
    (timm ``legacy_xception`` or FaceForensics++ ``xception-b5690688.pth``) into
    the entry flow.  Both are local paths: nothing is ever downloaded.  The config's
    size and the checkpoint's header are checked before the model is built.
    """
    config = preset_config(name, **overrides)
    expected = expected_tensors(config)
    if weights is not None:
        check_checkpoint_fits(weights, config, expected)
    model = ISTVT(config)
    if backbone_weights is not None:
        load_xception_weights(model.backbone, backbone_weights)
    if weights is not None:
        load_checkpoint(model, weights)
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_model(path: str | Path, device: str | torch.device | None = None) -> ISTVT:
    """Build the model a checkpoint describes and load it (our safetensors checkpoints only).

    Its header (size, config, temperature, every tensor's name and shape) is checked before the
    model is built or a tensor read: a crafted file costs milliseconds, not gigabytes.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weight file")
    config = stored_config(read_header(path)) if is_safetensors(path) else None
    if config is None:
        raise CheckpointError(f"{path}: not an istvt-explain checkpoint (no model config stored in it)")
    try:
        expected = expected_tensors(config)
    except ValueError as err:
        raise CheckpointError(f"{path}: checkpoint config is invalid ({err})") from None
    check_checkpoint_fits(path, config, expected)
    model = ISTVT(config)
    load_checkpoint(model, path)
    if device is not None:
        model = model.to(device)
    return model.eval()
