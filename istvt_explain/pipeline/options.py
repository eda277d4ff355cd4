"""How a video is cut into clips and explained: the options of the video job, checked where they are built.

Torch-free, so the command line builds and checks them before it loads anything heavy; every
command and notebook that runs the job goes through ``PipelineOptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..attribution.catalogue import DEFAULT_METHOD
from ..attribution.registry import resolve_method
from ..errors import InputError
from ..models.precision import DEFAULT_PRECISION, PRECISIONS
from .segments import DEFAULT_MAX_GAP, DEFAULT_MIN_CLIPS

if TYPE_CHECKING:
    import torch

    from ..data.detectors import FaceDetector

DEFAULT_DETECT_EVERY = 3
DEFAULT_MIN_FACE = 40


@dataclass(frozen=True)
class PipelineOptions:
    """How a video is cut into clips and explained.

    Attributes:
        method: explanation method name (``attribution.available_methods()``; an older alias is
            accepted and replaced by the current name).
        stride: frames between clip starts; None = the model's clip length (each frame once).
        face: which face track to follow (0 = the largest face).
        detect_every: run the face detector every n frames and track in between (3, as the command
            line: a third of the detector's cost, and the tracker interpolates faces that move
            normally; 1 for fast motion).
        batch_size: clips per model call (memory against speed); None: 4 on the CPU, 32 on a GPU
            (``attribution.batching.default_batch_size``), halved while the GPU runs out of memory.
        threshold: clip score at or above which a clip counts as fake; the verdict is "fake" when
            the fake clips form at least one manipulated segment (see ``istvt_explain.pipeline.segments``).
        detector: face detector name ("mtcnn", "haar"), or a ready ``FaceDetector``.
        min_face: smallest face the detector looks for, in pixels of the frame shrunk to at most
            640 pixels a side.  Why 40 and not MTCNN's usual 20: faces that small make useless
            crops for the model, and skipping them halves the detector's time (its image pyramid
            starts four times smaller).
        segment_min_clips: the fake evidence a manipulated segment needs, in clip lengths (capped
            at what the face track offers, so a one-clip video can be fake).
        segment_max_gap: how long a stretch without fake evidence (a dip below the threshold, or
            no face) a segment may bridge, in clip lengths.
        precision: the model's arithmetic (``istvt_explain.models.precision``): auto (bf16 on a GPU that
            supports it, fp32 elsewhere), fp32, bf16 or fp16.
        keep_frames: keep the face pass's decoded frames on disk (``data.frame_store``) so the
            crops and the explained video read them instead of decoding the video again; a video
            over the store's budget is decoded again all the same.  False: always decode again.
    """

    method: str = DEFAULT_METHOD
    stride: int | None = None
    face: int = 0
    detect_every: int = DEFAULT_DETECT_EVERY
    batch_size: int | None = None
    threshold: float = 0.5
    detector: str | FaceDetector = "mtcnn"
    min_face: int = DEFAULT_MIN_FACE
    segment_min_clips: int = DEFAULT_MIN_CLIPS
    segment_max_gap: int = DEFAULT_MAX_GAP
    precision: str = DEFAULT_PRECISION
    keep_frames: bool = True

    def clips_per_call(self, device: torch.device | str) -> int:
        """``batch_size``, or the default for ``device`` when it is None."""
        from ..attribution.batching import default_batch_size

        return self.batch_size if self.batch_size is not None else default_batch_size(device)

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", resolve_method(self.method))  # the one check of a method name
        if self.precision not in PRECISIONS:
            raise OptionError("precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name, low in _LOWEST.items():
            value = getattr(self, name)
            if value is not None and value < low:
                raise OptionError(name, f"must be >= {low}, got {value}")
        if not 0.0 <= self.threshold <= 1.0:
            raise OptionError("threshold", f"must be between 0 and 1, got {self.threshold}")


_LOWEST = {"stride": 1, "detect_every": 1, "batch_size": 1, "segment_min_clips": 1, "segment_max_gap": 0,
           "min_face": 12}  # 12 px: MTCNN's smallest window


class OptionError(InputError):
    """An option out of its range; ``option`` names the field (the command line names its flag)."""

    def __init__(self, option: str, problem: str) -> None:
        super().__init__(f"{option} {problem}")
        self.option, self.problem = option, problem
