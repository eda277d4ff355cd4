"""Analyses of a trained detector: hard samples, sensitivity to degradations, per-head attention, explorer.

Computation lives in ``hard_samples``, ``sensitivity``, ``perturbations`` and
``attention``; ``gallery`` and ``paper`` write files through ``render``;
``explorer`` is the notebook front end (ipywidgets is imported only there).
"""

from .attention import HeadAttention, head_attention
from .clipsets import LabelledClips, clips_from_dataset, to_uint8_frames
from .hard_samples import (
    ClipScore,
    ExplainedSample,
    HardSamples,
    clips_from_array,
    clips_from_videos,
    explain_hard_samples,
    rank_hard_samples,
    score_clips,
)
from .perturbations import PERTURBATIONS, Perturbation, available_perturbations, get_perturbation
from .scores_io import load_evaluation, scores_from_records
from .sensitivity import SensitivityResult, SensitivityRow, run_sensitivity

__all__ = [
    "PERTURBATIONS", "ClipScore", "ExplainedSample", "HardSamples", "HeadAttention", "LabelledClips",
    "Perturbation", "SensitivityResult", "SensitivityRow", "available_perturbations", "clips_from_array",
    "clips_from_dataset", "clips_from_videos", "explain_hard_samples", "get_perturbation",
    "head_attention", "load_evaluation", "rank_hard_samples", "run_sensitivity", "scores_from_records",
    "score_clips", "to_uint8_frames",
]
