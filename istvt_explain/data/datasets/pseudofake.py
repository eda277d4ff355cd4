"""Training without fakes: real face clips in, each paired with a self-blended pseudo-fake of itself.

The blend (``data.pseudofake``: Self-Blended Images, Shiohara & Yamasaki, CVPR 2022) mixes a face
with a jittered copy of the *same* frame, so identity is never a cue; what tells a fake from its
real twin is the blending boundary and the mismatch inside it, the traces every face swap leaves.
A share of the fakes (``swap_share``) are cross-identity blends instead (``data.face_swap``, Face
X-ray's recipe): another person of the same split, chosen by landmarks, warped onto the clip; the
real twin is still the very clip the fake was made from, so identity alone is never the cue.
Every quality degradation (``data.degrade``) is drawn once per pair and applied to both halves, so
quality is never a cue either.

Real clips come from a *source*: face pictures and videos that registry packages ship
(``data.material``: the bundled demo weights), the pictures animated with random camera motion, or
the real clips of a cached data set (a user who has only real footage).  Every item is drawn from a
generator seeded by ``(seed, epoch, index)``, so an item does not depend on the order it is asked for
in: the resume test and the distributed sampler rely on that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError
from ..degrade import DegradeOptions, degrade_clip, ramped
from ..face_swap import SWAP_BLENDS, Donor, choose_donor, draw_swap, face_size, swap_clip
from ..material.catalogue import (
    FACE_VIDEOS,
    FacePicture,
    expand_material,
    face_pictures,
    material_person,
    video_faces,
)
from ..pseudofake import BlendFn, resolve_blend
from .pairs import AlternatingPairs


# -- real clip sources ------------------------------------------------------------------------------
@dataclass
class RealClip:
    """A real clip (uint8 (T, S, S, 3)), where it came from, and what the blend needs to know.

    ``face_fraction``: the face box's side as a fraction of the crop's side (0.8 for run-time crops,
    whose margin is 1.25x).  ``keypoints``: (T, 5, 2) detector keypoints in crop pixels, or None.
    ``landmarks``: (T, 468, 2) face-mesh landmarks in crop pixels (``data.landmarks``), or None: what
    a cross-identity blend needs.
    """

    frames: np.ndarray
    name: str
    grey: bool = False
    face_fraction: float = 0.8
    keypoints: np.ndarray | None = None
    landmarks: np.ndarray | None = None


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


def animate_picture(picture: FacePicture, frames: int, size: int, rng: np.random.Generator,
                    landmarks: np.ndarray | None = None) -> RealClip:
    """A clip of ``frames`` crops of ``size`` around the picture's face, with slow random camera motion.

    ``landmarks``: the face's (468, 2) landmarks in the picture's own pixels; the clip then carries
    them, moved with the camera, frame by frame (no model runs here).
    """
    image, (x, y, w, h) = picture.load_at_most(size)
    moved = None
    if landmarks is not None:
        factor = w / float(picture.box[2])  # load_at_most shrinks picture and box alike
        points = np.asarray(landmarks, np.float64) * factor
        moved = np.empty((frames, len(points), 2), np.float32)
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
        if moved is not None:
            moved[t] = points @ matrix[:, :2].T + matrix[:, 2]
            if flip:
                moved[t, :, 0] = size - 1 - moved[t, :, 0]
    grey = bool(np.all(image[..., 0] == image[..., 1]))
    if grey and rng.random() < COLOURISE:
        out, grey = colourise(out, rng), False
    return RealClip(out, picture.name, grey, face_fraction=1.0 / margin, landmarks=moved)


DONOR_MIN_SIZE = 0.5  # a donor's face must be at least this share of the target's, in their own pixels
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

    ``landmarks=True``: clips carry face-mesh landmarks (``data.landmarks``; each picture's are
    computed once into the material cache) and ``donor`` offers another person of this source's
    material for a cross-identity blend.
    """

    def __init__(self, names: Sequence[str], frames: int, size: int, *, landmarks: bool = False,
                 donor_pool: int = 8) -> None:
        self.entries = [expand_material([n]) for n in names]
        if not self.entries:
            raise InputError("at least one face picture or video is needed")
        self.names = [n for entry in self.entries for n in entry]
        self.frames = frames
        self.size = size
        self.donor_pool = int(donor_pool)
        still = [n for n in self.names if n not in FACE_VIDEOS]
        self._pictures = dict(zip(still, face_pictures(still), strict=True)) if still else {}
        self._landmarks: dict[str, np.ndarray] = {}
        self._video_landmarks: dict[str, np.ndarray] = {}
        self._candidates: list[tuple[str, np.ndarray]] = []  # (person, landmarks) of each donor face
        self._candidate_names: list[str] = []
        if landmarks:
            self._load_landmarks()

    def _load_landmarks(self) -> None:
        from ..landmarks import picture_landmarks, video_landmarks

        found = picture_landmarks(list(self._pictures)) if self._pictures else {}
        self._landmarks = {name: lm.points for name, lm in found.items() if lm.ok}
        for name in dict.fromkeys(self.names):
            if name in self._landmarks:
                self._candidates.append((material_person(name), self._landmarks[name]))
                self._candidate_names.append(name)
            elif name in FACE_VIDEOS:
                points = video_landmarks(name, self.size)
                self._video_landmarks[name] = points
                good = np.flatnonzero(np.isfinite(points).all(axis=(1, 2)))
                if len(good):  # the middle good frame stands for the video when donors are compared
                    self._candidates.append((material_person(name), points[good[len(good) // 2]]))
                    self._candidate_names.append(name)

    def _native_size(self, name: str) -> float:
        """The face's size in its own pixels (a picture's landmarks, or a video's crop)."""
        if name in self._landmarks:
            return face_size(self._landmarks[name])
        return 0.8 * self.size if name in FACE_VIDEOS else 0.0

    @property
    def people(self) -> set[str]:
        """The people this source's material shows (the identity split's unit)."""
        return {material_person(n) for n in self.names}

    def donor(self, target: RealClip, rng: np.random.Generator) -> Donor | None:
        """Another person's face for a cross-identity blend onto ``target``: nearest by landmarks among a
        random pool of this source's other people (``face_swap.choose_donor``); None when there is no
        other person with landmarks, or the target has none."""
        if target.landmarks is None or not self._candidates:
            return None
        person = material_person(target.name)
        # A donor far softer than the target (a 25-pixel thumbnail onto a sharp portrait) would make
        # "a blurry face" the cue again: donors must have at least half the target's own face size.
        own = self._native_size(target.name)
        keep = [i for i, (p, _) in enumerate(self._candidates)
                if p != person and self._native_size(self._candidate_names[i]) >= DONOR_MIN_SIZE * own]
        if not keep:
            return None
        middle = target.landmarks[len(target.landmarks) // 2]
        chosen = choose_donor(person, middle, [self._candidates[i] for i in keep], rng, self.donor_pool)
        name = self._candidate_names[keep[chosen]]
        if name in self._pictures:
            picture = self._pictures[name]
            image, box = picture.load_at_most(self.size)
            return Donor(image, self._landmarks[name] * (box[2] / float(picture.box[2])), material_person(name))
        points = self._video_landmarks[name]
        good = np.flatnonzero(np.isfinite(points).all(axis=(1, 2)))
        frame = int(good[rng.integers(len(good))])
        return Donor(video_faces(name, self.size).crops[frame], points[frame], material_person(name))

    def __len__(self) -> int:
        return len(self.entries)

    def clip(self, index: int, rng: np.random.Generator) -> RealClip:
        entry = self.entries[index % len(self.entries)]
        name = entry[int(rng.integers(len(entry)))] if len(entry) > 1 else entry[0]
        if name in self._pictures:
            return animate_picture(self._pictures[name], self.frames, self.size, rng, self._landmarks.get(name))
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
        landmarks = self._video_landmarks.get(name)
        landmarks = None if landmarks is None else landmarks[span].copy()
        if landmarks is not None and not np.isfinite(landmarks).all():
            landmarks = None  # a frame the landmark model missed: this clip gets a self-blend
        if rng.random() < 0.5:  # a mirrored take is as real as the original
            frames = frames[:, :, ::-1]
            keypoints = keypoints.copy()
            keypoints[..., 0] = self.size - 1 - keypoints[..., 0]
            keypoints = keypoints[:, [1, 0, 2, 4, 3]]  # left and right swap places
            if landmarks is not None:
                landmarks[..., 0] = self.size - 1 - landmarks[..., 0]
        return RealClip(np.ascontiguousarray(frames), name, face_fraction=0.8, keypoints=keypoints,
                        landmarks=landmarks)


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


def to_tensor_clip(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) normalised as Xception expects: (x/255 - 0.5) / 0.5."""
    contiguous = np.ascontiguousarray(frames)
    if not contiguous.flags.writeable:  # decoded video frames can be read-only; torch wants to own writable memory
        contiguous = contiguous.copy()
    clip = torch.from_numpy(contiguous).permute(0, 3, 1, 2).float()
    return clip / 127.5 - 1.0


# -- the data set -----------------------------------------------------------------------------------
class PseudoFakeDataset(AlternatingPairs):
    """Pairs of items from ``source``: index 2k is the real clip k, index 2k+1 a self-blended fake of
    the very same clip (same motion, same augmentation), so real and fake are exactly balanced and
    the blend is the only thing that tells them apart.  ``group_size = 2`` asks the training sampler
    to keep each pair in one batch, as Self-Blended Images training does: the contrast within a pair
    is what a model trained from scratch learns from quickly.

    ``swap_share``: the share of fakes that are cross-identity blends (``swap_blends``: alpha and/or
    poisson) instead of self-blends; it needs a source with landmarks and a second person
    (``MaterialClipSource(..., landmarks=True)``), else the fake is a self-blend.

    Items follow the clip contract: ``clip`` (T, 3, S, S) normalised, ``label`` (1.0 = fake),
    ``video_id``, ``manipulation`` ("pseudofake", "faceswap_alpha", "faceswap_poisson" or "real")
    and ``mask`` (T, S, S).
    """

    def __init__(self, source: PictureClipSource | MaterialClipSource | CachedRealSource, length: int | None = None, *,
                 seed: int = 0, augment: bool = True, blend: str | BlendFn = "auto",
                 degrade: DegradeOptions | None = None, degrade_ramp_epochs: int = 0,
                 blend_frequency: Mapping[str, float] | None = None, blend_warp: str = "linear",
                 swap_share: float = 0.0, swap_blends: Sequence[str] = SWAP_BLENDS) -> None:
        if not 0 <= swap_share <= 1:
            raise InputError(f"swap_share must be within [0, 1], got {swap_share}")
        if swap_share > 0 and not hasattr(source, "donor"):
            raise InputError("cross-identity blends need a source of face material with landmarks")
        self.swap_share = float(swap_share)
        self.swap_blends = tuple(swap_blends)
        draw_swap(np.random.default_rng(0), self.swap_blends)  # refuses unknown blend kinds now
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

    def __getitem__(self, index: int) -> dict:
        self._check_index(index)
        pair = index // 2
        rng = np.random.default_rng([self.seed, self.epoch, pair])
        real = self.source.clip(pair, rng)
        frames = real.frames
        fake = index % 2 == 1
        masks = np.zeros(frames.shape[:3], np.float32)
        manipulation = "pseudofake" if fake else "real"
        if fake:
            donor = None
            if self.swap_share > 0:
                swap_rng = np.random.default_rng([self.seed, self.epoch, pair, 3])
                if swap_rng.random() < self.swap_share:
                    donor = self.source.donor(real, swap_rng)
            if donor is not None:
                draw = draw_swap(swap_rng, self.swap_blends)
                frames, masks = swap_clip(frames, real.landmarks, donor, swap_rng, draw=draw)
                manipulation = f"faceswap_{draw.blend}"
            else:
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
            "manipulation": manipulation,
            "mask": torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)),
        }
