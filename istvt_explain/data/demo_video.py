"""The ``--demo`` video: a real face clip, then the same shot continuing with a manipulated face.

Built on the spot from the bundled real face material (``data.media``: scikit-image's public
domain astronaut portrait) so that the README's first command needs no data.  The second half
is a self-blended pseudo-fake (``data.pseudofake``, Shiohara & Yamasaki 2022): the face region is
blended with a colour/geometry-jittered copy of itself through a soft face mask, the kind of
manipulation the demo weights were trained to spot.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .faces import crop_square
from .media import make_face_video
from .pseudofake import make_pseudofake_clip
from .tracking import square_boxes
from .video import VideoReader, VideoWriter

DEMO_SIZE = (640, 360)  # (width, height)
DEMO_FPS = 25.0
MIN_BLEND = 0.75  # the demo shows a strong manipulation, not the faintest blends training also uses


@dataclass(frozen=True)
class DemoVideo:
    """The demo file and what it holds: frames [0, fake_start) are real, the rest manipulated."""

    path: Path
    num_frames: int
    fake_start: int
    masks: np.ndarray  # (F, H, W) float32 in [0, 1]: where each frame was manipulated


def make_demo_video(path: str | Path, frames_per_half: int = 24, size: tuple[int, int] = DEMO_SIZE,
                    fps: float = DEMO_FPS, crop_size: int = 160, seed: int = 0) -> DemoVideo:
    """Write the demo video (real half, then manipulated half) to ``path``; H.264 MP4."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix="istvt-demo-") as tmp:
        # One continuous shot (one face track); its second half gets the manipulation.
        shot = make_face_video(Path(tmp) / "shot.mp4", frames=2 * frames_per_half, size=size, fps=fps)
        frames = np.stack(list(VideoReader(shot.path)))
    half = frames_per_half
    fake_frames, masks = manipulate_faces(frames[half:], shot.boxes[half:], crop_size, rng)
    real_frames = frames[:half]
    width, height = size
    all_masks = np.zeros((len(frames), height, width), np.float32)
    all_masks[half:] = masks
    with VideoWriter(path, fps, width, height) as writer:
        for frame in real_frames:
            writer.write(frame)
        for frame in fake_frames:
            writer.write(frame)
    return DemoVideo(path, len(frames), half, all_masks)


def manipulate_faces(frames: np.ndarray, face_boxes: np.ndarray, crop_size: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Self-blend the face of every frame (one jitter drifting slowly over the clip), pasted back.

    ``face_boxes`` (F, 4): the face (x0, y0, x1, y1) in each frame, as a detector gives it; the blend
    is made on the 1.25x square crop around it, as the model sees faces.  Returns the frames and
    the per-pixel blend weight (F, H, W): where each frame was manipulated.
    """
    boxes = square_boxes(face_boxes, 1.25)
    crops = np.stack([crop_square(f, b, crop_size) for f, b in zip(frames, boxes, strict=True)])
    for _ in range(20):  # a clearly visible manipulation: redraw faint blends (deterministic for a seed)
        fake_crops, crop_masks = make_pseudofake_clip(crops, rng)
        if crop_masks.max() >= MIN_BLEND:
            break
    out = frames.copy()
    masks = np.zeros(frames.shape[:3], np.float32)
    h, w = frames.shape[1:3]
    for i, box in enumerate(boxes):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        side = max(1, max(x1 - x0, y1 - y0))
        x1, y1 = x0 + side, y0 + side
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx0 >= cx1 or cy0 >= cy1:
            continue
        fake = cv2.resize(fake_crops[i], (side, side), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(crop_masks[i], (side, side), interpolation=cv2.INTER_LINEAR)
        rows, cols = slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)
        m = mask[rows, cols, None]
        region = out[i, cy0:cy1, cx0:cx1].astype(np.float32)
        out[i, cy0:cy1, cx0:cx1] = (region * (1 - m) + fake[rows, cols] * m).round().clip(0, 255).astype(np.uint8)
        masks[i, cy0:cy1, cx0:cx1] = m[..., 0]
    return out, masks
