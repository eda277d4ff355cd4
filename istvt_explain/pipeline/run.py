"""Video file -> faces -> clips -> model -> explanations -> per-frame maps and scores.

The one library call behind ``istvt-explain VIDEO`` and the notebooks: it returns a typed
``VideoAnalysis`` (``analysis``).  Rendering is a separate pass (``heatmap_video``), which keeps
this function useful for batch scoring where nobody wants a video.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..attribution.batching import explain_batches
from ..attribution.explanation import Explanation
from ..data.clips import FoundFaces, VideoClips, cut_face_clips, find_face_tracks, normalize_clip
from ..data.detectors import FaceDetector, detector_for
from ..data.frame_store import DecodedFrames, frames_kept
from ..data.video import VideoReader
from ..errors import InputError, MethodOutputError
from ..models.device import model_device
from .analysis import VideoAnalysis, aggregate_frames
from .options import PipelineOptions
from .timing import StageTimer

StageProgressFn = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as work advances (stage "faces" or "explain")."""


def analyze_video(
    video_path: str | Path,
    model: torch.nn.Module,
    options: PipelineOptions | None = None,
    progress: StageProgressFn | None = None,
    timer: StageTimer | None = None,
    keep: DecodedFrames | None = None,
) -> VideoAnalysis:
    """Find the face, classify every clip and explain it; aggregate to per-frame maps and scores.

    The video is decoded once: its frames are kept on disk for the crops (``keep``, a
    ``DecodedFrames`` the caller holds when it renders the explained video afterwards from the same
    frames; otherwise one that lives for this call).
    Raises ``InputError`` for a file that is not a readable video and for a video in which no
    face is found long enough to make one clip.
    """
    options = options or PipelineOptions()
    timer = timer or StageTimer()
    with frames_kept(keep, options.keep_frames) as kept, timer.stage("faces"):
        found = find_video_faces(video_path, options, progress, kept, model_device(model))
        video = face_clips(found, options.face, model.config, options)
    if progress:
        progress("faces", video.num_frames, video.num_frames)
    return analyze_clips(video, model, options, progress, timer)


def find_video_faces(video_path: str | Path, options: PipelineOptions, progress: StageProgressFn | None = None,
                     keep: DecodedFrames | None = None, device: torch.device | str = "cpu") -> FoundFaces:
    """The face pass (decode once, detect, track), with ``options``' detector; frames kept in ``keep``."""
    path = Path(video_path)
    if progress:  # the face pass reports no steps: show the stage, sized by the container's count
        progress("faces", 0, max(VideoReader(path).frame_count, 1))
    return find_face_tracks(path, detect_every=options.detect_every, keep=keep,
                            detector=face_detector(options, device))


def face_detector(options: PipelineOptions, device: torch.device | str = "cpu") -> FaceDetector:
    """``options``' detector for a model on ``device``.

    On a GPU, MTCNN is the PyTorch port (``data.mtcnn_torch``: the same networks and weights, the
    same faces to the pixel, tested) run there in batches, so the CPU is not what the GPU waits for;
    ``mtcnn-torch`` asked for by name runs on the model's device too.
    """
    device = torch.device(device)
    name = options.detector
    if isinstance(name, str) and (name == "mtcnn-torch" or (name == "mtcnn" and device.type == "cuda")):
        return detector_for("mtcnn-torch", min_face=options.min_face, device=device)
    return detector_for(name, min_face=options.min_face)


def face_clips(found: FoundFaces, face: int, config, options: PipelineOptions) -> VideoClips:
    """The model's clips of face track ``face`` (0: the largest) of a face pass."""
    return cut_face_clips(found, face=face, image_size=config.image_size, frames=config.frames,
                          stride=options.stride or config.frames)


def find_face_clips(video_path: str | Path, image_size: int, frames: int, options: PipelineOptions) -> VideoClips:
    """The face pass of ``analyze_video`` alone (decode, detect, track, crop): no model needed.

    Why apart: ``scan`` runs it in worker processes for the next videos while the model works.
    """
    with frames_kept(None, options.keep_frames) as kept:
        found = find_video_faces(video_path, options, keep=kept)
        return cut_face_clips(found, face=options.face, image_size=image_size, frames=frames,
                              stride=options.stride or frames)


def analyze_clips(video: VideoClips, model: torch.nn.Module, options: PipelineOptions | None = None,
                  progress: StageProgressFn | None = None, timer: StageTimer | None = None,
                  explanation: Explanation | None = None) -> VideoAnalysis:
    """The rest of ``analyze_video`` once the face clips are cut: classify, explain, aggregate.

    ``explanation``: the clips' explanation when the caller made it already (``scan`` explains the
    clips of several videos in one model call); it must hold ``video``'s clips, in order.
    """
    options = options or PipelineOptions()
    timer = timer or StageTimer()
    config = model.config
    path = Path(video.path)
    face_count = int(video.face_frames.sum())
    if face_count == 0:
        raise InputError(f"{path}: no face found in any of its {video.num_frames} frames")
    if len(video.frame_indices) == 0:
        raise InputError(f"{path}: a face is visible in {face_count} frames, but never in "
                         f"{config.frames} consecutive frames (one clip)")

    if explanation is None:
        explanation = _explain_clips(video, model, options, progress, timer)
    else:
        _require_finite_scores(explanation, path, 0)
    height, width = (int(v) for v in video.frame_size)  # (H, W), as VideoReader.frame_size
    analysis = VideoAnalysis(
        video_path=path, fps=float(video.fps), width=width, height=height, num_frames=int(video.num_frames),
        method=options.method, threshold=options.threshold, explanation=explanation,
        frame_indices=np.asarray(video.frame_indices, dtype=np.int64),
        boxes=np.asarray(video.boxes, dtype=np.float64), face_frames=np.asarray(video.face_frames, dtype=bool),
        frame_probability=np.empty(0), frame_importance=np.empty(0), frame_maps=np.empty(0),
        timings=timer.seconds, segment_min_clips=options.segment_min_clips,
        segment_max_gap=options.segment_max_gap,
        face_tracks=[track.summary() for track in video.tracks], track_index=int(video.track_index),
        clock=video.clock,
    )
    aggregate_frames(analysis)
    return analysis


def _explain_clips(video: VideoClips, model: torch.nn.Module, options: PipelineOptions,
                   progress: StageProgressFn | None, timer: StageTimer) -> Explanation:
    """Explain the clips in batches, each cut from the shared crops (clips overlap when stride < T).

    Every method runs its own forward pass (the classification comes with the explanation), so
    the "explain" stage includes the model; ``benchmarks/bench_e2e.py`` times a plain forward apart.
    """
    device = model_device(model)

    def to_input(positions) -> torch.Tensor:
        # uint8 to the device, scaled there: a quarter of the bytes to copy, and no CPU pass over them.
        # On a GPU from page-locked memory, so the copy is asynchronous and overlaps the work still
        # queued for the previous batch (``explain_batches`` makes the next input before it waits).
        host = torch.from_numpy(video.crops[positions])
        if device.type == "cuda":
            host = host.pin_memory()
        return normalize_clip(host.to(device, non_blocking=True))

    explained = 0  # clips done before the batch that runs: a broken map is named by its clip in the video

    def on_batch(done: int, total: int, part: Explanation) -> None:
        nonlocal explained
        _require_finite_scores(part, video.path, done - part.batch_size)
        explained = done
        if progress:
            progress("explain", done, total)

    with timer.stage("explain"):
        try:
            return explain_batches(model, video.clip_positions, options.method, batch_size=options.clips_per_call(device),
                                   to_input=to_input, on_batch=on_batch, precision=options.precision)
        except MethodOutputError as err:
            raise err.at(str(video.path), explained) from None
        except InputError:
            raise
        except ValueError as err:  # a method's option or precision this input or device refuses
            raise InputError(str(err).splitlines()[0]) from None
        except Exception as err:  # noqa: BLE001 - a plugin's bug, or a built-in's fault: that video's error
            raise MethodFailedError(f"{video.path}: explanation method {options.method!r} failed: "
                                    f"{one_line(err)}") from None


class MethodFailedError(InputError):
    """An explanation method raised (a plugin's bug, a built-in's fault): one line naming it and the error.

    Why an ``InputError``: it costs the video it happened on (``scan`` records it and goes on; exit 2
    at the command line), never a traceback.  Only the message is kept, no traceback or frame.
    """


def one_line(err: BaseException) -> str:
    """``TypeName: first line of the message`` (the type name alone when the message is empty)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


class ModelOutputError(InputError):
    """The model scored a clip NaN or infinite: broken weights or a numeric fault, never a verdict."""


def _require_finite_scores(part: Explanation, path: Path, first: int) -> None:
    """Refuse non-finite clip scores: they would otherwise read as "real" with every frame skipped."""
    scores = part.fake_probability.detach()
    bad = torch.nonzero(~torch.isfinite(scores.float().reshape(len(scores), -1)).all(dim=1)).flatten()
    if len(bad):
        raise ModelOutputError(f"{path}: the model gave clip {first + int(bad[0])} a NaN or infinite score; "
                               "its weights or this input are broken, so no verdict is given")
