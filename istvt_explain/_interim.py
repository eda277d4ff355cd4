"""Stand-ins for contracts of issues 3 (data) and 4 (explain) until their modules land.

Why this file exists: the end-to-end command (issue 6) was written in parallel with the
data pipeline and the explainability layer.  Every name below is taken from the real
module when it can be imported, and only otherwise from the minimal stand-in defined
here, so switching over needs no change elsewhere; once issues 3 and 4 are merged this
file shrinks to the imports (or goes, with its users importing the real modules).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from .errors import InputError
from .explain.capture import AttentionCapture
from .explain.explanation import Explanation

# -- video I/O (issue 3: data.video) -------------------------------------------------------------


class _VideoReader:
    """Streams RGB uint8 frames with PyAV; raises InputError for anything that is not a video."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory, not a video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError, ValueError) as err:
            raise InputError(f"{self.path}: not a readable video ({_first_line(err)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: holds no video stream")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        self.rate = Fraction(rate)
        self.fps = float(rate)
        self.width = stream.codec_context.width
        self.height = stream.codec_context.height
        self.frame_count = int(stream.frames or 0)
        if not self.width or not self.height:
            self._container.close()
            raise InputError(f"{self.path}: video stream has no frame size")

    def __iter__(self) -> Iterator[np.ndarray]:
        count = 0
        try:
            self._container.seek(0)
            for frame in self._container.decode(video=0):
                count += 1
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as err:
            if count == 0:
                raise InputError(f"{self.path}: corrupt or truncated video ({_first_line(err)})") from None
            return  # a truncated tail: keep what decoded
        if count == 0:
            raise InputError(f"{self.path}: no decodable frames (empty or truncated video)")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> _VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _VideoWriter:
    """H.264 yuv420p MP4 written to a temporary name and renamed on a clean exit."""

    def __init__(self, path: str | Path, fps: float | Fraction, width: int, height: int) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.part.mp4")
        self._container = av.open(str(self._tmp), mode="w", format="mp4")
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(100000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": "veryfast", "crf": "23"}

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def __enter__(self) -> _VideoWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
        if exc_type is None:
            self._tmp.replace(self.path)
        else:
            self._tmp.unlink(missing_ok=True)


# -- faces and clips (issue 3: data.clips) -------------------------------------------------------


@dataclass
class _VideoClips:
    clips: np.ndarray          # (K, T, S, S, 3) uint8
    frame_indices: np.ndarray  # (K, T) int
    boxes: np.ndarray          # (num_frames, 4) x0, y0, x1, y1 square crop boxes, NaN where no face
    face_frames: np.ndarray    # (num_frames,) bool
    fps: float
    frame_size: tuple[int, int]  # (width, height)
    num_frames: int


_CASCADE: cv2.CascadeClassifier | None = None


def _detect_face(rgb: np.ndarray) -> np.ndarray | None:
    """Largest frontal face as (x, y, w, h) in full-frame pixels (Haar cascade on a small copy)."""
    global _CASCADE
    if _CASCADE is None:
        _CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    scale = min(1.0, 320 / max(rgb.shape[:2]))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    found = _CASCADE.detectMultiScale(gray, 1.1, 5, minSize=(24, 24))
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda b: b[2] * b[3])
    return np.array([x, y, w, h], dtype=np.float64) / scale


def _square_box(face: np.ndarray, margin: float = 1.25) -> np.ndarray:
    x, y, w, h = face
    side = max(w, h) * margin
    cx, cy = x + w / 2, y + h / 2
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def _crop(rgb: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square box resized to size x size; parts outside the frame are black."""
    x0, y0, x1, y1 = box
    m = np.array([[size / (x1 - x0), 0, -x0 * size / (x1 - x0)], [0, size / (y1 - y0), -y0 * size / (y1 - y0)]])
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _extract_face_clips(video_path: str | Path, image_size: int, frames: int, stride: int,
                        detector: str = "haar", face: int = 0, detect_every: int = 1) -> _VideoClips:
    del detector, face  # the stand-in follows the largest face only
    crops: list[np.ndarray | None] = []
    boxes: list[np.ndarray] = []
    with _VideoReader(video_path) as reader:
        last: np.ndarray | None = None
        width, height, fps = reader.width, reader.height, reader.fps
        for i, rgb in enumerate(reader):
            if i % max(1, detect_every) == 0 or last is None:
                found = _detect_face(rgb)
                last = None if found is None else _square_box(found)
            if last is None:
                crops.append(None)
                boxes.append(np.full(4, np.nan))
            else:
                crops.append(_crop(rgb, last, image_size))
                boxes.append(last)
    n = len(crops)
    face_frames = np.array([c is not None for c in crops], dtype=bool)
    starts: list[int] = []
    i = 0
    while i < n:  # runs of consecutive face frames; clips every `stride`, the last one aligned to the run's end
        if not face_frames[i]:
            i += 1
            continue
        j = i
        while j < n and face_frames[j]:
            j += 1
        if j - i >= frames:
            run = list(range(i, j - frames + 1, stride))
            if run[-1] + frames < j:
                run.append(j - frames)
            starts.extend(run)
        i = j
    index = np.array([[s + k for k in range(frames)] for s in starts], dtype=np.int64).reshape(-1, frames)
    clip_arr = np.zeros((len(starts), frames, image_size, image_size, 3), np.uint8)
    for c, row in enumerate(index):
        for k, f in enumerate(row):
            clip_arr[c, k] = crops[f]
    return _VideoClips(clip_arr, index, np.stack(boxes) if boxes else np.zeros((0, 4)), face_frames, fps,
                       (width, height), n)


def _normalize_clip(clips: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1], as Xception expects."""
    t = torch.from_numpy(np.ascontiguousarray(clips)).float().div_(127.5).sub_(1.0)
    return t.movedim(-1, -3)


# -- demo material (issue 3: data.media, data.pseudofake) ----------------------------------------


def _make_face_video(path: str | Path, frames: int = 24, width: int = 640, height: int = 360,
                     fps: float = 25.0, seed: int = 0) -> Path:
    """The astronaut's face (scikit-image, public domain) drifting over a textured background."""
    from skimage.data import astronaut

    rng = np.random.default_rng(seed)
    face = astronaut()[20:260, 110:340]  # head and shoulders, 240 x 230
    side = int(min(height, width) * 0.6)
    face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([60 + 40 * np.sin(xx / 37.0), 70 + 30 * np.cos(yy / 23.0), 90 + 0 * xx], -1)
    base = (base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
    with _VideoWriter(path, fps, width, height) as writer:
        for i in range(frames):
            phase = 2 * np.pi * i / max(frames, 1)
            x = int((width - side) / 2 + (width - side) / 3 * np.sin(phase))
            y = int((height - side) / 2 + (height - side) / 4 * np.cos(phase))
            img = base.copy()
            img[y:y + side, x:x + side] = face
            writer.write(img)
    return Path(path)


def _make_pseudofake_clip(frames: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Self-blend: a colour-shifted, slightly shrunk copy of the face pasted through a soft ellipse."""
    t, s = frames.shape[:2]
    mask = np.zeros((s, s), np.float32)
    cv2.ellipse(mask, (s // 2, int(s * 0.55)), (int(s * 0.26), int(s * 0.33)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), s * 0.04)
    shift = rng.uniform(-25, 25, 3).astype(np.float32)
    scale = rng.uniform(0.94, 0.98)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), 0.0, scale)
    fake = np.empty_like(frames)
    for k in range(t):
        src = cv2.warpAffine(frames[k], m, (s, s), borderMode=cv2.BORDER_REFLECT).astype(np.float32) + shift
        blend = frames[k] * (1 - mask[..., None]) + src.clip(0, 255) * mask[..., None]
        fake[k] = blend.round().clip(0, 255).astype(np.uint8)
    return fake, np.repeat(mask[None], t, axis=0)


# -- explanations (issue 4: explain.explain) ------------------------------------------------------


def _explain(model: torch.nn.Module, clips: torch.Tensor, method: str = "relevance",
             target: int | None = None, **options) -> Explanation:
    """Attention rollout or gradient-weighted relevance (Chefer et al. 2021), class row only."""
    if method not in ("attention", "rollout", "relevance"):
        raise ValueError(f"method {method!r} is not available yet; choose attention, rollout or relevance")
    gradients = method == "relevance"
    with AttentionCapture(model, gradients=gradients) as cap:
        with torch.set_grad_enabled(gradients):
            logits = model(clips)
            score = logits if logits.dim() == 1 else logits[:, target or 0]
            if gradients:
                score.sum().backward()
        layers = cap.layers_captured()
        if method == "attention":
            layers = layers[-1:]
        b, t1 = clips.shape[0], clips.shape[1] + 1
        n1 = cap.attention(layers[0], "spatial").shape[-1]
        r = torch.zeros(b, t1, n1, device=clips.device)
        r[:, 0, 0] = 1.0
        for layer in reversed(layers):
            at, as_ = cap.attention(layer, "temporal"), cap.attention(layer, "spatial")
            if gradients:
                at = (cap.gradient(layer, "temporal") * at).clamp_min(0)
                as_ = (cap.gradient(layer, "spatial") * as_).clamp_min(0)
            at, as_ = at.mean(2).float(), as_.mean(2).float()  # (B, N+1, T+1, T+1), (B, T+1, N+1, N+1)
            u = torch.einsum("bts,btsk->btk", r, as_)
            v = torch.einsum("btk,bktj->bjk", u, at)
            r = (r + v) / 2 if method == "rollout" else r + v
    grid = int(round((n1 - 1) ** 0.5))
    spatial = r[:, 1:, 1:].reshape(b, t1 - 1, grid, grid).detach()
    temporal = r[:, 1:, 1:].sum(-1).detach()
    logits = logits.detach()
    prob = torch.sigmoid(logits) if logits.dim() == 1 else logits.softmax(-1)[:, target or 0]
    return Explanation(spatial, temporal, prob, logits, method, target, dict(options))


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__


# -- resolution: the real module when it exists ---------------------------------------------------

try:
    from .data.video import VideoReader, VideoWriter
except ImportError:
    VideoReader, VideoWriter = _VideoReader, _VideoWriter  # type: ignore[misc,assignment]
try:
    from .data.clips import extract_face_clips, normalize_clip
except ImportError:
    extract_face_clips, normalize_clip = _extract_face_clips, _normalize_clip  # type: ignore[assignment]
try:
    from .data.media import make_face_video
except ImportError:
    make_face_video = _make_face_video  # type: ignore[assignment]
try:
    from .data.pseudofake import make_pseudofake_clip
except ImportError:
    make_pseudofake_clip = _make_pseudofake_clip  # type: ignore[assignment]
try:
    from .explain import explain
except ImportError:
    explain = _explain  # type: ignore[assignment]

__all__ = ["VideoReader", "VideoWriter", "explain", "extract_face_clips", "make_face_video",
           "make_pseudofake_clip", "normalize_clip"]
