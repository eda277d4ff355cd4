"""Small pieces every analysis shares: model input from uint8 clips, batched explanations, rank correlation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata

from ..attribution.batching import ExplainFn, explain_batches
from ..attribution.explanation import Explanation
from ..models.device import model_device


def model_input(clips: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 clips (K, T, H, W, 3) -> the normalised float tensor (K, T, 3, H, W) the model reads."""
    from ..data.clips import normalize_clip

    clips = np.asarray(clips)
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[-1] != 3:
        raise ValueError(f"clips must be uint8 (K, T, H, W, 3), got {clips.dtype} {tuple(clips.shape)}")
    x = normalize_clip(clips)
    x = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    return x.to(device=device, dtype=torch.float32) if device is not None else x.float()


def explain_batched(model: torch.nn.Module, clips: np.ndarray, method: str, *,
                    batch_size: int = 4, explain_fn: ExplainFn | None = None,
                    options: dict[str, Any] | None = None) -> list[Explanation]:
    """One explanation (B = 1, on the CPU) per uint8 clip (K, T, H, W, 3), ``batch_size`` clips at a time.

    The batching is ``explain_batches``'; analyses keep one explanation per clip because they pick
    clips apart (a gallery, a perturbed copy against its original).
    """
    if len(clips) == 0:
        return []
    device = model_device(model)
    joined = explain_batches(model, clips, method, batch_size=batch_size, explain_fn=explain_fn,
                             to_input=lambda batch: model_input(batch, device), **(options or {}))
    return [joined.select(i) for i in range(joined.batch_size)]


@torch.no_grad()
def fake_probabilities(model: torch.nn.Module, clips: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """(K,) sigmoid of the fake logit for uint8 clips (K, T, H, W, 3)."""
    device = model_device(model)
    probs = []
    for start in range(0, len(clips), batch_size):
        logits = model(model_input(clips[start:start + batch_size], device))
        if logits.dim() == 2:  # multi-class head: probability of class 1 ("fake")
            probs.append(torch.softmax(logits, dim=-1)[:, 1].float().cpu())
        else:
            probs.append(torch.sigmoid(logits).float().cpu())
    return torch.cat(probs).numpy() if probs else np.zeros(0)


def spearman(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Spearman rank correlation of two maps of the same size; NaN when either is constant.

    Ranks, not values: explanation methods differ in scale, and a perturbation
    that rescales a map without reordering it has not changed what it points at.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps differ in size: {x.size} vs {y.size}")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    return float((rx @ ry) / np.sqrt((rx @ rx) * (ry @ ry)))


def as_uint8_clips(clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Stack a sequence of uint8 (T, H, W, 3) clips, checking the type (floats are a common slip)."""
    arr = np.stack(list(clips)) if not isinstance(clips, np.ndarray) else clips
    if arr.dtype != np.uint8 or arr.ndim != 5:
        raise ValueError(f"expected uint8 clips (K, T, H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    return arr


def load_analysis_model(weights: str | None = None, device: str | torch.device | None = None) -> torch.nn.Module:
    """``weights`` when given; else the demo weights; else (a checkout without them) a seeded random tiny model.

    The last case says so on stderr: figures of a random model show the machinery, not a detector.  The
    model is readied for inference (channels-last convolutions on a CPU: about twice as fast, the same
    answers to float rounding).
    """
    from ..models.inference import optimize_for_inference

    return optimize_for_inference(_analysis_model(weights, device))


def _analysis_model(weights: str | None, device: str | torch.device | None) -> torch.nn.Module:
    import sys

    from ..errors import InputError
    from ..models import create_model, load_model
    from ..models.pretrained import DEMO_WEIGHTS, load_demo_model

    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise InputError(f"unknown torch device {device!r} (cpu, cuda, cuda:1, mps...)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device {device} asked for, but this torch sees no CUDA GPU")
    if weights:
        return load_model(weights, device=device)
    if DEMO_WEIGHTS.is_file():
        return load_demo_model(device=device)
    print(f"istvt-explain: warning: {DEMO_WEIGHTS.name} is missing; using a random tiny model (seed 0)",
          file=sys.stderr)
    torch.manual_seed(0)
    return create_model("tiny", device=device)
