"""Video files in and out with PyAV: streaming RGB frames, H.264 that browsers play.

Reading decodes one frame at a time (a long video is never held in memory) and applies the
display rotation the file declares, so frames come out the way a player shows them.  Writing
goes to a temporary name that is renamed on a clean close: an interrupted run leaves nothing.
The container follows the output's extension (``containers.VIDEO_CONTAINERS``: .mp4, .mkv, .mov),
and the finished file gets the permissions the umask gives any new file (not the temporary
file's private 0600).

When each frame is shown comes from the stream's presentation timestamps (``clock.FrameTimes``
reads them off the frames of a pass that decodes them anyway); ``VideoWriter`` can write frames
at given times, so a variable-frame-rate video's explained copy keeps its clock.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from ..errors import InputError
from ._files import public_mode, temporary_prefix
from .clock import FrameTimes
from .containers import container_for

# A frame larger than this (pixels) is refused: 8192 x 8192 RGB is already 200 MB per frame.
MAX_FRAME_PIXELS = 8192 * 8192
# Demuxers that mean "a still picture", not a video.
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe", "tiff_pipe", "apng")


def _first_line(err: BaseException) -> str:
    """A short reason: FFmpeg's own words without the error number and file name it repeats."""
    if isinstance(err, av.FFmpegError) and err.strerror:
        return str(err.strerror)
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__


class VideoReader:
    """Stream the frames of a video file as RGB ``uint8`` arrays of shape (H, W, 3).

    Attributes (known after opening; the first frame is decoded to check the file):
    ``fps`` (float), ``frame_count`` (int, the container's count or an estimate from the duration),
    ``width``/``height`` (after rotation), ``rotation`` (degrees counter-clockwise, as declared).

    Every problem with the file (missing, a directory, empty, not a video, a still picture,
    truncated or corrupt, a frame larger than ``max_pixels``) raises ``InputError`` naming it.
    Iterating twice re-opens the file, so a reader can be iterated any number of times.

    ``fps`` is what the container declares; when each frame is shown comes from its timestamps:
    give the frames of a pass to ``reader.frame_times().add`` and ask it for the ``clock()``.
    ``end_time``: when the last frame stops being shown, as the container says (pts seconds), or None.
    """

    def __init__(self, path: str | os.PathLike, *, max_pixels: int = MAX_FRAME_PIXELS) -> None:
        self.path = Path(path)
        self.max_pixels = int(max_pixels)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory, not a video file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file, not a video")
        container = self._open()
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.fps = float(rate) if rate else 25.0
            first = self._first_frame(container)
            self.rotation = int(round((first.rotation or 0) / 90.0)) * 90 % 360
            raw_w, raw_h = first.width, first.height
            self.frame_count = self._count(container, stream)
            self._declared = int(stream.frames or 0)  # exact where the container indexes its frames
            self.end_time = self._end(container, stream)
        finally:
            container.close()
        if raw_w * raw_h > self.max_pixels:
            raise InputError(f"{self.path}: frame size {raw_w}x{raw_h} is larger than the limit of "
                             f"{self.max_pixels:,} pixels")
        self.width, self.height = (raw_h, raw_w) if self.rotation in (90, 270) else (raw_w, raw_h)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the frames this reader yields."""
        return self.height, self.width

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, {self.fps:.3g} fps, "
                f"~{self.frame_count} frames, rotation {self.rotation})")

    def _open(self) -> av.container.InputContainer:
        try:
            container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise InputError(f"{self.path}: not a readable video ({_first_line(err)})") from None
        if container.format.name in _IMAGE_FORMATS:
            container.close()
            raise InputError(f"{self.path}: is a still image, not a video")
        if not container.streams.video:
            container.close()
            raise InputError(f"{self.path}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container

    def _first_frame(self, container: av.container.InputContainer) -> av.VideoFrame:
        try:
            for frame in container.decode(video=0):
                return frame
        except (av.FFmpegError, OSError) as err:
            raise InputError(f"{self.path}: corrupt or truncated video ({_first_line(err)})") from None
        raise InputError(f"{self.path}: video has no decodable frames (empty or truncated)")

    @staticmethod
    def _end(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
        """When the stream stops showing its last frame, in the frames' own clock (pts seconds), or None."""
        if stream.duration is not None and stream.start_time is not None and stream.time_base is not None:
            return float((stream.start_time + stream.duration) * stream.time_base)
        if container.duration is not None and container.start_time is not None:
            return (container.start_time + container.duration) / av.time_base
        return None

    def frame_times(self) -> FrameTimes:
        """A recorder for the frames of one pass (``FrameTimes.add``), then their ``clock()``."""
        return FrameTimes(self.fps, self.end_time)

    @staticmethod
    def _count(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
        if stream.frames:
            return int(stream.frames)
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            return 0
        rate = stream.average_rate or stream.guessed_rate
        return max(1, int(round(seconds * float(rate)))) if rate else 0

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.rotation // 90))
        return rgb

    def frames(self) -> Iterator[av.VideoFrame]:
        """The raw PyAV frames (no RGB conversion): for passes that look at only some frames."""
        container = self._open()
        try:
            index = 0
            try:
                for frame in container.decode(video=0):
                    yield frame
                    index += 1
            except (av.FFmpegError, OSError) as err:
                raise InputError(f"{self.path}: corrupt or truncated video at frame {index} "
                                 f"({_first_line(err)})") from None
            # Data cut off after an index at the start (MP4 "faststart") decodes silently short.
            if self._declared and index < 0.9 * self._declared - 1:
                raise InputError(f"{self.path}: truncated video: {index} of the {self._declared} frames "
                                 "it declares could be decoded")
        finally:
            container.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames():
            yield self._to_rgb(frame)

    def to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Convert one frame from :meth:`frames` to RGB ``uint8`` (H, W, 3), rotation applied."""
        return self._to_rgb(frame)

    def read_frame(self, index: int, pts: np.ndarray | None = None) -> np.ndarray:
        """Frame ``index`` as RGB (H, W, 3).

        With the frames' own timestamps (``FrameClock.pts``, read by an earlier pass) it seeks to
        the key frame before it and decodes from there, so a frame near the end of a long video
        does not cost decoding the whole video; the frame is recognised by its pts, never guessed
        from a time.  Without them, or where the seek does not reach it, it decodes from the start.
        """
        if pts is not None and 0 <= index < len(pts):
            found = self._seek_frame(int(pts[index]))
            if found is not None:
                return found
        return self.read_frames([index])[0]

    def _seek_frame(self, target: int) -> np.ndarray | None:
        """The frame whose pts is ``target``, by seeking; None when the stream does not lead to it."""
        container = self._open()
        try:
            stream = container.streams.video[0]
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts > target:
                    return None
                if frame.pts == target:
                    return self._to_rgb(frame)
            return None
        except (av.FFmpegError, OSError):
            return None
        finally:
            container.close()

    def read_frames(self, indices: Iterable[int]) -> np.ndarray:
        """The frames at ``indices`` (any order, repeats allowed) as (N, H, W, 3), in one pass.

        Only the requested frames are converted and kept. An index past the end raises ``InputError``.
        """
        wanted = [int(i) for i in indices]
        if not wanted:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        if min(wanted) < 0:
            raise IndexError(f"negative frame index {min(wanted)}")
        needed = set(wanted)
        last = max(needed)
        found: dict[int, np.ndarray] = {}
        seen = 0
        for index, frame in enumerate(self.frames()):
            seen = index + 1
            if index in needed:
                found[index] = self._to_rgb(frame)
            if index >= last:
                break
        missing = needed.difference(found)
        if missing:
            raise InputError(f"{self.path}: frame {min(missing)} requested but the video has only "
                             f"{seen} frames")
        return np.stack([found[i] for i in wanted])


class VideoWriter:
    """Write RGB ``uint8`` frames as H.264 (yuv420p) that browsers and notebooks play.

    The container follows ``path``'s extension (.mp4, .mkv, .mov); any other raises ``InputError``
    before anything is written.  Used as a context manager.  Odd sizes are padded by one edge pixel (yuv420p needs even sides).
    Frames go to a temporary file next to ``path``, renamed over ``path`` only when the block ends
    without an exception; on an exception the temporary file is removed.

    ``crf``: x264 quality, 0 lossless .. 51 worst; 18 looks lossless, 23 is x264's default.

    By default frame k is shown at k / ``fps`` (constant rate).  ``times`` (seconds, increasing) and
    ``duration`` give every frame its own presentation time instead, as a variable-frame-rate
    input has them: each frame is written once, at its time, and shown until the next one (the
    last until ``duration``), so nothing is duplicated or dropped and the file lasts as long as
    the input.  ``fps`` is then only the stream's nominal rate (x264's rate control and the rate
    the container declares).  Times are rounded to the container's clock (1/90000 s; Matroska's
    1/1000 s), at least one tick apart.
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int, *, crf: int = 20,
                 preset: str = "veryfast", times: Sequence[float] | np.ndarray | None = None,
                 duration: float | None = None) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.times = None if times is None else np.asarray(times, dtype=np.float64).reshape(-1)
        if self.times is not None:
            if self.times.size == 0 or not np.isfinite(self.times).all() or (np.diff(self.times) <= 0).any():
                raise ValueError("times must be finite, increasing seconds, one per frame")
            last = self.times[-1] + 1.0 / fps if duration is None else float(duration)
            if not last > self.times[-1]:
                raise ValueError(f"duration {duration} must end after the last frame's time {self.times[-1]}")
            self.duration: float | None = last
        else:
            self.duration = None
        self.path = Path(path)
        self.format = container_for(self.path)
        self.fps = float(fps)
        self.frame_width, self.frame_height = int(width), int(height)
        self.width, self.height = self.frame_width + self.frame_width % 2, self.frame_height + self.frame_height % 2
        self.crf, self.preset = int(crf), preset
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._tmp: str | None = None

    def __enter__(self) -> VideoWriter:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        if self._container is not None:
            return
        if self.path.parent and not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the folder {self.path.parent} does not exist")
        fd, self._tmp = tempfile.mkstemp(prefix=temporary_prefix(self.path.name), suffix=".part",
                                         dir=self.path.parent)
        os.close(fd)
        try:
            os.chmod(self._tmp, public_mode())  # mkstemp's 0600 would survive the rename
            self._container = av.open(self._tmp, mode="w", format=self.format)
            rate = Fraction(self.fps).limit_denominator(1001)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = self.width, self.height
            stream.pix_fmt = "yuv420p"
            options = {"crf": str(self.crf), "preset": self.preset}
            if self.times is not None:
                self._time_stamps(stream)
                # No B-frames: packets then come in presentation order, so each carries its own
                # frame's duration, and MP4 (which times samples by decoding order) ends where the
                # last frame does; with B-frames an MP4 of uneven times came out shorter than its frames.
                options["bf"] = "0"
            stream.options = options
            self._stream = stream
        except BaseException:
            self.abort()
            raise

    def _time_stamps(self, stream: av.video.stream.VideoStream) -> None:
        """Give the stream a fine clock and turn ``times`` into strictly increasing ticks of it."""
        base = Fraction(1, 1000 if self.format == "matroska" else 90000)  # Matroska counts milliseconds
        stream.time_base = stream.codec_context.time_base = base
        ticks = np.round(self.times / float(base)).astype(np.int64)
        steps = np.arange(ticks.size)
        ticks = np.maximum.accumulate(ticks - steps) + steps  # at least one tick apart
        end = max(int(round(self.duration / float(base))), int(ticks[-1]) + 1)
        self._base, self._ticks = base, ticks
        self._ticks_shown = dict(zip(ticks.tolist(), np.diff(np.append(ticks, end)).tolist(), strict=True))

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        """Mux encoded packets; with ``times``, each carries how long its frame is shown (the last one's
        duration would otherwise be one nominal frame)."""
        for packet in packets:
            if self.times is not None and packet.pts is not None:
                shown = self._ticks_shown.get(int(packet.pts))
                if shown is not None:
                    packet.duration = shown
            self._container.mux(packet)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB ``uint8`` frame of shape (height, width, 3) (or (H, W) grayscale)."""
        if self._container is None:
            self.open()
        frame = np.asarray(frame)
        if frame.ndim == 2:
            frame = np.repeat(frame[:, :, None], 3, axis=2)
        if frame.shape != (self.frame_height, self.frame_width, 3):
            raise ValueError(f"frame of shape {frame.shape} does not fit a {self.frame_width}x"
                             f"{self.frame_height} video (expected (H, W, 3))")
        if frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8, got {frame.dtype}")
        if (self.width, self.height) != (self.frame_width, self.frame_height):
            frame = np.pad(frame, ((0, self.height - self.frame_height), (0, self.width - self.frame_width),
                                   (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        if self.times is not None:
            if self.frames_written >= self._ticks.size:
                raise ValueError(f"frame {self.frames_written} written, but only {self._ticks.size} times were given")
            video_frame.pts, video_frame.time_base = int(self._ticks[self.frames_written]), self._base
        self._mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file to ``path``."""
        if self._container is None:
            return
        try:
            self._mux(self._stream.encode())
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
            self._tmp = None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left as it was."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the temporary file is removed anyway
                pass
            self._container = None
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, *, crf: int = 20) -> Path:
    """Write an iterable of RGB frames (all the same size) as an H.264 MP4; returns ``path``."""
    iterator = iter(frames)
    try:
        first = np.asarray(next(iterator))
    except StopIteration:
        raise ValueError("no frames to write") from None
    with VideoWriter(path, fps, first.shape[1], first.shape[0], crf=crf) as writer:
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return Path(path)
