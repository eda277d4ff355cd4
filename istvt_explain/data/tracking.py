"""Face tracks: link per-frame detections into one track per face, fill gaps, smooth the boxes.

Tracking is offline (the whole sequence of detections is known): detections are linked
greedily by overlap or nearness, boxes are interpolated between detections (so a detector
run on every k-th frame suffices) and smoothed over time with a Gaussian so that crops do not
jitter.  A gap longer than ``max_gap`` frames means the face is gone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from .detectors import CROP_MARGIN, Detection


@dataclass
class FaceTrack:
    """One face followed through a video.

    ``boxes``: (num_frames, 4) smoothed face boxes (x0, y0, x1, y1), NaN where the face is absent.
    ``keypoints``: (num_frames, 5, 2) smoothed keypoints, NaN where absent or unknown (Haar).
    ``present``: frames that have a box; ``detected``: frames where the detector itself saw it.
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    present: np.ndarray
    detected: np.ndarray
    score: float

    @property
    def num_frames(self) -> int:
        return int(self.present.sum())

    @property
    def mean_size(self) -> float:
        sizes = np.maximum(self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1])
        return float(np.nanmean(sizes)) if self.num_frames else 0.0

    @property
    def weight(self) -> float:
        """Size times presence: how the "largest face" default ranks tracks."""
        return self.mean_size * self.num_frames

    def summary(self) -> dict:
        """Where and how large the face is, as plain JSON types (the report's ``face_tracks``).

        ``ranges``: inclusive [first, last] runs of frames with the face, 0-based; ``size``: mean
        face box side in pixels; ``detections``: frames where the detector itself saw it.
        """
        ranges = frame_ranges(self.present)
        return {"first_frame": ranges[0][0] if ranges else None, "last_frame": ranges[-1][1] if ranges else None,
                "frames": self.num_frames, "ranges": ranges, "size": round(self.mean_size, 1),
                "detections": int(self.detected.sum()), "score": round(self.score, 4)}

    def crop_boxes(self, margin: float = CROP_MARGIN) -> np.ndarray:
        """Square crop boxes (num_frames, 4), ``margin`` times the face box's longer side; NaN where absent."""
        return square_boxes(self.boxes, margin)


def frame_ranges(present: np.ndarray) -> list[list[int]]:
    """[F F T T T F T] -> [[2, 4], [6, 6]]: the inclusive runs of True, 0-based."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(present, np.int8), [0]])))
    return [[int(a), int(b) - 1] for a, b in zip(edges[::2], edges[1::2], strict=True)]


def square_boxes(boxes: np.ndarray, margin: float = CROP_MARGIN) -> np.ndarray:
    """Square boxes around the centres of ``boxes`` (..., 4), side ``margin * max(w, h)``."""
    boxes = np.asarray(boxes, np.float64)
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    half = margin * np.maximum(boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]) / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _affinity(a: np.ndarray, b: np.ndarray) -> float:
    """How well box ``b`` continues box ``a``: IoU, or nearness of centres for fast motion; 0 = no link."""
    size_a, size_b = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    if not 0.5 <= size_b / max(size_a, 1e-6) <= 2.0:
        return 0.0
    centre_dist = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    near = 1.0 - centre_dist / (0.75 * max(size_a, size_b))
    return max(_iou(a, b), near, 0.0)


def _last(track: dict[int, Detection]) -> int:
    """The last frame of a track (frames are added in increasing order): O(1), unlike ``max``."""
    return next(reversed(track))


def _link(detections: Sequence[Sequence[Detection] | None], max_gap: int) -> list[dict[int, Detection]]:
    """Greedy frame-to-frame association; each track is a {frame: detection} dict."""
    finished: list[dict[int, Detection]] = []
    active: list[dict[int, Detection]] = []
    for index, found in enumerate(detections):
        if found is None:
            continue
        still = []
        for track in active:
            (finished if index - _last(track) > max_gap else still).append(track)
        active = still
        pairs = sorted(((_affinity(track[_last(track)].box, det.box), t, d)
                        for t, track in enumerate(active) for d, det in enumerate(found)), reverse=True)
        used_tracks, used_dets = set(), set()
        for aff, t, d in pairs:
            if aff <= 0 or t in used_tracks or d in used_dets:
                continue
            active[t][index] = found[d]
            used_tracks.add(t)
            used_dets.add(d)
        active.extend({index: det} for d, det in enumerate(found) if d not in used_dets)
    return _rejoin(finished + active)


def _rejoin(tracks: list[dict[int, Detection]]) -> list[dict[int, Detection]]:
    """Join a track to an earlier one that ended before it began at a compatible place.

    A face that leaves the picture (or is missed for longer than ``max_gap``) and comes back
    stays one track; the frames in between are simply without a face.
    """
    tracks = sorted(tracks, key=lambda track: next(iter(track)))
    joined: list[dict[int, Detection]] = []
    for track in tracks:
        start = next(iter(track))
        candidates = [(_affinity(old[_last(old)].box, track[start].box), i)
                      for i, old in enumerate(joined) if _last(old) < start]
        best = max(candidates, default=(0.0, -1))
        if best[0] > 0:
            joined[best[1]].update(track)  # later frames: the order stays increasing
        else:
            joined.append(dict(track))
    return joined


def _fill(values: np.ndarray, observed: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Linear interpolation of (num_frames, ...) ``values`` from ``observed`` frames onto ``present`` ones."""
    out = np.full_like(values, np.nan)
    obs = np.flatnonzero(observed)
    flat = values.reshape(len(values), -1)
    filled = out.reshape(len(values), -1)
    targets = np.flatnonzero(present)
    for column in range(flat.shape[1]):
        good = obs[np.isfinite(flat[obs, column])]
        if len(good):
            filled[targets, column] = np.interp(targets, good, flat[good, column])
    return out


def _smooth_runs(values: np.ndarray, present: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time within each run of consecutive present frames."""
    if sigma <= 0:
        return values
    out = values.copy()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start > 1:
            out[start:stop] = gaussian_filter1d(values[start:stop], sigma, axis=0, mode="nearest")
    return out


def _build(observations: dict[int, Detection], ran: np.ndarray, max_gap: int, sigma: float) -> FaceTrack:
    num_frames = len(ran)
    frames = np.array(sorted(observations))
    present = np.zeros(num_frames, bool)
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        if b - a <= max_gap:
            present[a:b + 1] = True
    present[frames] = True
    # Hold the first/last box over neighbouring frames where the detector did not run.
    ran_at = np.flatnonzero(ran)
    before = ran_at[ran_at < frames[0]]
    after = ran_at[ran_at > frames[-1]]
    present[(before[-1] + 1 if len(before) else 0):frames[0]] = True
    present[frames[-1] + 1:(after[0] if len(after) else num_frames)] = True

    detected = np.zeros(num_frames, bool)
    detected[frames] = True
    raw_boxes = np.full((num_frames, 4), np.nan)
    raw_points = np.full((num_frames, 5, 2), np.nan)
    for f, det in observations.items():
        raw_boxes[f] = det.box
        if det.keypoints is not None:
            raw_points[f] = det.keypoints
    # Smooth centre and size rather than corners: the box must not breathe when the face moves.
    centre_size = np.stack([(raw_boxes[:, 0] + raw_boxes[:, 2]) / 2, (raw_boxes[:, 1] + raw_boxes[:, 3]) / 2,
                            raw_boxes[:, 2] - raw_boxes[:, 0], raw_boxes[:, 3] - raw_boxes[:, 1]], axis=1)
    centre_size = _smooth_runs(_fill(centre_size, detected, present), present, sigma)
    cx, cy, w, h = centre_size.T
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    points = _smooth_runs(_fill(raw_points, detected, present), present, sigma)
    score = float(np.mean([d.score for d in observations.values()]))
    return FaceTrack(boxes=boxes, keypoints=points, present=present, detected=detected, score=score)


def track_faces(detections: Sequence[Sequence[Detection] | None], *, max_gap: int = 12,
                smooth_sigma: float = 2.0, min_detections: int = 1) -> list[FaceTrack]:
    """Link per-frame detections into face tracks, largest (size x presence) first.

    ``detections[i]`` is the list of faces found in frame ``i``, or ``None`` where the detector
    did not run (detection on every k-th frame).  ``max_gap``: the longest run of frames (in
    frames) bridged by interpolation.  ``smooth_sigma``: the Gaussian's width in frames.
    Tracks with fewer than ``min_detections`` detections are dropped (spurious boxes).
    """
    ran = np.array([d is not None for d in detections], bool)
    tracks = [_build(obs, ran, max_gap, smooth_sigma)
              for obs in _link(detections, max_gap) if len(obs) >= min_detections]
    return sorted(tracks, key=lambda t: -t.weight)
