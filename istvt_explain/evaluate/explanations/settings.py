"""How a judging run measures: every default in one place, readable without torch (the command line's help
shows them), and the committed judging runs with exactly these (docs/judging.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..statistics import ALPHA

TOKEN_REMOVALS = ("road", "blur", "mean")
"""How tokens can be removed for deletion and insertion (``faithfulness``): each one's whole-clip effect is
measured in every run; the verdicts use ``JudgingSettings.token_removals`` (by default ROAD only)."""
FRAME_REMOVALS = ("frozen", "blur")
"""How frames are removed for the temporal test (``temporal``)."""
ROBUSTNESS_RADIUS = 0.02
"""L-infinity radius of the robustness perturbations, in the model's normalised units (2.5 grey levels)."""
BASELINE_CLIPS = {"integrated-gradients": 24, "occlusion": 24, "saliency": 48, "frame-ablation": 48}
"""The Captum baselines cost tens of forward passes per clip: judged on a stated subset by default."""
BASELINE_CHECK_CLIPS = {"integrated-gradients": 6, "occlusion": 6, "frame-ablation": 12}
"""Clips of the sanity and robustness checks (which explain each clip 5 to 10 times over) for the
costliest baselines, in place of ``sanity_clips`` and ``robustness_clips``: integrated gradients takes
about 10 s per map of one clip on two CPU cores."""


@dataclass(frozen=True)
class JudgingSettings:
    """How a judging run measures.

    Attributes:
        steps: points of each deletion / insertion curve after its start.
        top_k: frames removed in the temporal test.
        seed: every random draw of the run (rankings, noise, bootstrap) follows from it.
        sanity: run the sanity criterion (its randomised models make it the slowest).
        sanity_clips, robustness_clips: clips those criteria explain again and again, taken in turn from
            every person.
        independent: also run Adebayo's independent randomisation (reported; the verdict reads the
            cascading one).
        method_check_clips: per method name, the clips of its sanity and robustness checks (in place of
            ``sanity_clips`` and ``robustness_clips`` where fewer).
        full_cascade_for_costly: run the whole cascade (a map after every randomised stage) for methods
            that cost many passes too.  By default they randomise every stage at once: the same randomised
            model as the cascade's last step, which is the one the verdict reads, for a seventh of the cost.
        robustness_radius: the L-infinity radius of the robustness perturbations (normalised units).
        token_removals: how tokens are removed for the deletion and insertion verdicts.  ROAD alone by
            default: it stays near the data, where blurring or greying a face is itself evidence to a
            deepfake detector (the run measures every removal's whole-clip effect and reports it).
        frame_removals: how frames are removed for the temporal verdict.
        alpha: family-wise error rate of the run's verdicts (Holm).
        method_options: per method name, options on top of ``judge.judging_options``.
        method_clips: per method name, a stated subset size for the costly baselines.
        batch_size: clips per model call.
    """

    steps: int = 4
    top_k: int = 1
    seed: int = 0
    sanity: bool = True
    sanity_clips: int = 12
    robustness_clips: int = 12
    independent: bool = False
    method_check_clips: Mapping[str, int] = field(default_factory=lambda: dict(BASELINE_CHECK_CLIPS))
    full_cascade_for_costly: bool = False
    robustness_radius: float = ROBUSTNESS_RADIUS
    token_removals: tuple[str, ...] = ("road",)
    frame_removals: tuple[str, ...] = FRAME_REMOVALS
    alpha: float = ALPHA
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    method_clips: Mapping[str, int] = field(default_factory=lambda: dict(BASELINE_CLIPS))
    batch_size: int = 8

    def check_clips(self, method: str, criterion: str) -> int:
        """Clips of the ``sanity`` or ``robustness`` check of ``method``: never more than the run's own
        count (a quick run with 2 sanity clips stays quick for every method)."""
        default = self.sanity_clips if criterion == "sanity" else self.robustness_clips
        return min(default, self.method_check_clips.get(method, default))
