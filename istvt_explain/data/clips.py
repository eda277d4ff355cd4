"""From a video file to model input: face crops, T-frame clips, and the boxes to map results back.

``extract_face_clips`` is two passes: ``find_face_tracks`` decodes the video, detects faces (every
k-th frame) and tracks them; ``cut_face_clips`` cuts the square crops of one track.  The second
pass reads the frames the first one kept (``data.frame_store.DecodedFrames``, on disk, not in
memory) when it was given a store, else it decodes the file again.  Only crops (small) are held
in memory, never full frames.  Decoding runs in a background thread, ahead of the detector or the
cropping (``data.background.Prefetch``).  Clips are windows of T consecutive frames with a
face, taken every ``stride`` frames; a video's score is the mean of its clip scores (``video_score``).
The first pass also reads every frame's presentation time (``VideoClips.clock``): no pass of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import InputError
from .background import Prefetch
from .clock import FrameClock, FrameTimes
from .detectors import parallel_detect
from .faces import (
    CROP_MARGIN,
    FaceDetector,
    FaceTrack,
    box_to_crop_coords,
    create_detector,
    crop_square,
    track_faces,
)
from .frame_store import DecodedFrames, frames_kept
from .video import VideoReader


def normalize_clip(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., H, W, 3) -> float32 (..., 3, H, W) scaled as Xception expects: (x/255 - 0.5)/0.5."""
    tensor = torch.as_tensor(np.ascontiguousarray(clip) if isinstance(clip, np.ndarray) else clip)
    if tensor.shape[-1] != 3:
        raise ValueError(f"expected RGB frames (..., H, W, 3), got shape {tuple(tensor.shape)}")
    return (tensor.movedim(-1, -3).float() / 255.0 - 0.5) / 0.5


def video_score(clip_scores: np.ndarray | torch.Tensor | list[float]) -> float:
    """A video's score: the mean of its clip scores (the usual protocol)."""
    scores = np.asarray(torch.as_tensor(clip_scores).detach().cpu(), np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no clip scores to average")
    return float(scores.mean())


def clip_windows(face_frames: np.ndarray, frames: int, stride: int | None = None) -> np.ndarray:
    """Frame indices (K, frames) of windows of consecutive face frames, one every ``stride`` frames.

    When no run of consecutive face frames is long enough, windows run over the face frames in
    order (skipping the frames without a face) so that short or broken tracks still give clips.
    """
    stride = stride or frames
    if frames < 1 or stride < 1:
        raise ValueError(f"frames and stride must be positive, got {frames} and {stride}")
    present = np.asarray(face_frames, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(np.int8), [0]])))
    windows = [np.arange(s, s + frames) for start, stop in zip(edges[::2], edges[1::2], strict=True)
               for s in range(start, stop - frames + 1, stride)]
    if not windows:
        indices = np.flatnonzero(present)
        windows = [indices[s:s + frames] for s in range(0, len(indices) - frames + 1, stride)]
    return np.stack(windows).astype(np.int64) if windows else np.zeros((0, frames), np.int64)


@dataclass
class VideoClips:
    """The face clips of one video, and where they came from.

    Per cropped frame (F of them, the frames used by some clip, in video order):
    ``crops`` uint8 (F, S, S, 3); ``crop_frames`` (F,) their frame numbers; ``keypoints`` (F, 5, 2)
    in crop pixels (NaN when unknown); ``masks`` uint8 (F, S, S) manipulation mask crops or None.
    Per video frame (``num_frames``): ``boxes`` (N, 4) square crop boxes (x0, y0, x1, y1) in
    full-frame pixels, NaN where no face; ``face_boxes`` the smoothed detector boxes; ``face_frames``.
    Per clip: ``frame_indices`` (K, T) into the video; ``clips`` gives the crops as (K, T, S, S, 3).
    ``clock``: when each of the ``num_frames`` frames is shown (``FrameClock``: the stream's
    timestamps); ``fps`` is its rate (declared, or the average for a variable-rate video).
    """

    path: Path
    crops: np.ndarray
    crop_frames: np.ndarray
    keypoints: np.ndarray
    masks: np.ndarray | None
    frame_indices: np.ndarray
    boxes: np.ndarray
    face_boxes: np.ndarray
    face_frames: np.ndarray
    fps: float
    frame_size: tuple[int, int]
    num_frames: int
    track_index: int
    num_tracks: int
    tracks: list = field(default_factory=list)
    """Every face track found (``FaceTrack``), largest first: ``track_index`` is the one cropped here."""
    clock: FrameClock | None = None
    """When each frame is shown; None only for clips made by hand (then index / ``fps``)."""

    @property
    def image_size(self) -> int:
        return int(self.crops.shape[1])

    @property
    def clip_positions(self) -> np.ndarray:
        """(K, T) positions of each clip's frames in ``crops``."""
        return np.searchsorted(self.crop_frames, self.frame_indices)

    @property
    def clips(self) -> np.ndarray:
        """uint8 (K, T, S, S, 3)."""
        return self.crops[self.clip_positions]

    @property
    def clip_masks(self) -> np.ndarray | None:
        """float32 (K, T, S, S) in [0, 1], or None without a mask video."""
        return None if self.masks is None else self.masks[self.clip_positions].astype(np.float32) / 255.0

    def tensor(self) -> torch.Tensor:
        """The clips as model input: float32 (K, T, 3, S, S), normalised."""
        return normalize_clip(self.clips)


def _choose_track(tracks: list, face: int | None, path: Path):
    index = 0 if face is None else int(face)
    if not 0 <= index < len(tracks):
        raise InputError(f"{path}: face track {index} asked for, but the video has {len(tracks)} "
                         f"(0 = largest)")
    return index, tracks[index]


def _mask_frames(mask_path: Path, size: tuple[int, int]):
    """Grey mask frames resized to the video's (H, W); then zeros if the mask video is shorter."""
    for frame in VideoReader(mask_path):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if grey.shape != size:
            grey = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        yield grey
    while True:
        yield np.zeros(size, np.uint8)


def _decoded(reader: VideoReader, convert: Callable[[int], bool], limit: int | None,
             times: FrameTimes | None = None, keep: DecodedFrames | None = None
             ) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, RGB frame) for the first ``limit`` frames, RGB only where ``convert(index)`` (else None).

    Every frame must be decoded (a codec decodes in order), but converting to RGB costs as much
    again, so the passes that look at some frames convert those alone.  ``times`` records each
    yielded frame's timestamp on the way; ``keep`` keeps every frame's RGB for the later passes
    (then every frame is converted, while the store still keeps) and is finished when the pass
    ends normally.  Run in a ``Prefetch`` thread.
    """
    for index, frame in enumerate(reader.frames()):
        if limit is not None and index >= limit:
            break
        if times is not None:
            times.add(frame)
        wanted, keeping = convert(index), keep is not None and keep.keeping
        rgb = reader.to_rgb(frame) if wanted or keeping else None
        if keeping:
            keep.append(rgb)
        yield index, rgb if wanted else None
    if keep is not None:
        keep.finish()


def _frames_of(found: FoundFaces, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, RGB frame or None) for every frame of the face pass, RGB where ``wanted``.

    From the face pass's kept frames when it kept them all (no decoding), else by decoding again.
    """
    kept = found.decoded
    if kept is not None and kept.holds(found.num_frames):
        for index in range(found.num_frames):
            yield index, kept.read(index) if wanted[index] else None
    else:
        yield from _decoded(VideoReader(found.path), wanted.__getitem__, found.num_frames)


@dataclass
class FoundFaces:
    """What the face pass learnt of a video: its face tracks (largest first) and its clock.

    ``decoded``: the pass's RGB frames when they were kept (``DecodedFrames``; its ``complete``
    says whether every frame is there), so the crops of any track, and the explained video, are
    made without decoding the file again.
    """

    path: Path
    tracks: list[FaceTrack]
    clock: FrameClock
    num_frames: int
    frame_size: tuple[int, int]
    decoded: DecodedFrames | None = None


def find_face_tracks(video_path: str | os.PathLike, *, detector: str | FaceDetector = "mtcnn",
                     detect_every: int = 1, max_frames: int | None = None, smooth_sigma: float = 2.0,
                     max_gap: int = 12, detect_workers: int | None = None,
                     keep: DecodedFrames | None = None) -> FoundFaces:
    """The face pass: decode once, detect (every k-th frame), track; keep the frames in ``keep``.

    Raises ``InputError`` naming the file when it is unreadable or has no face at all.
    """
    path = Path(video_path)
    reader = VideoReader(path)
    if isinstance(detector, str):
        detector = create_detector(detector)
    detect_every = max(1, int(detect_every))
    limit = max_frames if max_frames else None
    if keep is not None:
        keep.start(reader.frame_size, min(reader.frame_count, limit) if limit else reader.frame_count)

    times = reader.frame_times()
    with Prefetch(_decoded(reader, lambda i: i % detect_every == 0, limit, times, keep), name="decode") as decoded:
        # the detector works (on several frames at once where there are cores) while the next frames decode
        detections = parallel_detect((rgb for _, rgb in decoded), detector, detect_workers)
    num_frames = len(detections)
    clock = times.clock()  # the decoding thread has finished: every frame it yielded is recorded
    tracks = track_faces(detections, max_gap=max(max_gap, 2 * detect_every), smooth_sigma=smooth_sigma)
    if not tracks:
        raise InputError(f"{path}: no face found in any of its {num_frames} frames ({detector.name} detector)")
    return FoundFaces(path=path, tracks=tracks, clock=clock, num_frames=num_frames, frame_size=reader.frame_size,
                      decoded=keep)


def cut_face_clips(found: FoundFaces, *, face: int | None = None, image_size: int = 300, frames: int = 6,
                   stride: int | None = None, margin: float = CROP_MARGIN, max_clips: int | None = None,
                   mask_path: str | os.PathLike | None = None) -> VideoClips:
    """The clips of one face track of ``found``: square crops of ``image_size``, ``frames`` per clip.

    Reads the face pass's kept frames when it kept them all, else decodes the file a second time.
    Raises ``InputError`` for a track that does not exist or is seen in too few frames for a clip.
    """
    path, num_frames = found.path, found.num_frames
    track_index, track = _choose_track(found.tracks, face, path)
    windows = clip_windows(track.present, frames, stride)
    if len(windows) == 0:
        raise InputError(f"{path}: a face in only {track.num_frames} of {num_frames} frames; "
                         f"{frames} are needed for one clip")
    if max_clips and len(windows) > max_clips:
        windows = windows[np.unique(np.linspace(0, len(windows) - 1, max_clips).round().astype(int))]
    boxes = track.crop_boxes(margin)
    crop_frames = np.unique(windows)
    wanted = np.zeros(num_frames, bool)
    wanted[crop_frames] = True

    masks_in = _mask_frames(Path(mask_path), found.frame_size) if mask_path is not None else None
    crops, masks, points = [], [], []
    with Prefetch(_frames_of(found, wanted), name="decode") as decoded:
        for index, rgb in decoded:
            mask_frame = next(masks_in) if masks_in is not None else None
            if rgb is None:
                continue
            crops.append(crop_square(rgb, boxes[index], image_size))
            points.append(box_to_crop_coords(track.keypoints[index], boxes[index], image_size))
            if mask_frame is not None:
                masks.append(crop_square(mask_frame, boxes[index], image_size))
    if len(crops) != len(crop_frames):
        raise InputError(f"{path}: the video changed or ended early while reading it a second time")
    return VideoClips(
        path=path, crops=np.stack(crops), crop_frames=crop_frames, keypoints=np.stack(points),
        masks=np.stack(masks) if masks_in is not None else None, frame_indices=windows,
        boxes=boxes, face_boxes=track.boxes, face_frames=track.present.copy(), fps=found.clock.fps,
        frame_size=found.frame_size, num_frames=num_frames, track_index=track_index,
        num_tracks=len(found.tracks), tracks=found.tracks, clock=found.clock,
    )


def extract_face_clips(video_path: str | os.PathLike, *, image_size: int = 300, frames: int = 6,
                       stride: int | None = None, detector: str | FaceDetector = "mtcnn",
                       face: int | None = None, detect_every: int = 1, margin: float = CROP_MARGIN,
                       max_frames: int | None = None, max_clips: int | None = None,
                       mask_path: str | os.PathLike | None = None, smooth_sigma: float = 2.0,
                       max_gap: int = 12, detect_workers: int | None = None,
                       keep: DecodedFrames | None = None, keep_frames: bool = True,
                       frames_folder: str | os.PathLike | None = None) -> VideoClips:
    """Detect, track and crop the faces of a video; return its clips of ``frames`` crops.

    ``face``: which face track (None = the largest).  ``detect_every``: run the detector on every
    k-th frame and interpolate between.  ``max_frames``: look at the first frames only.
    ``max_clips``: keep that many clips, evenly spread.  ``mask_path``: a mask video of the same
    frames (FaceForensics++ ``masks/``), cropped with the same boxes.  ``detect_workers``: frames
    detected at once (None: a quarter of the cores, at most 4; ``detectors.parallel_detect``).
    The video is decoded once: the crops read the face pass's frames back from a ``DecodedFrames``.
    ``keep``: one the caller holds, so that a later pass (another face, the explained video) reads
    them too; without it, one that lives for this call, in ``frames_folder`` (None: the system's
    temporary folder).  ``keep_frames=False`` decodes the video a second time instead (the way it
    was, for comparisons).
    Raises ``InputError`` naming the file when it is unreadable, has no face, or too few face frames.
    """
    with frames_kept(keep, keep_frames, frames_folder) as kept:
        found = find_face_tracks(video_path, detector=detector, detect_every=detect_every, max_frames=max_frames,
                                 smooth_sigma=smooth_sigma, max_gap=max_gap, detect_workers=detect_workers, keep=kept)
        return cut_face_clips(found, face=face, image_size=image_size, frames=frames, stride=stride,
                              margin=margin, max_clips=max_clips, mask_path=mask_path)
