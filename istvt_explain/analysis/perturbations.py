"""Everyday degradations of a face clip, each at several strengths.

A detector that flips its answer under a little JPEG compression, or an
explanation that moves when the brightness changes, tells the researcher more
about the model than its accuracy does.  Every perturbation works on the
uint8 clip (T, H, W, 3) the data stage produces, before normalisation, so it is
the same degradation a re-encoded video would carry.

Each perturbation also returns ``source``: for every output frame, the index of
the input frame it shows.  Frame drops and shuffles move content in time; the
stability measure compares the maps of the same content (see ``sensitivity``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PerturbFn = Callable[[np.ndarray, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Perturbation:
    """A named degradation and the strengths it is studied at (weakest first).

    Attributes:
        name: registry key ("jpeg", "blur", ...).
        label: readable name for legends and tables.
        unit: what ``strength`` means, for axis labels.
        strengths: default strengths, weakest first.
        apply: ``apply(frames, strength, rng) -> (perturbed frames, source frame indices)``.
    """

    name: str
    label: str
    unit: str
    strengths: tuple[float, ...]
    apply: PerturbFn

    def __call__(self, frames: np.ndarray, strength: float,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        _check_frames(frames)
        rng = rng if rng is not None else np.random.default_rng(0)
        out, source = self.apply(frames, float(strength), rng)
        return np.ascontiguousarray(out, dtype=np.uint8), np.asarray(source, dtype=np.int64)


def _check_frames(frames: np.ndarray) -> None:
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")


def _same_order(frames: np.ndarray) -> np.ndarray:
    return np.arange(frames.shape[0])


def _per_frame(fn: Callable[[np.ndarray, float], np.ndarray]) -> PerturbFn:
    """Lift a frame-wise RGB operation to a clip perturbation that keeps the frame order."""
    def apply(frames: np.ndarray, strength: float, _rng: np.random.Generator):
        return np.stack([fn(f, strength) for f in frames]), _same_order(frames)
    return apply


def _jpeg(frame: np.ndarray, quality: float) -> np.ndarray:
    from ..data.codecs import jpeg_roundtrip  # OpenCV and PyAV: loaded when a clip is perturbed

    return jpeg_roundtrip(frame, quality)


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _downscale(frame: np.ndarray, factor: float) -> np.ndarray:
    """Down to ``factor`` of the size and back up: the detail a low-resolution source lost."""
    import cv2

    h, w = frame.shape[:2]
    small = cv2.resize(frame, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _brightness(frame: np.ndarray, offset: float) -> np.ndarray:
    return np.clip(frame.astype(np.float32) + offset, 0, 255).round().astype(np.uint8)


def _contrast(frame: np.ndarray, factor: float) -> np.ndarray:
    """Scale around the frame's mean grey: 1 keeps the frame, 0 leaves a flat image."""
    f = frame.astype(np.float32)
    return np.clip((f - f.mean()) * factor + f.mean(), 0, 255).round().astype(np.uint8)


def _noise(frames: np.ndarray, std: float, rng: np.random.Generator):
    noisy = frames.astype(np.float32) + rng.normal(0.0, std, size=frames.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).round().astype(np.uint8), _same_order(frames)


def _drop_frames(frames: np.ndarray, count: float, rng: np.random.Generator):
    """Lose ``count`` frames and repeat the last frame received, as a stalled stream does.

    The first frame is never dropped (nothing precedes it to repeat).
    """
    t = frames.shape[0]
    k = int(min(max(count, 0), t - 1))
    dropped = np.sort(rng.choice(np.arange(1, t), size=k, replace=False)) if k else np.array([], int)
    source = np.arange(t)
    for i in range(1, t):
        if i in dropped:
            source[i] = source[i - 1]
    return frames[source], source


def _shuffle_frames(frames: np.ndarray, count: float, rng: np.random.Generator):
    """Move ``count`` frames: they trade places in a cycle, so every chosen frame really moves."""
    t = frames.shape[0]
    k = int(min(max(count, 0), t))
    source = np.arange(t)
    if k >= 2:
        chosen = rng.choice(t, size=k, replace=False)
        source[chosen] = np.roll(chosen, 1)
    return frames[source], source


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("jpeg", "JPEG compression", "quality", (90, 50, 25, 10), _per_frame(_jpeg)),
    Perturbation("blur", "Gaussian blur", "sigma (px)", (0.5, 1.0, 2.0, 4.0), _per_frame(_blur)),
    Perturbation("noise", "Gaussian noise", "std (grey levels)", (2, 5, 10, 20), _noise),
    Perturbation("downscale", "Downscaling", "scale", (0.75, 0.5, 0.35, 0.25), _per_frame(_downscale)),
    Perturbation("brightness", "Brightness", "offset (grey levels)", (10, 20, 40, 60), _per_frame(_brightness)),
    Perturbation("contrast", "Contrast", "factor", (0.9, 0.75, 0.5, 0.25), _per_frame(_contrast)),
    Perturbation("drop_frames", "Dropped frames", "frames dropped", (1, 2, 3), _drop_frames),
    Perturbation("shuffle_frames", "Shuffled frames", "frames moved", (2, 4, 6), _shuffle_frames),
)}


def available_perturbations() -> list[str]:
    return list(PERTURBATIONS)


def get_perturbation(name: str) -> Perturbation:
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose from {', '.join(PERTURBATIONS)}")
    return PERTURBATIONS[name]


def resolve_perturbations(names: Sequence[str] | None) -> list[Perturbation]:
    """The perturbations named (all of them for None), in registry order when all."""
    return [get_perturbation(n) for n in (names if names is not None else PERTURBATIONS)]
