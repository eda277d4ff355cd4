"""Pseudo-fake clips: self-blended images (Shiohara & Yamasaki, CVPR 2022) made temporal.

A face is blended with a colour- and geometry-jittered copy of itself through a soft face
mask.  The result carries the traces of a face swap (a blending boundary, a colour mismatch, a
slight misalignment) with no second identity, and the blend mask is the ground truth of where
the "manipulation" is.  For a clip, the jitter is drawn once and drifts slowly from the first
frame to the last, so the clip stays temporally plausible (no flicker a detector could cheat on).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# SBI draws the blend ratio from this list: mostly a full blend, sometimes a partial one.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


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


def _drifted(start: _Jitter, rng: np.random.Generator, drift: float) -> _Jitter:
    """The jitter at the clip's last frame: a small step from ``start`` towards a fresh draw."""
    return start.lerp(_draw(rng), drift)


def _ellipse(size: int, keypoints: np.ndarray | None) -> tuple[float, float, float, float, float]:
    """Face ellipse (cx, cy, semi-axis x, semi-axis y, angle in degrees) in crop pixels.

    From the 5 MTCNN keypoints when they are known: width about twice the eye distance, from
    the brow (0.6 eye-mouth distances above the eyes) to the chin (0.9 below the mouth), tilted
    with the eye line.  Otherwise the face box implied by a 1.25x margin crop.
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
    return size / 2, size * 0.52, size * 0.33, size * 0.40, 0.0


def face_mask(size: int, keypoints: np.ndarray | None = None, axes: tuple[float, float] = (1.0, 1.0),
              blur: float = 0.04) -> np.ndarray:
    """A soft face-shaped mask float32 (size, size) in [0, 1] (see ``_ellipse``)."""
    cx, cy, ax, ay, angle = _ellipse(size, keypoints)
    mask = np.zeros((size, size), np.float32)
    axes_px = (max(1, round(ax * axes[0])), max(1, round(ay * axes[1])))
    cv2.ellipse(mask, (round(cx), round(cy)), axes_px, angle, 0, 360, 1.0, thickness=-1)
    sigma = max(0.5, blur * size)
    # Blur, then re-stretch so the core stays 1 and the edge fades out: the blending boundary.
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    peak = float(mask.max())
    mask = np.clip(mask / peak, 0, 1) if peak > 0 else mask
    mask[mask < 1 / 255] = 0  # the Gaussian's far tail changes no pixel: keep the mask exact there
    return mask


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
    end = _drifted(start, rng, drift)
    ratio = float(rng.choice(BLEND_RATIOS))
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
