"""Analyses of a trained detector: hard samples, sensitivity to degradations, per-head attention, explorer.

Computation lives in ``hard_samples``, ``sensitivity``, ``perturbations`` and ``attention``;
``gallery`` and ``paper`` write files through ``render``; ``explorer`` is the notebook front end
(ipywidgets is imported only there).  Names resolve on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["attention", "clipsets", "common", "explorer", "gallery", "hard_samples", "paper", "perturbations",
                "scores_io", "sensitivity"],
    submod_attrs={
        "attention": ["HeadAttention", "head_attention"],
        "clipsets": ["LabelledClips", "clips_from_dataset", "to_uint8_frames"],
        "hard_samples": ["ClipScore", "ExplainedSample", "HardSamples", "clips_from_array", "clips_from_videos",
                         "explain_hard_samples", "rank_hard_samples", "score_clips"],
        "perturbations": ["PERTURBATIONS", "Perturbation", "available_perturbations", "get_perturbation"],
        "scores_io": ["load_evaluation", "scores_from_records"],
        "sensitivity": ["SensitivityResult", "SensitivityRow", "run_sensitivity"],
    },
)
