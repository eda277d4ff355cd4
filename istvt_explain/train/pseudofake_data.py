"""Training without fakes: real face clips in, each paired with a self-blended pseudo-fake of itself.

Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) blend a face with a colour-, frequency- and
geometry-jittered copy of the *same* frame through a soft, randomly deformed face mask.  Source and
target are one person, so identity is never a cue; what tells a fake from its real twin is the
blending boundary and the mismatch inside it, the traces every face swap leaves.  For clips the
jitter and the mask shape are drawn once and kept along the frames, so a fake is temporally
plausible.  Every quality degradation (``degrade``) is drawn once per pair and applied to both
halves, so quality is never a cue either.

Real clips come from a *source*: face pictures and videos that registry packages ship
(``face_material``: the bundled demo weights), the pictures animated with random camera motion, or
the real clips of a cached data set (a user who has only real footage).  Every item is drawn from a
generator seeded by ``(seed, epoch, index)``, so an item does not depend on the order it is asked for
in: the resume test and the distributed sampler rely on that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from .degrade import DegradeOptions, degrade_clip, ramped
from .face_material import (
    FACE_PICTURES,
    FACE_VIDEOS,
    FacePicture,
    expand_material,
    face_pictures,
    video_faces,
)

__all__ = ["FACE_PICTURES", "FACE_VIDEOS", "CachedRealSource", "FacePicture", "MaterialClipSource",
           "PictureClipSource", "PseudoFakeDataset", "RealClip", "face_pictures", "self_blend_clip"]

BlendFn = Callable[..., tuple[np.ndarray, np.ndarray]]


# -- real clip sources ------------------------------------------------------------------------------
@dataclass
class RealClip:
    """A real clip (uint8 (T, S, S, 3)), where it came from, and what the blend needs to know.

    ``face_fraction``: the face box's side as a fraction of the crop's side (0.8 for run-time crops,
    whose margin is 1.25x).  ``keypoints``: (T, 5, 2) detector keypoints in crop pixels, or None.
    """

    frames: np.ndarray
    name: str
    grey: bool = False
    face_fraction: float = 0.8
    keypoints: np.ndarray | None = None


class PictureClipSource:
    """Animate still face pictures into clips: a random crop around the face that drifts, zooms and
    turns slowly over the frames, as a hand-held camera or a moving head would."""

    def __init__(self, pictures: Sequence[str], frames: int, size: int) -> None:
        self.pictures = face_pictures(pictures)
        self.frames = frames
        self.size = size

    def __len__(self) -> int:
        return len(self.pictures)

    def clip(self, index: int, rng: np.random.Generator) -> RealClip:
        return animate_picture(self.pictures[index % len(self.pictures)], self.frames, self.size, rng)


def animate_picture(picture: FacePicture, frames: int, size: int, rng: np.random.Generator) -> RealClip:
    """A clip of ``frames`` crops of ``size`` around the picture's face, with slow random camera motion."""
    image, (x, y, w, h) = picture.load_at_most(size)
    cx = x + w / 2 + rng.uniform(-0.08, 0.08) * w
    cy = y + h / 2 + rng.uniform(-0.08, 0.08) * h
    margin = rng.uniform(1.15, 1.6)  # the run-time crop's 1.25 margin, give or take
    side = max(w, h) * margin
    angle = rng.uniform(-12, 12)
    flip = rng.random() < 0.5
    drift = rng.uniform(-0.06, 0.06, size=2) * side  # over the whole clip
    zoom = rng.uniform(-0.06, 0.06)
    turn = rng.uniform(-4, 4)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        f = t / max(frames - 1, 1)
        shake = rng.normal(0, 0.006, size=2) * side
        centre = (cx + drift[0] * f + shake[0], cy + drift[1] * f + shake[1])
        scale = size / (side * (1 + zoom * f))
        matrix = cv2.getRotationMatrix2D(centre, angle + turn * f, scale)
        matrix[:, 2] += (size / 2 - centre[0], size / 2 - centre[1])
        frame = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        out[t] = frame[:, ::-1] if flip else frame
    grey = bool(np.all(image[..., 0] == image[..., 1]))
    if grey and rng.random() < COLOURISE:
        out, grey = colourise(out, rng), False
    return RealClip(out, picture.name, grey, face_fraction=1.0 / margin)


COLOURISE = 0.6  # share of clips of grey pictures that get skin-like colours (most test footage is colour)


def colourise(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map grey frames onto a random ramp from a dark to a light skin-like colour (same ramp for the clip).

    Most of the people the demo weights can be trained on are grey pictures; colour blends (the
    gain and offset mismatch of a face swap) need colour faces to be learnt from.
    """
    dark = rng.uniform([25, 12, 5], [90, 60, 45])
    light = rng.uniform([215, 170, 140], [255, 230, 210])
    level = frames[..., :1].astype(np.float32) / 255.0
    return np.clip(dark + (light - dark) * level, 0, 255).round().astype(np.uint8)


class MaterialClipSource:
    """Clips of shipped face material (``face_material``): pictures animated by ``animate_picture``,
    videos cut into runs of consecutive frames at a random start (real motion, real compression).

    Items cycle over the config's entries, and an entry that names several pictures
    (``lfw_subset[0:80]``) gives one of them at random: each entry gets the same share of clips,
    whatever its number of pictures or frames.
    """

    def __init__(self, names: Sequence[str], frames: int, size: int) -> None:
        self.entries = [expand_material([n]) for n in names]
        if not self.entries:
            raise InputError("at least one face picture or video is needed")
        self.names = [n for entry in self.entries for n in entry]
        self.frames = frames
        self.size = size
        still = [n for n in self.names if n not in FACE_VIDEOS]
        self._pictures = dict(zip(still, face_pictures(still), strict=True)) if still else {}

    def __len__(self) -> int:
        return len(self.entries)

    def clip(self, index: int, rng: np.random.Generator) -> RealClip:
        entry = self.entries[index % len(self.entries)]
        name = entry[int(rng.integers(len(entry)))] if len(entry) > 1 else entry[0]
        if name in self._pictures:
            return animate_picture(self._pictures[name], self.frames, self.size, rng)
        return self._video_clip(name, rng)

    def _video_clip(self, name: str, rng: np.random.Generator) -> RealClip:
        faces = video_faces(name, self.size)
        starts = faces.clip_starts(self.frames)
        if len(starts) == 0:
            raise InputError(f"face video {name!r} has no run of {self.frames} consecutive face frames")
        start = int(starts[rng.integers(len(starts))])
        span = slice(start, start + self.frames)
        frames = faces.crops[span]
        keypoints = faces.keypoints[span]
        if rng.random() < 0.5:  # a mirrored take is as real as the original
            frames = frames[:, :, ::-1]
            keypoints = keypoints.copy()
            keypoints[..., 0] = self.size - 1 - keypoints[..., 0]
            keypoints = keypoints[:, [1, 0, 2, 4, 3]]  # left and right swap places
        return RealClip(np.ascontiguousarray(frames), name, face_fraction=0.8, keypoints=keypoints)


class CachedRealSource:
    """The real clips of a data set whose items follow the clip contract (normalised float clips)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        labels = getattr(dataset, "labels", None)
        if labels is None:
            labels = [float(dataset[i]["label"]) for i in range(len(dataset))]
        self.indices = [i for i, label in enumerate(labels) if float(label) < 0.5]
        if not self.indices:
            raise InputError("the data set has no real clips to make pseudo-fakes from")

    def __len__(self) -> int:
        return len(self.indices)

    def clip(self, index: int, rng: np.random.Generator) -> RealClip:
        position = self.indices[index % len(self.indices)]
        if hasattr(self.dataset, "load_clip"):  # the data package's cache: uint8 crops, no round trip
            raw = self.dataset.load_clip(position)
            keypoints = raw.get("keypoints")
            return RealClip(np.asarray(raw["frames"], np.uint8), str(raw["meta"].get("video_id", position)),
                            keypoints=None if keypoints is None else np.asarray(keypoints, np.float32))
        item = self.dataset[position]
        clip = item["clip"].float()  # (T, 3, S, S) in [-1, 1]
        frames = ((clip * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        return RealClip(frames.permute(0, 2, 3, 1).contiguous().numpy(), str(item.get("video_id", position)))


# -- self-blending ----------------------------------------------------------------------------------
BLEND_RATIOS = (0.6, 0.8, 1.0, 1.0, 1.0)
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


def _face_ellipse(size: int, face_fraction: float, keypoints: np.ndarray | None) -> tuple[float, ...]:
    """(cx, cy, semi-axis x, semi-axis y, angle) of the face in a crop: from the keypoints when known."""
    if keypoints is not None and np.isfinite(keypoints).all():
        from ..data.pseudofake import _ellipse
        return _ellipse(size, keypoints)
    scale = size * face_fraction / 0.8
    return size / 2, size / 2 + 0.02 * scale, 0.33 * scale, 0.40 * scale, 0.0


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


def self_blend_clip(frames: np.ndarray, rng: np.random.Generator, *, face_fraction: float = 0.8,
                    keypoints: np.ndarray | None = None, frequency: Mapping[str, float] | None = None,
                    warp: str = "linear") -> tuple[np.ndarray, np.ndarray]:
    """Self-blend a face clip: uint8 (T, S, S, 3) -> (fake uint8, masks float32 (T, S, S) in [0, 1]).

    One draw for the whole clip: the mask's shape (a face hull deformed at random, grown or shrunk,
    its edge blurred by a random width), the blend ratio, and the source copy's colour mismatch
    (per-channel gain and offset, contrast; from barely visible, ``SUBTLE_SHARE`` of the draws, to plain), frequency mismatch (blurred,
    sharpened or resampled) and misalignment (shift, scale, a slight turn).  The mask follows the
    face from frame to frame (through the keypoints when they are known).  ``frequency`` weighs the
    frequency mismatches (``frequency_mix``); ``warp`` is the misalignment's interpolation
    (``WARP_INTERPOLATION``).
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
    ratio = float(rng.choice(BLEND_RATIOS))

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
        mask = _deformed_hull(_face_ellipse(s, face_fraction, points), radii, axes, s)
        mask = cv2.GaussianBlur(mask, (0, 0), edge)
        peak = float(mask.max())
        mask = np.clip(mask / peak, 0, 1) if peak > 0 else mask
        mask[mask < 1 / 255] = 0
        masks[i] = mask * ratio
    fake = masks[..., None] * source + (1 - masks[..., None]) * frames.astype(np.float32)
    return np.clip(fake, 0, 255).round().astype(np.uint8), masks


def _data_blend(frames: np.ndarray, rng: np.random.Generator, *, face_fraction: float = 0.8,
                keypoints: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    from ..data.pseudofake import make_pseudofake_clip
    return make_pseudofake_clip(frames, rng, keypoints)


def resolve_blend(name: str, frequency: Mapping[str, float] | None = None, warp: str = "linear") -> BlendFn:
    """``"builtin"`` (``self_blend_clip``, with the ``frequency`` mix and ``warp`` given), ``"data"`` (the
    data package's ``make_pseudofake_clip``, SBI's own ranges) or ``"auto"`` (the builtin one)."""
    if name in ("builtin", "auto"):
        if frequency is None and warp == "linear":
            return self_blend_clip
        return partial(self_blend_clip, frequency=frequency_mix(frequency), warp=warp)
    if name == "data":
        if frequency is not None or warp != "linear":
            raise InputError("data.blend_frequency and data.blend_warp apply to the builtin blend, not 'data'")
        return _data_blend
    raise InputError(f"unknown blend {name!r}; choose auto, data or builtin")


def to_tensor_clip(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) normalised as Xception expects: (x/255 - 0.5) / 0.5."""
    contiguous = np.ascontiguousarray(frames)
    if not contiguous.flags.writeable:  # decoded video frames can be read-only; torch wants to own writable memory
        contiguous = contiguous.copy()
    clip = torch.from_numpy(contiguous).permute(0, 3, 1, 2).float()
    return clip / 127.5 - 1.0


# -- the data set -----------------------------------------------------------------------------------
class PseudoFakeDataset(Dataset):
    """Pairs of items from ``source``: index 2k is the real clip k, index 2k+1 a self-blended fake of
    the very same clip (same motion, same augmentation), so real and fake are exactly balanced and
    the blend is the only thing that tells them apart.  ``group_size = 2`` asks the training sampler
    to keep each pair in one batch, as Self-Blended Images training does: the contrast within a pair
    is what a model trained from scratch learns from quickly.

    Items follow the clip contract: ``clip`` (T, 3, S, S) normalised, ``label`` (1.0 = fake),
    ``video_id``, ``manipulation`` ("pseudofake" or "real") and ``mask`` (T, S, S).
    """

    def __init__(self, source: PictureClipSource | MaterialClipSource | CachedRealSource, length: int | None = None, *,
                 seed: int = 0, augment: bool = True, blend: str | BlendFn = "auto",
                 degrade: DegradeOptions | None = None, degrade_ramp_epochs: int = 0,
                 blend_frequency: Mapping[str, float] | None = None, blend_warp: str = "linear") -> None:
        self.source = source
        self.length = 2 * len(source) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"a pseudo-fake data set needs at least one item, got length {self.length}")
        self.seed = seed
        self.augment = augment
        self.degrade = degrade or DegradeOptions()
        self.degrade_ramp_epochs = int(degrade_ramp_epochs)
        self.blend = resolve_blend(blend, blend_frequency, blend_warp) if isinstance(blend, str) else blend
        self.epoch = 0
        self.group_size = 2 if self.length % 2 == 0 else 1

    def _degrade_now(self) -> DegradeOptions:
        """Degradation rates grow linearly over the first ``degrade_ramp_epochs`` epochs: a model trained
        from scratch first finds the blend on clean pairs, then learns to find it through degradations."""
        if self.degrade_ramp_epochs <= 0:
            return self.degrade
        return ramped(self.degrade, (self.epoch + 1) / (self.degrade_ramp_epochs + 1))

    def set_epoch(self, epoch: int) -> None:
        """Fresh augmentations every epoch, the same ones for the same (seed, epoch, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    @property
    def labels(self) -> list[float]:
        return [float(i % 2) for i in range(self.length)]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(index)
        pair = index // 2
        rng = np.random.default_rng([self.seed, self.epoch, pair])
        real = self.source.clip(pair, rng)
        frames = real.frames
        fake = index % 2 == 1
        masks = np.zeros(frames.shape[:3], np.float32)
        if fake:
            frames, masks = self.blend(frames, np.random.default_rng([self.seed, self.epoch, pair, 1]),
                                       face_fraction=real.face_fraction, keypoints=real.keypoints)
        if self.augment:
            # The same degradation draw for both halves of a pair: the blend is their only difference.
            frames = degrade_clip(frames, np.random.default_rng([self.seed, self.epoch, pair, 2]), grey=real.grey,
                                  options=self._degrade_now())
        elif real.grey:
            frames = np.repeat(frames.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
        return {
            "clip": to_tensor_clip(frames),
            "label": float(fake),
            "video_id": f"{real.name}-{index // 2}",
            "manipulation": "pseudofake" if fake else "real",
            "mask": torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)),
        }
