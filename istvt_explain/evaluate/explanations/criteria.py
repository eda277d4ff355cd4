"""The criteria of the judge, one small class each (as Quantus keeps one class per metric).

A criterion ``measure``s one method on the shared ``JudgingContext`` and returns a ``Measurement``:
per-clip ``values`` to report, and per-clip ``margins`` that must all lie above zero for a pass.  The
judge turns every margin into an interval over people and a one-sided p-value, corrects the whole run's
family of margins (Holm) and gives the verdict: ``pass`` when every asked margin of the criterion is
significantly above zero, ``fail`` when one is not, ``n/a`` when none could be asked (its notes say why).

=============  ======================================================================================
sanity         the map repeats (same model, same clip; and under a 1e-4 nudge of the input) with Spearman
               >= 0.9, *and* it changes when every stage of the model is randomised (|Spearman| and SSIM
               <= 0.5, Adebayo et al. 2018).  Fresh noise fails the first half, a prior the second.
deletion       deleting the map's top tokens lowers the explained class's probability faster than deleting
               random ones (AUC gain), per explained class, with each removal that can judge that class
insertion      showing only the map's top tokens raises it faster than showing random ones, likewise
temporal       removing the top-k frames drops the probability more than the mean over every k-subset
pointing       the map's maximum lies in the manipulated region more often than the centre prior's and
               than the mean mask of the other people's clips (only manipulated clips, maps for "fake")
robustness     max-sensitivity under perturbations that keep the answer stays below 0.5 (Yeh et al. 2019)
sparseness     the Gini index of the map (reported, no verdict)
=============  ======================================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from .complexity import gini
from .context import CLASS_NAMES, FAKE, JudgedMethod, JudgingContext, spread_subset
from .localisation import localisation_scores, pointing_hit
from .references import centre_prior
from .robustness import SENSITIVITY_LIMIT, max_sensitivity
from .sanity import SANITY_THRESHOLD, SanityResult, abs_rank_correlation, map_ssim, sanity_check, spearman
from .temporal import top_and_bottom

REPEAT_THRESHOLD = 0.9
NUDGE = 1e-4


@dataclass
class Measurement:
    """What a criterion found for one method: ``values`` and ``margins``, each name -> one number per clip
    of ``clips`` (NaN where it does not apply), and ``notes`` on what could not be judged."""

    clips: list[int]
    values: dict[str, np.ndarray] = field(default_factory=dict)
    margins: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    detail: object | None = None  # a criterion's own record (the sanity cascade, say)


class Criterion:
    """Base of every criterion: a ``name`` and ``measure(context, method) -> Measurement``."""

    name: ClassVar[str] = ""
    judged: ClassVar[bool] = True  # False: reported only, no verdict

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        raise NotImplementedError


# -- sanity -----------------------------------------------------------------------------------------
class Sanity(Criterion):
    """Repeatability and model randomisation (see the module table)."""

    name = "sanity"

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        s = context.settings
        clips = spread_subset(context.identities, s.check_clips(method.name, "sanity"))
        x = context.clips[clips]
        target = context.explained[clips].tolist()

        def maps_of(model: torch.nn.Module, inputs: torch.Tensor = x) -> torch.Tensor:
            return method.explain(model, inputs, target, s.batch_size).spatial

        first, again = maps_of(context.model), maps_of(context.model)
        nudge = torch.randn(x.shape, generator=torch.Generator().manual_seed(s.seed + 11)).to(x.device, x.dtype)
        nudged = maps_of(context.model, x + NUDGE * nudge)
        every_stage = s.full_cascade_for_costly or method.cls.cost != "many-passes"
        cascade = sanity_check(context.model, maps_of, s.seed + 1, original=first, independent=s.independent,
                               every_stage=every_stage)
        randomised = cascade.final_maps
        repeat = np.array([spearman(first[i], again[i]) for i in range(len(clips))])
        steady = np.array([spearman(first[i], nudged[i]) for i in range(len(clips))])
        rho = np.array([abs_rank_correlation(first[i], randomised[i]) for i in range(len(clips))])
        ssim = np.array([_ssim(first[i], randomised[i]) for i in range(len(clips))])
        return Measurement(
            clips, values={"repeat_spearman": repeat, "nudge_spearman": steady, "random_spearman": rho,
                           "random_ssim": ssim},
            margins={"repeats": repeat - REPEAT_THRESHOLD, "holds_under_nudge": steady - REPEAT_THRESHOLD,
                     "randomisation_spearman": SANITY_THRESHOLD - rho, "randomisation_ssim": SANITY_THRESHOLD - ssim},
            detail=cascade)


def _ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    try:
        return map_ssim(a, b)
    except ValueError:  # a grid under 3 x 3: no SSIM window fits
        return math.nan


# -- deletion and insertion -------------------------------------------------------------------------
class _Curves(Criterion):
    """Shared by deletion and insertion: per removal and per explained class, the gain over a random
    ranking of the same clip (AUC of the random curve minus the method's, or the other way round)."""

    column: ClassVar[int] = 0  # 0 deletion AUC, 1 insertion AUC
    sign: ClassVar[float] = -1.0  # deletion: lower is better

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        spatial = context.maps(method).spatial
        clips = method.subset
        result = Measurement(clips)
        explained = context.explained[clips].numpy()
        for removal in context.settings.token_removals:
            aucs = context.curves(method, spatial, removal)[:, self.column]
            random = context.random_auc(removal)[clips, self.column]
            gain = self.sign * (aucs - random)
            result.values[f"auc_{removal}"] = aucs
            result.values[f"random_auc_{removal}"] = random
            result.values[f"gain_{removal}"] = gain
            for klass, name in CLASS_NAMES.items():
                judged, note = context.judges(removal, klass)
                if note and note not in result.notes:
                    result.notes.append(note)
                if judged:
                    result.margins[f"{removal}_{name}"] = np.where(explained == klass, gain, np.nan)
        return result


class Deletion(_Curves):
    name = "deletion"
    column, sign = 0, -1.0


class Insertion(_Curves):
    name = "insertion"
    column, sign = 1, 1.0


# -- temporal ----------------------------------------------------------------------------------------
class Temporal(Criterion):
    """Top-k frame removal against the mean over every k-subset (see ``temporal``)."""

    name = "temporal"

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        s = context.settings
        temporal = context.maps(method).temporal
        clips = method.subset
        generator = torch.Generator().manual_seed(s.seed + 3)
        result = Measurement(clips)
        for removal in s.frame_removals:
            tables = [context.frame_tables(removal)[i] for i in clips]
            picks = [top_and_bottom(temporal[j], s.top_k, generator) for j in range(len(clips))]
            top = np.array([t.drop_of(first) for t, (first, _) in zip(tables, picks, strict=True)])
            bottom = np.array([t.drop_of(last) for t, (_, last) in zip(tables, picks, strict=True)])
            random = np.array([t.random_drop for t in tables])
            result.values.update({f"drop_top_k_{removal}": top, f"drop_bottom_k_{removal}": bottom,
                                  f"drop_random_k_{removal}": random, f"gain_{removal}": top - random})
            if max(t.spread for t in tables) <= 1e-6:  # float noise: the model ignores which frames go
                result.notes.append(f"the model reacts alike to every {s.top_k}-frame removal by '{removal}': "
                                    "no frame ranking can be judged with it")
            else:
                result.margins[removal] = top - random
        return result


# -- pointing -----------------------------------------------------------------------------------------
class Pointing(Criterion):
    """Pointing game against two model-blind priors (see the module table and ``references``)."""

    name = "pointing"

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        manipulated = context.manipulated()
        clips = [i for i in method.subset if manipulated[i]]
        result = Measurement(clips)
        if not clips:
            result.notes.append("no manipulated clip with a mask: pointing is not judged")
            return result
        maps = _fake_maps(context, method, clips)
        t, g, _ = context.grid_shape
        centre = centre_prior(t, g)
        names = ("pointing_game", "pointing_chance", "mass_inside", "pixel_auc", "centre_prior", "mask_prior")
        table = {name: np.full(len(clips), np.nan) for name in names}
        for n, i in enumerate(clips):
            mask = context.binary_mask(i)
            if not mask.any():
                continue
            scores = localisation_scores(_pixels(maps[n], mask), mask)
            for key in ("pointing_game", "pointing_chance", "mass_inside", "pixel_auc"):
                table[key][n] = scores[key]
            table["centre_prior"][n] = _pointing(centre, mask)
            table["mask_prior"][n] = _pointing(_mask_prior(context, i), mask)
        result.values = table | {"gain_over_chance": table["pointing_game"] - table["pointing_chance"]}
        result.margins = {"over_centre_prior": table["pointing_game"] - table["centre_prior"],
                          "over_mask_prior": table["pointing_game"] - table["mask_prior"]}
        return result


def _fake_maps(context: JudgingContext, method: JudgedMethod, clips: list[int]) -> torch.Tensor:
    """The maps explaining "fake" of ``clips``: reused where the model predicted fake, made otherwise."""
    explanation = context.maps(method)
    position = {i: j for j, i in enumerate(method.subset)}
    missed = [i for i in clips if int(context.explained[i]) != FAKE]
    extra = {}
    if missed:
        made = method.explain(context.model, context.clips[missed], [FAKE] * len(missed), context.settings.batch_size)
        extra = {i: made.spatial[n] for n, i in enumerate(missed)}
    return torch.stack([extra[i] if i in extra else explanation.spatial[position[i]] for i in clips])


def _pixels(token_map: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.interpolate(token_map[:, None].float(), size=tuple(mask.shape[-2:]), mode="bilinear",
                         align_corners=False)[:, 0]


def _pointing(prior: torch.Tensor, mask: torch.Tensor) -> float:
    pixels = _pixels(prior, mask).double().numpy()
    inside = mask.numpy()
    hits = [pointing_hit(pixels[f], inside[f]) for f in range(inside.shape[0]) if inside[f].any()]
    finite = [h for h in hits if not math.isnan(h)]
    return float(np.mean(finite)) if finite else math.nan


def _mask_prior(context: JudgingContext, clip: int) -> torch.Tensor:
    """The mean binary mask of the manipulated clips of *other* people, at token resolution: where the data
    says blends usually are, without looking at this clip's own mask."""
    person = context.identities[clip]
    others = [i for i in np.flatnonzero(context.manipulated()) if context.identities[i] != person]
    t, g, _ = context.grid_shape
    if not others:
        return torch.zeros(t, g, g)
    masks = torch.stack([context.binary_mask(i).float() for i in others]).mean(dim=0)
    return F.adaptive_avg_pool2d(masks[:, None], g)[:, 0]


# -- robustness and sparseness ------------------------------------------------------------------------
class Robustness(Criterion):
    """Max-sensitivity under small perturbations that keep the answer (see ``robustness``)."""

    name = "robustness"

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        s = context.settings
        clips = spread_subset(context.identities, s.check_clips(method.name, "robustness"))
        target = context.explained[clips].tolist()

        def maps_of(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            exp = method.explain(context.model, inputs, target, s.batch_size)
            return exp.spatial, exp.fake_probability

        sensitivity, lipschitz = max_sensitivity(maps_of, context.clips[clips], radius=s.robustness_radius,
                                                 generator=torch.Generator().manual_seed(s.seed + 13))
        result = Measurement(clips, values={"max_sensitivity": sensitivity, "local_lipschitz": lipschitz},
                             margins={"max_sensitivity": SENSITIVITY_LIMIT - sensitivity})
        if np.isnan(sensitivity).all():
            result.notes.append("every perturbation changed the prediction: robustness is not judged")
        return result


class Sparseness(Criterion):
    """The Gini index of each clip's maps (reported, no verdict; see ``complexity``)."""

    name = "sparseness"
    judged = False

    def measure(self, context: JudgingContext, method: JudgedMethod) -> Measurement:
        spatial = context.maps(method).spatial
        return Measurement(method.subset, values={"gini": np.array([gini(m) for m in spatial])})


CRITERIA: tuple[type[Criterion], ...] = (Sanity, Deletion, Insertion, Temporal, Pointing, Robustness, Sparseness)
JUDGED = tuple(c.name for c in CRITERIA if c.judged)
"""The criteria with a verdict, in the order of the tables."""


__all__ = ["CRITERIA", "JUDGED", "Criterion", "Deletion", "Insertion", "Measurement", "Pointing", "Robustness",
           "Sanity", "SanityResult", "Sparseness", "Temporal"]
