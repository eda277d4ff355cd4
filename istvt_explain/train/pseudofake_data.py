"""Training without fakes: real face clips in, half of them self-blended into pseudo-fakes out.

Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) blend a face with a colour- and
geometry-jittered copy of itself through a soft face mask; a detector that learns to find the
blend boundary and colour mismatch generalises to real manipulations.  For clips the jitter is
kept constant over the frames so that a fake stays temporally plausible (DESIGN.md section 4).

Real clips come from a *source*: either still face pictures that registry packages ship under a
free licence (the bundled demo weights), animated with random camera motion, or the real clips of
a cached data set (a user who has only real footage).  Every item is drawn from a generator seeded
by ``(seed, epoch, index)``, so an item does not depend on the order it is asked for in: the
resume test and the distributed sampler rely on that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError

BlendFn = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


# -- face pictures ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FacePicture:
    """A real face picture shipped inside an installed package, with where it is from and its licence.

    ``box`` is the face as (x, y, width, height) in the picture, found once with scikit-image's LBP
    frontal-face cascade and written down so that training does not depend on a detector.
    """

    name: str
    package: str
    source: str
    licence: str
    box: tuple[int, int, int, int]

    def load(self) -> np.ndarray:
        """The picture as uint8 (H, W, 3); grey pictures are repeated over three channels."""
        return _load_picture(self.name)


FACE_PICTURES: dict[str, FacePicture] = {
    "astronaut": FacePicture(
        "astronaut", "scikit-image (skimage.data.astronaut)",
        "Eileen Collins, NASA Great Images database", "public domain (NASA)", (180, 62, 100, 100)),
    "camera": FacePicture(
        "camera", "scikit-image (skimage.data.camera)",
        "photograph by Lav Varshney (replaces the old 'cameraman' since 0.18)", "CC0 1.0",
        (205, 120, 60, 60)),
    "grace_hopper": FacePicture(
        "grace_hopper", "matplotlib (mpl-data/sample_data/grace_hopper.jpg)",
        "Commodore Grace M. Hopper, official U.S. Navy photograph",
        "public domain (work of the U.S. federal government)", (168, 113, 205, 205)),
}


@cache
def _load_picture(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data
        image = data.astronaut()
    elif name == "camera":
        from skimage import data
        image = data.camera()
    elif name == "grace_hopper":
        import matplotlib
        from matplotlib import image as mpimg
        image = mpimg.imread(f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg")
    else:
        raise InputError(f"unknown face picture {name!r}; choose from {', '.join(sorted(FACE_PICTURES))}")
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3])
    image.setflags(write=False)
    return image


def face_pictures(names: Sequence[str]) -> list[FacePicture]:
    """Look up pictures by name, with a clear error for an unknown one."""
    unknown = [n for n in names if n not in FACE_PICTURES]
    if unknown:
        raise InputError(f"unknown face picture(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(sorted(FACE_PICTURES))}")
    if not names:
        raise InputError("at least one face picture is needed")
    return [FACE_PICTURES[n] for n in names]


# -- real clip sources ------------------------------------------------------------------------------
@dataclass
class RealClip:
    """A real clip (uint8 (T, S, S, 3)), where it came from, and whether its colours are grey."""

    frames: np.ndarray
    name: str
    grey: bool = False


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
        picture = self.pictures[index % len(self.pictures)]
        image = picture.load()
        x, y, w, h = picture.box
        cx = x + w / 2 + rng.uniform(-0.1, 0.1) * w
        cy = y + h / 2 + rng.uniform(-0.1, 0.1) * h
        side = max(w, h) * rng.uniform(1.15, 1.8)  # the paper's 1.25 margin, give or take
        angle = rng.uniform(-12, 12)
        flip = rng.random() < 0.5
        drift = rng.uniform(-0.06, 0.06, size=2) * side  # over the whole clip
        zoom = rng.uniform(-0.06, 0.06)
        turn = rng.uniform(-4, 4)
        out = np.empty((self.frames, self.size, self.size, 3), np.uint8)
        for t in range(self.frames):
            f = t / max(self.frames - 1, 1)
            shake = rng.normal(0, 0.006, size=2) * side
            centre = (cx + drift[0] * f + shake[0], cy + drift[1] * f + shake[1])
            scale = self.size / (side * (1 + zoom * f))
            matrix = cv2.getRotationMatrix2D(centre, angle + turn * f, scale)
            matrix[:, 2] += (self.size / 2 - centre[0], self.size / 2 - centre[1])
            frame = cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT_101)
            out[t] = frame[:, ::-1] if flip else frame
        grey = bool(np.all(image[..., 0] == image[..., 1]))
        return RealClip(out, picture.name, grey)


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
            return RealClip(np.asarray(raw["frames"], np.uint8), str(raw["meta"].get("video_id", position)))
        item = self.dataset[position]
        clip = item["clip"].float()  # (T, 3, S, S) in [-1, 1]
        frames = ((clip * 0.5 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        return RealClip(frames.permute(0, 2, 3, 1).contiguous().numpy(), str(item.get("video_id", position)))


# -- self-blending ----------------------------------------------------------------------------------
def builtin_self_blend(frames: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Self-blend a face-centred clip: uint8 (T, S, S, 3) -> (fake uint8, masks float32 (T, S, S)).

    One colour and geometry jitter and one soft elliptical face mask for the whole clip (the mask
    follows the frame, as the crops are face-centred).  Its colour mismatch is stronger than the data
    package's ``make_pseudofake_clip`` (SBI's own ranges): a model trained from scratch in minutes on
    a CPU (the demo weights) learns it, where it learns nothing from the subtler one.  Also the
    fallback when the data package is not installed.
    """
    t, s = frames.shape[:2]
    source = frames.astype(np.float32)
    gain = rng.uniform(0.75, 1.25, size=3).astype(np.float32)
    bias = rng.uniform(-25, 25, size=3).astype(np.float32)
    source = source * gain + bias
    if rng.random() < 0.5:  # a sharper or a softer copy
        k = int(rng.choice([3, 5]))
        source = np.stack([cv2.GaussianBlur(f, (k, k), 0) for f in source]) if rng.random() < 0.5 else \
            np.stack([cv2.addWeighted(f, 1.6, cv2.GaussianBlur(f, (5, 5), 0), -0.6, 0) for f in source])
    scale = rng.uniform(0.94, 1.06)
    shift = rng.uniform(-0.03, 0.03, size=2) * s
    matrix = cv2.getRotationMatrix2D((s / 2, s / 2), 0.0, scale)
    matrix[:, 2] += shift
    source = np.stack([cv2.warpAffine(f, matrix, (s, s), borderMode=cv2.BORDER_REFLECT_101) for f in source])

    mask = np.zeros((s, s), np.float32)
    centre = (int(s / 2 + rng.uniform(-0.05, 0.05) * s), int(s * rng.uniform(0.5, 0.58)))
    axes = (int(s * rng.uniform(0.22, 0.32)), int(s * rng.uniform(0.28, 0.4)))
    cv2.ellipse(mask, centre, axes, rng.uniform(-15, 15), 0, 360, 1.0, -1)
    sigma = rng.uniform(1.5, 0.05 * s)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    mask = mask / max(float(mask.max()), 1e-6) * rng.choice([0.75, 1.0, 1.0])
    masks = np.repeat(mask[None], t, axis=0)
    fake = masks[..., None] * source + (1 - masks[..., None]) * frames.astype(np.float32)
    return np.clip(fake, 0, 255).round().astype(np.uint8), masks


def resolve_blend(name: str) -> BlendFn:
    """``"builtin"``, ``"data"`` (the data package's ``make_pseudofake_clip``) or ``"auto"`` (data if
    installed, else builtin)."""
    if name == "builtin":
        return builtin_self_blend
    try:
        from ..data.pseudofake import make_pseudofake_clip
    except ImportError:
        if name == "data":
            raise InputError("blend 'data' needs istvt_explain.data.pseudofake, which is not installed") from None
        return builtin_self_blend
    if name not in ("data", "auto"):
        raise InputError(f"unknown blend {name!r}; choose auto, data or builtin")
    return make_pseudofake_clip


# -- augmentation -----------------------------------------------------------------------------------
def augment_clip(frames: np.ndarray, rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    """Photometric augmentation of a whole clip, the same for every frame (real and fake alike, so
    that it never tells them apart): brightness, contrast, saturation, gamma, blur, noise, JPEG."""
    clip = frames.astype(np.float32)
    clip = (clip - 127.5) * rng.uniform(0.7, 1.3) + 127.5 + rng.uniform(-30, 30)
    if not grey:
        lum = clip.mean(axis=-1, keepdims=True)
        clip = lum + (clip - lum) * rng.uniform(0.6, 1.4)
        clip = clip * rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    clip = np.clip(clip, 0, 255)
    clip = 255.0 * (clip / 255.0) ** rng.uniform(0.75, 1.35)
    if rng.random() < 0.15:
        sigma = rng.uniform(0.3, 0.8)
        clip = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in clip])
    if rng.random() < 0.15:
        clip = clip + rng.normal(0, rng.uniform(1, 4), size=clip.shape).astype(np.float32)
    out = np.clip(clip, 0, 255).round().astype(np.uint8)
    if grey or rng.random() < 0.05:
        out = np.repeat(out.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
    if rng.random() < 0.15:
        quality = int(rng.integers(60, 96))
        out = np.stack([_jpeg(f, quality) for f in out])
    return out


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else frame


def to_tensor_clip(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) normalised as Xception expects: (x/255 - 0.5) / 0.5."""
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
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

    def __init__(self, source: PictureClipSource | CachedRealSource, length: int | None = None, *,
                 seed: int = 0, augment: bool = True, blend: str | BlendFn = "auto") -> None:
        self.source = source
        self.length = 2 * len(source) if length is None else int(length)
        if self.length < 1:
            raise ValueError(f"a pseudo-fake data set needs at least one item, got length {self.length}")
        self.seed = seed
        self.augment = augment
        self.blend = resolve_blend(blend) if isinstance(blend, str) else blend
        self.epoch = 0
        self.group_size = 2 if self.length % 2 == 0 else 1

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
            frames, masks = self.blend(frames, np.random.default_rng([self.seed, self.epoch, pair, 1]))
        if self.augment:
            # The same photometric draw for both halves of a pair: the blend is their only difference.
            frames = augment_clip(frames, np.random.default_rng([self.seed, self.epoch, pair, 2]), grey=real.grey)
        elif real.grey:
            frames = np.repeat(frames.mean(axis=-1, keepdims=True).round().astype(np.uint8), 3, axis=-1)
        return {
            "clip": to_tensor_clip(frames),
            "label": float(fake),
            "video_id": f"{real.name}-{index // 2}",
            "manipulation": "pseudofake" if fake else "real",
            "mask": torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)),
        }
