"""Helpers for the end-to-end tests (pipeline, render, command line): generated media, checks with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

import istvt_explain as ie
from istvt_explain.data.media import FaceVideo, make_face_video
from istvt_explain.data.video import VideoWriter

FRAMES = 12          # two clips of the tiny preset's 6 frames
SIZE = (320, 240)    # (width, height)
FPS = 25.0


def tiny_weights(path: Path, seed: int = 0) -> Path:
    """A randomly initialised tiny model saved as an istvt-explain checkpoint (stands in for trained weights)."""
    from support import PRESET, tiny_model  # torch only when a test needs weights

    ie.save_checkpoint(tiny_model(image_size=PRESET, frames=PRESET, depth=PRESET, seed=seed), path)
    return path


def face_video(path: Path, frames: int = FRAMES, visible: np.ndarray | None = None,
               size: tuple[int, int] = SIZE) -> FaceVideo:
    return make_face_video(path, frames=frames, size=size, fps=FPS, visible=visible)


def faceless_video(path: Path, frames: int = FRAMES) -> Path:
    """A textured background with no face anywhere."""
    w, h = SIZE
    y, x = np.mgrid[0:h, 0:w]
    with VideoWriter(path, FPS, w, h) as writer:
        for t in range(frames):
            img = np.stack([(x + 3 * t) % 256, (y * 2) % 256, np.full_like(x, 120)], -1).astype(np.uint8)
            writer.write(img)
    return path


def probe(path: Path) -> dict:
    """Codec, frame count, frame rate and size of a video, read with PyAV (decoding every frame)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        rate = Fraction(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return {"codec": codec, "fps": float(rate), "frames": len(frames), "width": frames[0].shape[1],
            "height": frames[0].shape[0], "pixels": frames}


def variable_rate_video(path: Path, frames: list[np.ndarray], times_ms: list[int], last_ms: int) -> Path:
    """H.264 with the given presentation times (milliseconds, in a 1/1000 time base), written with
    PyAV alone, as a phone or a screen recorder writes them: frame k is shown from ``times_ms[k]``
    to the next time, the last one for ``last_ms``."""
    base = Fraction(1, 1000)
    shown = dict(zip(times_ms, np.diff([*times_ms, times_ms[-1] + last_ms]).tolist(), strict=True))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)  # only a nominal rate: every frame has its own time
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.time_base = stream.codec_context.time_base = base

        def mux(packets) -> None:
            for packet in packets:
                packet.duration = shown[int(packet.pts)]
                container.mux(packet)

        for frame, time_ms in zip(frames, times_ms, strict=True):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts, picture.time_base = time_ms, base
            mux(stream.encode(picture))
        mux(stream.encode())
    return path


def frame_times(path: Path) -> tuple[list[float], float, float]:
    """Every frame's presentation time read back with PyAV (seconds from the first); how long the video
    plays by its frames (the last frame's time plus its duration) and by its container (the duration a
    player shows)."""
    with av.open(str(path)) as container:
        frames = [(f.time, float(f.duration * f.time_base)) for f in container.decode(video=0)]
        played = container.duration / av.time_base
    times = [t - frames[0][0] for t, _ in frames]
    return times, times[-1] + frames[-1][1], played


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def box_contrast(original: np.ndarray, rendered: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """Mean absolute change inside ``box`` and outside it (both restricted to the original frame area,
    and outside the colour bar that the overlay draws in the top-right corner)."""
    h, w = original.shape[:2]
    diff = np.abs(rendered[:h, :w].astype(np.float32) - original.astype(np.float32)).mean(axis=2)
    diff[: max(h // 5, 40), w - max(w // 4, 60):] = np.nan  # the colour bar's corner
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = np.zeros((h, w), bool)
    inside[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = True
    ring = np.zeros((h, w), bool)  # keep away from the box outline
    ring[max(y0 - 6, 0):min(y1 + 6, h), max(x0 - 6, 0):min(x1 + 6, w)] = True
    return float(np.nanmean(diff[inside])), float(np.nanmean(diff[~ring]))


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Every name in ``folder`` (hidden temporary files included) other than ``keep``."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def truncated_faststart(source: Path, path: Path, keep: float = 0.6) -> Path:
    """``source`` re-encoded with its index first (faststart), then cut: it opens, but decoding stops early."""
    frames = read_frames(source)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=int(FPS))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path
