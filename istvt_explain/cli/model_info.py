"""`istvt-explain model-info`: build a preset, report its size, and classify a generated clip."""

from __future__ import annotations

import argparse
import time

from ..models.presets import PRESETS
from .weights import check_weights

HELP = "build a model preset, print its size and classify a generated clip (a smoke test)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny", choices=PRESETS)
    parser.add_argument("--weights", help="an istvt-explain checkpoint (.safetensors) to load")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    check_weights(args.weights)  # before torch: a crafted file is refused at once
    import torch

    from ..models import create_model

    model = create_model(args.preset, weights=args.weights)
    c = model.config
    gen = torch.Generator().manual_seed(args.seed)
    clip = torch.rand(1, c.frames, 3, c.image_size, c.image_size, generator=gen) * 2 - 1
    with torch.inference_mode():
        start = time.perf_counter()
        logit = model(clip)
        elapsed = time.perf_counter() - start
    print(f"preset {c.name}: {c.frames} frames of {c.image_size}x{c.image_size}, "
          f"{c.grid}x{c.grid} tokens (+1 class token) per frame, width {c.embed_dim}, depth {c.depth}, "
          f"{c.heads} heads")
    print(f"parameters: transformer {model.transformer_parameters():,}, "
          f"entry flow {model.backbone_parameters():,}")
    t = model.get_temperature()
    print(f"temperature: {t:.4g}" + (" (uncalibrated)" if t == 1.0 else " (calibrated: p = sigmoid(logit / T))"))
    print(f"generated clip -> fake probability {torch.sigmoid(logit).item():.4f} ({elapsed * 1000:.0f} ms)")
    return 0
