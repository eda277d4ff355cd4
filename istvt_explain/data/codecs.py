"""Encode frames with a lossy codec and decode them again, in memory.

What a video goes through between a camera and an analyst: the training degradations
(``train.degrade``) and the sensitivity analysis (``analysis.perturbations``) both use these.
"""

from __future__ import annotations

import io

import av
import cv2
import numpy as np


def jpeg_roundtrip(frame: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB uint8 frame as JPEG at ``quality`` and decode it again."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def h264_roundtrip(frames: np.ndarray, crf: int, fps: int = 25) -> np.ndarray:
    """Encode RGB uint8 frames (T, H, W, 3) with libx264 at ``crf`` (yuv420p) in memory and decode them.

    The same codec and chroma subsampling as the videos an analyst receives: block edges, smoothed
    colour and lost fine texture inside the face and outside it alike.
    """
    t, h, w = frames.shape[:3]
    pad_h, pad_w = h % 2, w % 2  # yuv420p needs even sides
    padded = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge") if pad_h or pad_w else frames
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "veryfast", "tune": "zerolatency"}
        for frame in padded:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != t:  # never expected from libx264; keep the clip rather than fail a training step
        return frames
    return np.ascontiguousarray(np.stack(decoded)[:, :h, :w])
