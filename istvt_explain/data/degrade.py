"""Quality degradations for training clips, drawn once per real/fake pair.

A detector trained on clean fakes and clean reals learns that *quality* tells them apart: a soft,
downscaled or re-encoded face reads as manipulated.  Here every degradation is drawn once for a
pair and applied to its real clip and to its self-blended fake alike, with the same probability
and the same strength, so quality carries no information about the label and only the blend does.

The list follows what real footage goes through between a camera and an analyst: colour
processing, a small face (downscaling, from about 48 px of face up to full size), optics and
motion blur, sensor noise, JPEG or H.264 at CRF 23 to 40, and black-and-white footage.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import cv2
import numpy as np

from .codecs import h264_roundtrip, jpeg_roundtrip

FACE_FRACTION = 0.8  # a face box covers about 1 / 1.25 of a crop's side (the 1.25x margin)


@dataclass(frozen=True)
class DegradeOptions:
    """Probability of each degradation (each drawn independently) and its strength range.

    The rates leave most pairs with a visible blend: at twice these rates (a codec on 45 % of pairs,
    downscaling on 30 %) a model trained from scratch on a CPU for an hour stayed at chance.
    """

    PROBABILITIES = ("colour", "downscale", "blur", "noise", "grey", "jpeg", "h264")

    colour: float = 0.5
    downscale: float = 0.2
    min_face_px: int = 48
    blur: float = 0.15
    blur_sigma: tuple[float, float] = (0.4, 1.8)
    noise: float = 0.15
    noise_sigma: tuple[float, float] = (1.0, 8.0)
    grey: float = 0.05
    jpeg: float = 0.15
    jpeg_quality: tuple[int, int] = (30, 95)
    h264: float = 0.15
    h264_crf: tuple[int, int] = (23, 40)


def degrade_options(changes: dict[str, Any]) -> DegradeOptions:
    """``DegradeOptions`` with the fields named in ``changes`` (a config's ``data.degrade``) replaced.

    Rates must lie in [0, 1] and ranges are two increasing numbers; anything else is a ValueError.
    """
    base = DegradeOptions()
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in {f.name for f in fields(DegradeOptions)}:
            raise ValueError(f"unknown degradation {key!r} (known: {', '.join(f.name for f in fields(base))})")
        default = getattr(base, key)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != 2 or not value[0] <= value[1]:
                raise ValueError(f"{key} must be a range [low, high] with low <= high, got {value!r}")
            value = tuple(type(default[0])(v) for v in value)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number, got {value!r}")
            value = type(default)(value)
            if key in DegradeOptions.PROBABILITIES and not 0 <= value <= 1:
                raise ValueError(f"{key} is a probability and must lie in [0, 1], got {value}")
        values[key] = value
    return replace(base, **values)


def ramped(options: DegradeOptions, fraction: float) -> DegradeOptions:
    """``options`` with every probability scaled by ``fraction`` in [0, 1] (a curriculum: clean first)."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    return replace(options, **{k: getattr(options, k) * fraction for k in DegradeOptions.PROBABILITIES})


def degrade_clip(frames: np.ndarray, rng: np.random.Generator, *, grey: bool = False,
                 options: DegradeOptions | None = None) -> np.ndarray:
    """uint8 (T, S, S, 3) -> the same clip degraded by a random draw of ``options`` (one draw per clip).

    Pass the same ``rng`` state for a real clip and its fake: the draws are then identical.
    ``grey`` marks a clip whose source is black and white, so that colour steps keep it grey.
    """
    o = options or DegradeOptions()
    # Draw every decision first, in a fixed order, so that the draws do not depend on the content.
    d = {
        "colour": rng.random() < o.colour,
        "contrast": rng.uniform(0.7, 1.3), "bright": rng.uniform(-30, 30), "sat": rng.uniform(0.6, 1.4),
        "gains": rng.uniform(0.92, 1.08, size=3), "gamma": rng.uniform(0.75, 1.35),
        "downscale": rng.random() < o.downscale, "down_u": rng.random(),
        "blur": rng.random() < o.blur, "sigma": rng.uniform(*o.blur_sigma),
        "noise": rng.random() < o.noise, "noise_sigma": rng.uniform(*o.noise_sigma),
        "noise_seed": int(rng.integers(2**31)),
        "grey": rng.random() < o.grey,
        "codec": rng.random(), "quality": int(rng.integers(o.jpeg_quality[0], o.jpeg_quality[1] + 1)),
        "crf": int(rng.integers(o.h264_crf[0], o.h264_crf[1] + 1)),
    }
    clip = frames.astype(np.float32)
    if d["colour"]:
        clip = (clip - 127.5) * d["contrast"] + 127.5 + d["bright"]
        if not grey:
            lum = clip.mean(axis=-1, keepdims=True)
            clip = lum + (clip - lum) * d["sat"]
            clip = clip * d["gains"].astype(np.float32)
        clip = 255.0 * (np.clip(clip, 0, 255) / 255.0) ** d["gamma"]
    size = frames.shape[1]
    if d["downscale"]:
        # Face side drawn log-uniformly between min_face_px and the face's side at full size.
        full_face = size * FACE_FRACTION
        if full_face > o.min_face_px:
            face = o.min_face_px * (full_face / o.min_face_px) ** d["down_u"]
            small = max(8, int(round(face / FACE_FRACTION)))
            clip = np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA),
                                        (size, size), interpolation=cv2.INTER_LINEAR) for f in clip])
    if d["blur"]:
        clip = np.stack([cv2.GaussianBlur(f, (0, 0), d["sigma"]) for f in clip])
    if d["noise"]:
        noise = np.random.default_rng(d["noise_seed"]).normal(0, d["noise_sigma"], size=clip.shape)
        clip = clip + noise.astype(np.float32)
    out = np.clip(clip, 0, 255).round().astype(np.uint8)
    if grey or d["grey"]:
        out = np.repeat(out.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
    if d["codec"] < o.h264:
        out = h264_roundtrip(out, d["crf"])
    elif d["codec"] < o.h264 + o.jpeg:
        out = np.stack([jpeg_roundtrip(f, d["quality"]) for f in out])
    return out
