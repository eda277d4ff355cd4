"""Pseudo-fake clips: self-blended images (Shiohara & Yamasaki, CVPR 2022) made temporal.

A face is blended with a colour-, frequency- and geometry-jittered copy of itself through a soft
face mask.  The result carries the traces of a face swap (a blending boundary, a colour mismatch, a
slight misalignment) with no second identity, so identity is never a cue, and the blend mask is the
ground truth of where the "manipulation" is.  For a clip, the jitter is drawn once, so the clip stays
temporally plausible (no flicker a detector could cheat on).

Two recipes share the face region and the mask's soft edge:

- ``make_pseudofake_clip``: SBI's own ranges, an elliptical mask, and a jitter that drifts slowly
  from the first frame to the last.  The demo video, the judging sets and pseudo-fakes of a cached
  data set use it.
- ``self_blend_clip``: the training recipe of the demo weights: a randomly deformed face hull, colour
  mismatches from barely visible to plain, a frequency mismatch (blurred, sharpened or resampled
  copy) and a misalignment, the same on every frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from ..errors import InputError

BlendFn = Callable[..., tuple[np.ndarray, np.ndarray]]
"""``blend(frames, rng, *, face_fraction, keypoints) -> (fake uint8 (T, S, S, 3), masks float32 (T, S, S))``."""

FACE_FRACTION = 0.8
"""The face box's side as a fraction of a run-time crop's side (the crop's margin is 1.25)."""


# -- the face region and the mask's edge (both recipes) -----------------------------------------------
def face_ellipse(size: int, keypoints: np.ndarray | None = None,
                 face_fraction: float = FACE_FRACTION) -> tuple[float, float, float, float, float]:
    """Face ellipse (cx, cy, semi-axis x, semi-axis y, angle in degrees) in crop pixels.

    From the 5 MTCNN keypoints when they are known: width about twice the eye distance, from
    the brow (0.6 eye-mouth distances above the eyes) to the chin (0.9 below the mouth), tilted
    with the eye line.  Otherwise the face box that a crop of ``face_fraction`` implies.
    """
    if keypoints is not None and np.isfinite(keypoints).all():
        left_eye, right_eye, _, mouth_l, mouth_r = np.asarray(keypoints, np.float64)
        eyes, mouth = (left_eye + right_eye) / 2, (mouth_l + mouth_r) / 2
        eye_dist = float(np.hypot(*(right_eye - left_eye)))
        eye_mouth = float(np.hypot(*(mouth - eyes)))
        if eye_dist > 2 and eye_mouth > 2:
            down = (mouth - eyes) / eye_mouth
            centre = (eyes + mouth) / 2 + 0.15 * eye_mouth * down
            angle = float(np.degrees(np.arctan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])))
            return centre[0], centre[1], 1.05 * eye_dist, 1.25 * eye_mouth, angle
    scale = size * face_fraction / FACE_FRACTION
    return size / 2, size / 2 + 0.02 * scale, 0.33 * scale, 0.40 * scale, 0.0


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blur a hard mask, then re-stretch it so its core stays 1 and its edge fades out: the blending
    boundary.  The Gaussian's far tail (below one grey level) is cut to 0, so the mask changes no
    pixel there."""
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    peak = float(mask.max())
    mask = np.clip(mask / peak, 0, 1) if peak > 0 else mask
    mask[mask < 1 / 255] = 0
    return mask


# -- recipe 1: SBI's ranges, an elliptical mask, a drifting jitter ------------------------------------
SBI_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
"""SBI draws the blend ratio from this list: mostly a full blend, sometimes a partial one."""


@dataclass(frozen=True)
class _Jitter:
    """One frame's transform of the source copy and its mask."""

    gain: np.ndarray        # (3,) per-channel colour gain
    shift: float            # brightness offset, grey levels
    contrast: float
    scale: float            # geometry: zoom about the centre
    dx: float               # translation, fraction of the crop side
    dy: float
    axes: np.ndarray        # (2,) ellipse axis factors
    blur: float             # mask softness, fraction of the crop side

    def lerp(self, other: _Jitter, w: float) -> _Jitter:
        return _Jitter(*[(1 - w) * getattr(self, f) + w * getattr(other, f) for f in self.__dataclass_fields__])


def _draw(rng: np.random.Generator) -> _Jitter:
    return _Jitter(gain=rng.uniform(0.9, 1.1, 3), shift=float(rng.uniform(-20, 20)),
                   contrast=float(rng.uniform(0.85, 1.15)), scale=float(rng.uniform(0.95, 1.05)),
                   dx=float(rng.uniform(-0.03, 0.03)), dy=float(rng.uniform(-0.03, 0.03)),
                   axes=rng.uniform(0.85, 1.1, 2), blur=float(rng.uniform(0.02, 0.06)))


def face_mask(size: int, keypoints: np.ndarray | None = None, axes: tuple[float, float] = (1.0, 1.0),
              blur: float = 0.04) -> np.ndarray:
    """A soft face-shaped mask float32 (size, size) in [0, 1] (``face_ellipse``, ``feather``)."""
    cx, cy, ax, ay, angle = face_ellipse(size, keypoints)
    mask = np.zeros((size, size), np.float32)
    axes_px = (max(1, round(ax * axes[0])), max(1, round(ay * axes[1])))
    cv2.ellipse(mask, (round(cx), round(cy)), axes_px, angle, 0, 360, 1.0, thickness=-1)
    return feather(mask, max(0.5, blur * size))


def _jitter_frame(frame: np.ndarray, j: _Jitter) -> np.ndarray:
    size = frame.shape[0]
    img = frame.astype(np.float32)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = (img - mean) * j.contrast + mean
    img = img * j.gain + j.shift
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, j.scale)
    matrix[:, 2] += (j.dx * size, j.dy * size)
    return cv2.warpAffine(np.clip(img, 0, 255), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def make_pseudofake_clip(frames: np.ndarray, rng: np.random.Generator, keypoints: np.ndarray | None = None,
                         *, drift: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Blend a real face clip with a jittered copy of itself; return (fake, masks).

    ``frames``: uint8 (T, S, S, 3) face crops.  ``keypoints``: optional (T, 5, 2) MTCNN keypoints
    in crop pixels (NaN rows fall back to the box-derived ellipse).  ``drift``: how far the
    jitter moves from the first frame to the last (0 = identical on every frame).
    Returns ``fake`` uint8 (T, S, S, 3) and ``masks`` float32 (T, S, S) in [0, 1]: the per-pixel
    weight of the jittered copy, i.e. where and how strongly the clip was manipulated.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[1] != frames.shape[2]:
        raise ValueError(f"expected uint8 face crops (T, S, S, 3), got shape {frames.shape}")
    count, size = frames.shape[0], frames.shape[1]
    start = _draw(rng)
    end = start.lerp(_draw(rng), drift)  # the last frame's jitter: a small step towards a fresh draw
    ratio = float(rng.choice(SBI_BLEND_RATIOS))
    fakes = np.empty_like(frames)
    masks = np.empty((count, size, size), np.float32)
    for t in range(count):
        j = start.lerp(end, t / max(count - 1, 1))
        points = None if keypoints is None else keypoints[t]
        mask = face_mask(size, points, axes=tuple(j.axes), blur=j.blur) * ratio
        source = _jitter_frame(frames[t], j)
        blended = source * mask[..., None] + frames[t].astype(np.float32) * (1 - mask[..., None])
        fakes[t] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        masks[t] = mask
    return fakes, masks


# -- recipe 2: the training recipe of the demo weights --------------------------------------------------
TRAINING_BLEND_RATIOS = (0.6, 0.8, 1.0, 1.0, 1.0)
SUBTLE_SHARE = 0.2  # blends whose colour mismatch is barely visible; with half of them a model trained
# from scratch on a CPU learnt nothing in an hour (validation AUC 0.58 after 1,600 clips)
FREQUENCY_MISMATCHES = ("none", "blur", "sharpen", "resample")
# How often the blended-in copy is left alone, blurred, sharpened or resampled.  Blurred and resampled
# copies make the inside of the face softer than its surroundings; when they outnumber sharpened ones,
# "a soft face" becomes a cue, and a real soft-focus portrait reads as a blend.
DEFAULT_FREQUENCY_MIX = {"none": 0.3, "blur": 0.3, "sharpen": 0.2, "resample": 0.2}
# How the blended-in copy is shifted, scaled and turned.  Bilinear resampling alone takes about a fifth
# of the fine detail off the face (median Laplacian energy inside the mask 0.79 of the real clip's, on
# the demo's training faces); bicubic keeps 0.95, so that a blend is not simply a softer face.
WARP_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def frequency_mix(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The frequency-mismatch probabilities, normalised: ``weights`` names some of
    ``FREQUENCY_MISMATCHES`` (missing ones are 0), or None for ``DEFAULT_FREQUENCY_MIX``."""
    if weights is None:
        return dict(DEFAULT_FREQUENCY_MIX)
    unknown = set(weights) - set(FREQUENCY_MISMATCHES)
    if unknown:
        raise ValueError(f"unknown frequency mismatch {sorted(unknown)[0]!r} "
                         f"(known: {', '.join(FREQUENCY_MISMATCHES)})")
    values = {k: float(weights.get(k, 0.0)) for k in FREQUENCY_MISMATCHES}
    if any(v < 0 for v in values.values()) or sum(values.values()) <= 0:
        raise ValueError(f"frequency mismatch weights must be >= 0 with a positive sum, got {dict(weights)}")
    total = sum(values.values())
    return {k: v / total for k, v in values.items()}


def _deformed_hull(ellipse: tuple[float, ...], radii: np.ndarray, axes: tuple[float, float], size: int) -> np.ndarray:
    """Fill the polygon of points on the face ellipse pushed in or out by ``radii`` (one factor per angle)."""
    cx, cy, ax, ay, angle = ellipse
    theta = np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    rot = np.deg2rad(angle)
    x = ax * axes[0] * radii * np.cos(theta)
    y = ay * axes[1] * radii * np.sin(theta)
    points = np.stack([cx + x * np.cos(rot) - y * np.sin(rot), cy + x * np.sin(rot) + y * np.cos(rot)], axis=1)
    mask = np.zeros((size, size), np.float32)
    cv2.fillPoly(mask, [np.round(points * 8).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=3)
    return mask


def self_blend_clip(frames: np.ndarray, rng: np.random.Generator, *, face_fraction: float = FACE_FRACTION,
                    keypoints: np.ndarray | None = None, frequency: Mapping[str, float] | None = None,
                    warp: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """Self-blend a face clip: uint8 (T, S, S, 3) -> (fake uint8, masks float32 (T, S, S) in [0, 1]).

    One draw for the whole clip: the mask's shape (a face hull deformed at random, grown or shrunk,
    its edge blurred by a random width), the blend ratio, and the source copy's colour mismatch
    (per-channel gain and offset, contrast; from barely visible, ``SUBTLE_SHARE`` of the draws, to
    plain), frequency mismatch (blurred, sharpened or resampled) and misalignment (shift, scale, a
    slight turn).  The mask follows the face from frame to frame (through the keypoints when they are
    known).  ``frequency`` weighs the frequency mismatches (``frequency_mix``); ``warp`` is the
    misalignment's interpolation (``WARP_INTERPOLATION``).
    """
    if warp not in WARP_INTERPOLATION:
        raise ValueError(f"warp must be one of {', '.join(WARP_INTERPOLATION)}, got {warp!r}")
    t, s = frames.shape[:2]
    mix = frequency_mix(frequency)
    subtle = rng.random() < SUBTLE_SHARE
    gain = rng.uniform(*((0.94, 1.06) if subtle else (0.8, 1.2)), size=3).astype(np.float32)
    bias = rng.uniform(*((-10, 10) if subtle else (-25, 25)), size=3).astype(np.float32)
    contrast = rng.uniform(0.88, 1.12)
    frequency = rng.choice(list(FREQUENCY_MISMATCHES), p=[mix[k] for k in FREQUENCY_MISMATCHES])
    sigma = rng.uniform(0.5, 1.6)
    resample = rng.uniform(0.45, 0.8)
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * s
    turn = rng.uniform(-3, 3)
    radii = 1 + np.convolve(np.pad(rng.uniform(-0.16, 0.16, 24), 2, mode="wrap"), np.ones(5) / 5, "valid")
    axes = (rng.uniform(0.75, 1.1), rng.uniform(0.75, 1.1))
    edge = rng.uniform(0.015, 0.08) * s
    ratio = float(rng.choice(TRAINING_BLEND_RATIOS))

    source = frames.astype(np.float32)
    mean = source.mean(axis=(1, 2), keepdims=True)
    source = ((source - mean) * contrast + mean) * gain + bias
    if frequency == "blur":
        source = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in source])
    elif frequency == "sharpen":
        source = np.stack([cv2.addWeighted(f, 1.7, cv2.GaussianBlur(f, (0, 0), sigma), -0.7, 0) for f in source])
    elif frequency == "resample":
        small = max(8, int(round(s * resample)))
        source = np.stack([cv2.resize(cv2.resize(f, (small, small), interpolation=cv2.INTER_AREA), (s, s),
                                      interpolation=cv2.INTER_LINEAR) for f in source])
    matrix = cv2.getRotationMatrix2D((s / 2, s / 2), turn, scale)
    matrix[:, 2] += shift
    source = np.stack([cv2.warpAffine(f, matrix, (s, s), flags=WARP_INTERPOLATION[warp],
                                      borderMode=cv2.BORDER_REFLECT_101) for f in source])

    masks = np.empty((t, s, s), np.float32)
    for i in range(t):
        points = None if keypoints is None else keypoints[i]
        ellipse = face_ellipse(s, points, face_fraction)
        masks[i] = feather(_deformed_hull(ellipse, radii, axes, s), edge) * ratio
    fake = masks[..., None] * source + (1 - masks[..., None]) * frames.astype(np.float32)
    return np.clip(fake, 0, 255).round().astype(np.uint8), masks


def _drifting_blend(frames: np.ndarray, rng: np.random.Generator, *, face_fraction: float = FACE_FRACTION,
                    keypoints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``make_pseudofake_clip`` with the ``BlendFn`` signature (it finds the face from the keypoints)."""
    return make_pseudofake_clip(frames, rng, keypoints)


def resolve_blend(name: str, frequency: Mapping[str, float] | None = None, warp: str = "linear") -> BlendFn:
    """``"builtin"`` (``self_blend_clip``, with the ``frequency`` mix and ``warp`` given), ``"data"``
    (``make_pseudofake_clip``, SBI's own ranges) or ``"auto"`` (the builtin one)."""
    if name in ("builtin", "auto"):
        if frequency is None and warp == "linear":
            return self_blend_clip
        return partial(self_blend_clip, frequency=frequency_mix(frequency), warp=warp)
    if name == "data":
        if frequency is not None or warp != "linear":
            raise InputError("data.blend_frequency and data.blend_warp apply to the builtin blend, not 'data'")
        return _drifting_blend
    raise InputError(f"unknown blend {name!r}; choose auto, data or builtin")
