"""Cross-identity blends: another person's face warped onto a clip by landmarks (Face X-ray's recipe).

Why: self-blends (``data.pseudofake``) teach a blending boundary inside one face, and weights trained
on them alone called every real face swap (another person's face, Poisson-blended) REAL.  Face X-ray
(Li et al., CVPR 2020) makes the fakes of that family from real faces alone:

1. for a target face, a *donor* among the other identities whose landmarks are nearest
   (``choose_donor``: normalised landmark distance, among a random pool of candidates), so the pose
   roughly matches and the warp stays plausible;
2. the donor's face warped onto the target by their landmarks (a least-squares affine fit of the 468
   MediaPipe points, ``data.landmarks``), colour-transferred to the target (Reinhard's mean and
   deviation matching in Lab);
3. blended through a mask from the target landmarks' convex hull, randomly deformed, eroded or
   dilated and feathered: ``alpha`` (I = M * F + (1 - M) * B) or ``poisson`` (``cv2.seamlessClone``).

For a clip everything is drawn once (donor, mask shape, colour transfer, blend kind); each frame only
follows the target's landmarks with a small jitter, so the fake does not flicker.  The real half of a
training pair is the target unchanged, so identity alone never tells real from fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

SWAP_BLENDS = ("alpha", "poisson")
ALPHA_RATIOS = (0.75, 0.9, 1.0, 1.0)  # the donor's weight inside the mask core, drawn per clip
FRAME_JITTER = 0.004  # per-frame misalignment of the warped donor, fraction of the face's size
MIN_STD = 2.0  # Lab deviation floor: a grey donor's a/b channels must not be blown up


@dataclass(frozen=True)
class Donor:
    """A face to paste: an RGB uint8 (H, W, 3) picture, its 468 landmarks (x, y) in that picture's
    pixels, and who it shows (never the target's person)."""

    image: np.ndarray
    landmarks: np.ndarray
    person: str


# -- choosing the donor ---------------------------------------------------------------------------
def normalise_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks centred, scaled to unit RMS radius and turned so the eye line is level: what is left
    is the face's shape and pose, which ``choose_donor`` compares."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    pts = pts - pts.mean(axis=0)
    eye = pts[RIGHT_EYE_OUTER] - pts[LEFT_EYE_OUTER]
    angle = -np.arctan2(eye[1], eye[0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T
    return pts / max(float(np.sqrt((pts ** 2).sum(axis=1).mean())), 1e-9)


def landmark_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean point distance of two faces' normalised landmarks (0: same shape and pose)."""
    return float(np.linalg.norm(normalise_landmarks(a) - normalise_landmarks(b), axis=1).mean())


def choose_donor(target_person: str, target_landmarks: np.ndarray, candidates: Sequence[tuple[str, np.ndarray]],
                 rng: np.random.Generator, pool: int = 8) -> int:
    """Index into ``candidates`` ((person, landmarks) pairs) of the donor for a target face.

    Only other people qualify; ``pool`` of them are drawn at random (variety: not always the one
    nearest face) and the nearest by ``landmark_distance`` wins, as Face X-ray does.  The candidates
    are the split's own material, so a training swap never uses a held-out person.
    """
    others = [i for i, (person, _) in enumerate(candidates) if person != target_person]
    if not others:
        raise InputError(f"no donor for {target_person!r}: a cross-identity blend needs a second person")
    drawn = rng.choice(others, size=min(max(1, int(pool)), len(others)), replace=False)
    distances = [landmark_distance(target_landmarks, candidates[i][1]) for i in drawn]
    return int(drawn[int(np.argmin(distances))])


# -- the mask -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskShape:
    """How a clip's mask departs from the landmarks' hull: drawn once per clip."""

    radii: np.ndarray  # (24,) smooth in/out push of the hull, per angle around the face's centre
    grow: float  # erode (< 0) or dilate (> 0), fraction of the face's size
    feather: float  # edge blur (Gaussian sigma), fraction of the face's size


def draw_mask_shape(rng: np.random.Generator) -> MaskShape:
    radii = 1 + np.convolve(np.pad(rng.uniform(-0.12, 0.12, 24), 2, mode="wrap"), np.ones(5) / 5, "valid")
    return MaskShape(radii, float(rng.uniform(-0.08, 0.04)), float(rng.uniform(0.01, 0.06)))


def face_size(points: np.ndarray) -> float:
    """The face's size in pixels: the larger side of its landmarks' bounding box."""
    return float(np.max(points.max(axis=0) - points.min(axis=0)))


def hull_mask(points: np.ndarray, shape: tuple[int, int], mask_shape: MaskShape | None = None) -> np.ndarray:
    """A hard float32 (H, W) mask of the landmarks' convex hull, deformed by ``mask_shape`` (each hull
    vertex pushed along its direction from the centre, then the region eroded or dilated)."""
    hull = cv2.convexHull(np.asarray(points, np.float32)).reshape(-1, 2).astype(np.float64)
    size = face_size(points)
    if mask_shape is not None:
        centre = hull.mean(axis=0)
        offset = hull - centre
        angle = np.mod(np.arctan2(offset[:, 1], offset[:, 0]), 2 * np.pi)
        bins = mask_shape.radii
        position = angle / (2 * np.pi) * len(bins)
        low = np.floor(position).astype(int) % len(bins)
        high = (low + 1) % len(bins)
        weight = position - np.floor(position)
        hull = centre + offset * ((1 - weight) * bins[low] + weight * bins[high])[:, None]
    mask = np.zeros(shape, np.float32)
    cv2.fillPoly(mask, [np.round(hull * 8).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=3)
    mask = (mask >= 0.5).astype(np.float32)
    if mask_shape is not None and abs(mask_shape.grow) * size >= 1:
        radius = int(round(abs(mask_shape.grow) * size))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = (cv2.dilate if mask_shape.grow > 0 else cv2.erode)(mask, kernel)
    return mask


# -- warping and colour -----------------------------------------------------------------------------
def fit_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares affine (2, 3) taking ``source`` points onto ``target`` points."""
    src = np.asarray(source, np.float64)
    design = np.concatenate([src, np.ones((len(src), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, np.asarray(target, np.float64), rcond=None)
    return solution.T


def reinhard_transfer(source: np.ndarray, target: np.ndarray, source_mask: np.ndarray,
                      target_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (scale, shift) in Lab that gives ``source``'s masked pixels the mean and deviation of
    ``target``'s (Reinhard et al. 2001).  Apply with ``apply_transfer``; one pair serves a whole clip."""
    src = _lab(source)[source_mask > 0.5]
    dst = _lab(target)[target_mask > 0.5]
    if len(src) < 4 or len(dst) < 4:
        return np.ones(3, np.float32), np.zeros(3, np.float32)
    scale = np.maximum(dst.std(axis=0), MIN_STD) / np.maximum(src.std(axis=0), MIN_STD)
    shift = dst.mean(axis=0) - scale * src.mean(axis=0)
    return scale.astype(np.float32), shift.astype(np.float32)


def apply_transfer(image: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """An RGB float (0..255) picture with the Lab transfer applied, back in RGB float 0..255."""
    lab = _lab(image) * scale + shift
    lab[..., 0] = np.clip(lab[..., 0], 0, 100)
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB) * 255.0, 0, 255)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.clip(np.asarray(image, np.float32), 0, 255) / 255.0, cv2.COLOR_RGB2Lab)


# -- the blend ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwapDraw:
    """Everything a clip's swap draws once: the same on every frame."""

    blend: str
    mask_shape: MaskShape
    ratio: float  # alpha blends: the donor's weight in the mask's core
    transfer: float  # how much of the colour transfer is applied (1: all)


def draw_swap(rng: np.random.Generator, blends: Sequence[str] = SWAP_BLENDS) -> SwapDraw:
    """One clip's draw; ``blends``: the blend kinds to choose from (equally often)."""
    blends = tuple(blends)
    unknown = set(blends) - set(SWAP_BLENDS)
    if not blends or unknown:
        raise InputError(f"swap blends must be some of {', '.join(SWAP_BLENDS)}, got {list(blends)}")
    return SwapDraw(str(blends[int(rng.integers(len(blends)))]), draw_mask_shape(rng),
                    float(rng.choice(ALPHA_RATIOS)), float(rng.uniform(0.7, 1.0)))


def swap_clip(frames: np.ndarray, landmarks: np.ndarray, donor: Donor, rng: np.random.Generator, *,
              blends: Sequence[str] = SWAP_BLENDS, draw: SwapDraw | None = None,
              jitter: float = FRAME_JITTER) -> tuple[np.ndarray, np.ndarray]:
    """Paste ``donor``'s face onto every frame of a clip: uint8 (T, H, W, 3) -> (fake uint8, masks float32
    (T, H, W) in [0, 1], the per-pixel share of the donor's face).

    ``landmarks``: (T, 468, 2) target landmarks in frame pixels (a frame whose landmarks are not finite
    is left as it is).  ``draw``: the clip's draw (``draw_swap``), drawn from ``rng`` when None.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"a swap needs frames (T, H, W, 3), got shape {frames.shape}")
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape[:1] != frames.shape[:1] or landmarks.shape[-1] != 2:
        raise InputError(f"landmarks {landmarks.shape} do not match frames {frames.shape}")
    draw = draw or draw_swap(rng, blends)
    t, h, w = frames.shape[:3]
    fake = frames.copy()
    masks = np.zeros((t, h, w), np.float32)
    donor_points = np.asarray(donor.landmarks, np.float64)
    transfer: tuple[np.ndarray, np.ndarray] | None = None
    for i in range(t):
        target = landmarks[i]
        if not np.isfinite(target).all():
            continue
        size = face_size(target)
        matrix = fit_affine(donor_points, target)
        matrix[:, 2] += rng.normal(0, jitter * size, 2)  # a small per-frame misalignment
        face = cv2.warpAffine(donor.image.astype(np.float32), matrix, (w, h), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT_101)
        hard = hull_mask(target, (h, w), draw.mask_shape)
        hard[:2], hard[-2:], hard[:, :2], hard[:, -2:] = 0, 0, 0, 0  # seamlessClone needs a margin
        if hard.sum() < 16:
            continue
        if transfer is None:  # one colour transfer for the clip, measured on its first face
            transfer = reinhard_transfer(face, frames[i], hard, hard)
            transfer = (1 + draw.transfer * (transfer[0] - 1), draw.transfer * transfer[1])
        face = apply_transfer(face, *transfer)
        if draw.blend == "alpha":
            soft = _feather(hard, draw.mask_shape.feather * size) * draw.ratio
            out = soft[..., None] * face + (1 - soft[..., None]) * frames[i].astype(np.float32)
            fake[i] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
            masks[i] = soft
        else:
            fake[i], masks[i] = _poisson(face, frames[i], hard)
    return fake, masks


def _feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Blur a hard mask so its edge fades out; its core stays 1, and far pixels stay exactly 0."""
    soft = cv2.GaussianBlur(mask, (0, 0), max(0.5, sigma))
    peak = float(soft.max())
    soft = np.clip(soft / peak, 0, 1) if peak > 0 else soft
    soft[soft < 1 / 255] = 0
    return soft.astype(np.float32)


def _poisson(face: np.ndarray, frame: np.ndarray, hard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.seamlessClone`` of ``face`` into ``frame`` inside ``hard``, aligned pixel for pixel; the mask
    returned is where the result differs from the frame, with the hard mask's inside at 1."""
    mask = (hard > 0.5).astype(np.float32)
    binary = mask.astype(np.uint8) * 255
    x, y, bw, bh = cv2.boundingRect(binary)
    centre = (x + bw // 2, y + bh // 2)  # seamlessClone centres the mask's box here: no shift
    src = np.clip(np.rint(face), 0, 255).astype(np.uint8)
    out = cv2.seamlessClone(src[..., ::-1].copy(), np.ascontiguousarray(frame[..., ::-1]), binary.copy(), centre,
                            cv2.NORMAL_CLONE)[..., ::-1]
    out = np.where(mask[..., None] > 0, out, frame)  # outside the mask nothing may move
    return np.ascontiguousarray(out), mask
