"""Dense face landmarks (468 points) from MediaPipe's face-mesh model, run by OpenCV's DNN module.

Why: a cross-identity blend (``data.face_swap``) warps one person's face onto another's by their
landmarks and cuts it out along the landmarks' hull; the detector's 5 keypoints cannot say where a
jaw or a brow is.  The model (``face_landmark.tflite``, Apache-2.0) ships inside the ``mediapipe``
wheel; the project reads it out of one pinned, hash-checked release file of that wheel
(``data.material.archives``, key ``mediapipe``), fetched by ``pip download`` like the face pictures,
and runs it with ``cv2.dnn.readNetFromTFLite``: no mediapipe install, no new runtime.

The model takes a 192 x 192 RGB crop in [0, 1] (NCHW for OpenCV) around a face and returns 468
(x, y, z) points in crop pixels and a face score (a logit).  ``FaceLandmarker`` crops twice: first
around a face box, then around the first landmarks turned upright (as MediaPipe's own tracker does).

Landmarks of training material are computed once per picture and kept in a JSON file beside the
fetched release files (``landmark_cache``), not on every item.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ._files import write_atomic

INPUT_SIZE = 192
POINTS = 468
MODEL_ARCHIVE = "mediapipe"
MODEL_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
MODEL_ENV = "ISTVT_EXPLAIN_LANDMARK_MODEL"  # a local face_landmark.tflite instead of the fetched wheel's
CROP_SCALE = 1.5  # MediaPipe crops 1.5 x the face's box
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 33, 263  # mesh indices of the outer eye corners (the roll)
MIN_SCORE = 0.5  # face probability below which the landmarks are not trusted


@dataclass(frozen=True)
class Landmarks:
    """468 (x, y) points in image pixels, and the model's face probability for them."""

    points: np.ndarray
    score: float

    @property
    def ok(self) -> bool:
        return bool(self.score >= MIN_SCORE and np.isfinite(self.points).all())


def _crop_matrix(centre: tuple[float, float], side: float, angle: float) -> np.ndarray:
    """Affine (2, 3) from image pixels to the model's crop: ``side`` around ``centre``, turned by
    ``angle`` degrees so that the face is upright in the crop."""
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), INPUT_SIZE / side)
    matrix[:, 2] += (INPUT_SIZE / 2 - centre[0], INPUT_SIZE / 2 - centre[1])
    return matrix


class FaceLandmarker:
    """MediaPipe's face-mesh model, run by OpenCV.  ``model_path``: a ``face_landmark.tflite``; by
    default ``$ISTVT_EXPLAIN_LANDMARK_MODEL``, else the file inside the fetched mediapipe wheel."""

    def __init__(self, model_path: str | os.PathLike | None = None) -> None:
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise InputError(f"landmark model {path} is missing (run `istvt-explain fetch-material`)")
        try:
            self.net = cv2.dnn.readNetFromTFLite(str(path))
        except cv2.error:
            raise InputError(f"landmark model {path} is not a TFLite file OpenCV can read") from None
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.path = path

    def _run(self, image: np.ndarray, matrix: np.ndarray) -> Landmarks:
        crop = cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        self.net.setInput((crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        out = {name: value for name, value in zip(self.outputs, self.net.forward(self.outputs), strict=True)}
        flat = next(v for v in out.values() if v.size == POINTS * 3).reshape(POINTS, 3)[:, :2]
        logit = float(next(v for v in out.values() if v.size == 1).ravel()[0])
        inverse = cv2.invertAffineTransform(matrix)
        points = flat @ inverse[:, :2].T + inverse[:, 2]
        return Landmarks(points.astype(np.float32), float(1 / (1 + np.exp(-logit))))

    def __call__(self, image: np.ndarray, box: Iterable[float], passes: int = 2) -> Landmarks:
        """Landmarks of the face in ``box`` (x, y, width, height) of an RGB uint8 (H, W, 3) picture."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"landmarks need an RGB picture (H, W, 3), got shape {image.shape}")
        x, y, w, h = (float(v) for v in box)
        result = self._run(image, _crop_matrix((x + w / 2, y + h / 2), CROP_SCALE * max(w, h), 0.0))
        for _ in range(passes - 1):  # re-crop around the landmarks, upright (MediaPipe's tracking step)
            pts = result.points
            low, high = pts.min(axis=0), pts.max(axis=0)
            eye_line = pts[RIGHT_EYE_OUTER] - pts[LEFT_EYE_OUTER]
            angle = float(np.degrees(np.arctan2(eye_line[1], eye_line[0])))
            result = self._run(image, _crop_matrix((low + high) / 2, CROP_SCALE * float(max(high - low)), angle))
        return result


def default_model_path() -> Path:
    """``$ISTVT_EXPLAIN_LANDMARK_MODEL``, else the model written out of the fetched mediapipe wheel
    (``InputError`` naming the fetch command when that wheel is not fetched)."""
    local = os.environ.get(MODEL_ENV)
    if local:
        return Path(local).expanduser()
    from .material.archives import member_file

    return member_file(MODEL_ARCHIVE, MODEL_MEMBER)


# -- the cache of landmarks of training material --------------------------------------------------
def _model_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def landmark_cache(entries: dict[str, tuple[Callable[[], np.ndarray], tuple[float, float, float, float]]],
                   cache_file: Path, landmarker: FaceLandmarker | None = None,
                   progress: bool = True) -> dict[str, Landmarks]:
    """Landmarks of named pictures ``{name: (load picture, face box)}``, computed once and kept in
    ``cache_file`` (JSON, keyed by the model file's hash, the name and the box): later runs read them."""
    cache_file = Path(cache_file)
    stored: dict = {}
    if cache_file.is_file():
        try:
            stored = json.loads(cache_file.read_text())
        except (OSError, ValueError):
            stored = {}
    landmarker_ = landmarker
    digest = stored.get("model")
    out: dict[str, Landmarks] = {}
    missing = []
    for name, (_, box) in entries.items():
        row = stored.get("faces", {}).get(name)
        if row is not None and row.get("box") == [float(v) for v in box]:
            out[name] = Landmarks(np.asarray(row["points"], np.float32).reshape(POINTS, 2), float(row["score"]))
        else:
            missing.append(name)
    if landmarker_ is None and (missing or digest is None):
        landmarker_ = FaceLandmarker()
    if landmarker_ is not None:
        current = _model_digest(landmarker_.path)
        if digest != current:  # another model: every stored row is stale
            stored, out, missing = {"model": current, "faces": {}}, {}, list(entries)
    if not missing:
        return out
    from tqdm.auto import tqdm

    for name in tqdm(missing, desc="face landmarks", unit="face", disable=not progress):
        load, box = entries[name]
        found = landmarker_(load(), box)
        out[name] = found
        stored.setdefault("faces", {})[name] = {"box": [float(v) for v in box], "score": round(found.score, 4),
                                                "points": np.round(found.points, 2).ravel().tolist()}
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(cache_file, json.dumps(stored))
    return out


def picture_landmarks(names: Iterable[str], progress: bool = True) -> dict[str, Landmarks]:
    """Landmarks of shipped face pictures (``data.material`` names), in each picture's own pixels,
    from the cache file ``landmarks.json`` in the material cache (computed there once)."""
    from .material.archives import cache_dir
    from .material.catalogue import face_pictures

    entries = {p.name: (p.load, tuple(float(v) for v in p.box)) for p in face_pictures(list(names))}
    return landmark_cache(entries, cache_dir() / "landmarks.json", progress=progress)


def video_landmarks(name: str, size: int, progress: bool = True) -> np.ndarray:
    """(N, 468, 2) landmarks of every face crop of a shipped video (``video_faces(name, size)``), in crop
    pixels, NaN where the model found no face; computed once and kept in the material cache."""
    from .material.archives import cache_dir
    from .material.catalogue import video_faces

    faces = video_faces(name, size)
    landmarker = FaceLandmarker()
    path = cache_dir() / "landmarks" / f"video-{name}-{size}-{_model_digest(landmarker.path)}.npy"
    if path.is_file():
        stored = np.load(path)
        if stored.shape == (len(faces.crops), POINTS, 2):
            return stored
    from tqdm.auto import tqdm

    side = 0.8 * size  # run-time crops hold the face box at 0.8 of their side
    box = ((size - side) / 2, (size - side) / 2, side, side)
    points = np.full((len(faces.crops), POINTS, 2), np.nan, np.float32)
    for i, crop in enumerate(tqdm(faces.crops, desc=f"landmarks of {name}", unit="frame", disable=not progress)):
        found = landmarker(crop, box)
        if found.ok:
            points[i] = found.points
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _npy_bytes(points))
    return points


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
