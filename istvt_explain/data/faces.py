"""Faces in frames: detectors, tracks and square crops (the public face of detectors/tracking).

Crop boxes follow the ISTVT authors: a square ``margin`` (1.25) times the face box's longer
side, centred on the face, resized to the model's input size.  Parts of a box outside the frame
are filled with black, so a box near the border keeps its scale and centre.
"""

from __future__ import annotations

import cv2
import numpy as np

from .detectors import (
    CROP_MARGIN,
    DETECTORS,
    KEYPOINT_NAMES,
    Detection,
    FaceDetector,
    HaarDetector,
    MTCNNDetector,
    create_detector,
    detect_faces,
)
from .tracking import FaceTrack, square_boxes, track_faces

__all__ = [
    "CROP_MARGIN", "DETECTORS", "KEYPOINT_NAMES", "Detection", "FaceDetector", "FaceTrack", "HaarDetector",
    "MTCNNDetector", "create_detector", "crop_square", "detect_faces", "square_boxes", "track_faces",
]


def crop_square(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square ``box`` (x0, y0, x1, y1) of ``frame``, resized to (size, size); black outside the frame."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    side = max(1, max(x1 - x0, y1 - y0))
    x1, y1 = x0 + side, y0 + side
    h, w = frame.shape[:2]
    patch = frame[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    if patch.shape[:2] != (side, side):
        canvas = np.zeros((side, side) + frame.shape[2:], frame.dtype)
        if patch.size:
            canvas[max(0, y0) - y0:max(0, y0) - y0 + patch.shape[0],
                   max(0, x0) - x0:max(0, x0) - x0 + patch.shape[1]] = patch
        patch = canvas
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interpolation)


def box_to_crop_coords(points: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Map frame pixel coordinates (..., 2) into the (size x size) crop of ``box``."""
    side = max(box[2] - box[0], box[3] - box[1])
    return (np.asarray(points, np.float64) - np.array([box[0], box[1]])) * (size / side)
