"""Judge explanation methods side by side, with verdicts that can fail (docs/judging.md).

``judge_explanations(model, clips, masks, methods=[...])`` explains every clip for the class the
model predicts, with every method, and measures

* sanity: Adebayo's cascading and independent model randomisation (``explanation_sanity``);
* deletion / insertion: token curves under two removals, against a random ranking of the same clip;
* temporal: removing the top-k frames against removing any k frames (``explanation_faithfulness``);
* pointing: localisation on the masks of the manipulated clips (``explanation_localisation``).

Each criterion gets a verdict, ``"pass"``, ``"fail"`` or ``"n/a"``, from 95 % bootstrap intervals
(``statistics``): a method beats the random reference only when the interval of its per-clip gain
excludes zero.  ``"n/a"`` means the test cannot judge here (too few clips, no masks, or a model that
reacts alike to any frame removal), and ``JudgingResult.notes`` says why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ...attribution.api import explain
from ...attribution.batching import explain_batches
from ...attribution.registry import available_methods, resolve_method
from ..statistics import Interval, mean_interval
from .faithfulness import (
    FRAME_REMOVALS,
    TOKEN_REMOVALS,
    CurveSettings,
    FrameRemovalTable,
    curve_auc,
    deletion_insertion,
    frame_removal_table,
    removed_clip,
    target_probability,
    token_ranking,
    top_and_bottom,
)
from .localisation import binary_mask, localisation_scores
from .sanity import SanityResult, sanity_check

FAKE = 1  # class column of "fake" in explain's class scores
CRITERIA = ("sanity", "deletion", "insertion", "temporal", "pointing")
LOCALISATION = ("pointing_game", "energy_pointing", "mass_inside", "pixel_auc")


def judging_options(config) -> dict[str, dict[str, Any]]:
    """Cheaper settings for the costly baselines, so a judging run stays minutes on a CPU:
    16 IG steps, and occlusion boxes of half the crop (2 frames) moved by a quarter."""
    size = config.image_size
    return {"integrated-gradients": {"n_steps": 16},
            "occlusion": {"patch": max(1, size // 2), "stride": max(1, size // 4), "patch_frames": 2}}


@dataclass(frozen=True)
class JudgingSettings:
    steps: int = 4  # deletion / insertion points after the start
    top_k: int = 1  # frames removed in the temporal test
    seed: int = 0
    sanity: bool = True
    sanity_clips: int = 8  # clips the randomisation checks explain (each stage re-explains them)
    token_removals: tuple[str, ...] = TOKEN_REMOVALS
    frame_removals: tuple[str, ...] = FRAME_REMOVALS
    insensitive_spread: float = 0.01  # mean std of the drop over frame subsets below which "n/a"
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # on top of judging_options
    method_clips: Mapping[str, int] = field(default_factory=dict)  # a stated subset for costly methods
    batch_size: int = 8


@dataclass
class JudgingResult:
    """``verdicts[method][criterion]``; ``table``: one row per method, intervals as ``Interval``."""

    verdicts: dict[str, dict[str, str]]
    table: list[dict[str, Any]]
    sanity: dict[str, SanityResult]
    frame_spread: dict[str, float]  # frame removal -> mean spread of the drop over frame subsets
    removal_effect: dict[str, float]  # token removal -> mean |p(clip) - p(all tokens removed)|
    notes: list[str]
    settings: JudgingSettings
    model_name: str = ""
    clips: int = 0
    manipulated: int = 0

    def row(self, method: str) -> dict[str, Any]:
        for r in self.table:
            if r["method"] == method:
                return r
        raise KeyError(method)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The table flattened for CSV: every interval as ``_mean``, ``_low`` and ``_high`` columns."""
        flat = []
        for row in self.table:
            out: dict[str, Any] = {}
            for key, value in row.items():
                if isinstance(value, Interval):
                    out[key] = value.mean
                    out[f"{key}_low"], out[f"{key}_high"] = value.low, value.high
                else:
                    out[key] = value
            out.update({f"verdict_{c}": self.verdicts[row["method"]][c] for c in CRITERIA})
            flat.append(out)
        return flat


@dataclass
class _References:
    """What every method is compared against, computed once per clip."""

    explained: torch.Tensor  # (K,) explained class: the predicted one
    fake_probability: torch.Tensor  # (K,)
    ends: dict[str, list[tuple[float, float]]]  # removal -> per clip (p clip, p fully removed)
    random_auc: dict[str, list[tuple[float, float]]]  # removal -> per clip (deletion, insertion) AUC
    frames: dict[str, list[FrameRemovalTable]]  # frame removal -> per clip


def judge_explanations(model: nn.Module, clips: torch.Tensor, masks: torch.Tensor | None = None,
                       methods: Sequence[str] | None = None, *, settings: JudgingSettings | None = None,
                       progress: Callable[[str], None] | None = None, bars: bool = False) -> JudgingResult:
    """Judge ``methods`` (default: every registered one) on ``clips`` (K, T, 3, H, W), normalised.

    ``masks`` (K, T, H, W) mark the manipulated pixels, zero for real clips; without masks there is
    no localisation verdict.  ``progress`` hears each stage; ``bars`` adds a progress bar with an
    estimate of the time left to every loop over clips (on stderr).
    """
    steps = _with_bars if bars else _without_bars
    settings = settings or JudgingSettings()
    say = progress or (lambda _msg: None)
    methods = tuple(resolve_method(m) for m in methods) if methods else tuple(available_methods())
    k, t = clips.shape[:2]
    if masks is not None and tuple(masks.shape) != (k, t, clips.shape[3], clips.shape[4]):
        raise ValueError(f"masks must be (K, T, H, W) = {(k, t, *clips.shape[3:])}, got {tuple(masks.shape)}")
    if not 1 <= settings.top_k < t:
        raise ValueError(f"top_k must be in 1..{t - 1} for clips of {t} frames, got {settings.top_k}")
    device = next(model.parameters()).device
    clips = clips.to(device)
    manipulated = (masks.flatten(1).amax(dim=1) > 0) if masks is not None else torch.zeros(k, dtype=torch.bool)
    say(f"references: scoring {k} clips, random rankings and every {settings.top_k}-frame removal")
    refs = _references(model, clips, settings, steps)
    spread = {r: float(np.mean([tab.spread for tab in refs.frames[r]])) for r in settings.frame_removals}
    effect = {r: float(np.mean([abs(a - b) for a, b in refs.ends[r]])) for r in settings.token_removals}
    notes = [f"removing every token by '{r}' moves the explained probability by {v:.4f} on average "
             f"(< {settings.insensitive_spread}): deletion and insertion cannot judge with it"
             for r, v in effect.items() if v < settings.insensitive_spread]
    notes += [f"the model reacts alike to any {settings.top_k}-frame removal by '{r}' (mean spread of the "
             f"probability drop over frame subsets {v:.4f} < {settings.insensitive_spread}): the temporal test "
             f"cannot separate methods with it" for r, v in spread.items() if v < settings.insensitive_spread]
    verdicts, table, sanity = {}, [], {}
    for name in methods:
        subset = _subset(k, settings.method_clips.get(name))
        options = {**judging_options(model.config).get(name, {}), **settings.method_options.get(name, {})}
        say(f"{name}: explaining {len(subset)} clips")
        start = time.perf_counter()
        spatial, temporal, label = _explain(model, clips, subset, name, refs.explained[subset], options,
                                            settings.batch_size)
        seconds = (time.perf_counter() - start) / len(subset)
        row: dict[str, Any] = {"method": name, "label": label, "clips": len(subset),
                               "seconds_per_clip": seconds}
        say(f"{name}: deletion and insertion")
        row.update(_faithfulness(model, clips, subset, spatial, refs, settings, steps))
        row.update(_temporal(subset, temporal, refs, settings))
        if masks is not None:
            say(f"{name}: localisation")
            row.update(_localisation(model, clips, masks, manipulated, subset, spatial, refs, name, options,
                                     settings))
        if settings.sanity:
            say(f"{name}: model randomisation ({settings.sanity_clips} clips)")
            sanity[name] = _sanity(model, clips, name, options, settings)
            row["sanity_spearman"], row["sanity_ssim"] = sanity[name].final.spearman, sanity[name].final.ssim
        verdicts[name] = _verdicts(row, sanity.get(name), spread, effect, settings)
        table.append(row)
    return JudgingResult(verdicts, table, sanity, spread, effect, notes, settings,
                         getattr(getattr(model, "config", None), "name", ""), k, int(manipulated.sum()))


# -- shared references ------------------------------------------------------------------------------
def _references(model: nn.Module, clips: torch.Tensor, settings: JudgingSettings, steps) -> _References:
    k = clips.shape[0]
    fake = target_probability(model, clips, FAKE, settings.batch_size).cpu()
    explained = (fake >= 0.5).long()
    c = model.config
    grid = (clips.shape[1], c.grid, c.grid)
    generator = torch.Generator().manual_seed(settings.seed + 7)
    curve = CurveSettings(steps=settings.steps, batch=2 * settings.batch_size)
    ends, random_auc = {}, {}
    for removal in settings.token_removals:
        gone = torch.stack([removed_clip(clips[i], removal) for i in range(k)])
        p_gone = target_probability(model, gone, explained.to(clips.device), settings.batch_size).cpu()
        p_clip = torch.where(explained == 1, fake, 1 - fake)
        ends[removal] = list(zip(p_clip.tolist(), p_gone.tolist(), strict=True))
        random_auc[removal] = []
        for i in steps(range(k), f"random rankings, {removal}"):
            order = torch.randperm(grid[0] * grid[1] * grid[2], generator=generator)
            d, ins = deletion_insertion(model, clips[i], int(explained[i]), order, grid, curve, removal,
                                        ends[removal][i])
            random_auc[removal].append((curve_auc(d), curve_auc(ins)))
    frames = {r: [frame_removal_table(model, clips[i], int(explained[i]), settings.top_k, r, settings.batch_size)
                  for i in steps(range(k), f"frame removals, {r}")] for r in settings.frame_removals}
    return _References(explained, fake, ends, random_auc, frames)


def _with_bars(items, desc: str):
    """``items`` under a tqdm bar (rate and time left, on stderr)."""
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="clip", leave=False)


def _without_bars(items, desc: str):
    return items


def _subset(count: int, wanted: int | None) -> list[int]:
    """All clips, or ``wanted`` of them spread evenly (real and fake alike when they alternate)."""
    if not wanted or wanted >= count:
        return list(range(count))
    return sorted({int(round(x)) for x in np.linspace(0, count - 1, wanted)})


def _explain(model: nn.Module, clips: torch.Tensor, subset: list[int], name: str, target: torch.Tensor,
             options: Mapping[str, Any], batch: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    exp = explain_batches(model, clips[subset], name, target=target, batch_size=batch, **options)
    return exp.spatial, exp.temporal, exp.settings.get("label", name) or name


# -- the measures -----------------------------------------------------------------------------------
def _faithfulness(model, clips, subset, spatial, refs: _References, settings: JudgingSettings,
                  steps) -> dict[str, Any]:
    curve = CurveSettings(steps=settings.steps, batch=2 * settings.batch_size)
    generator = torch.Generator().manual_seed(settings.seed)
    out: dict[str, Any] = {}
    for removal in settings.token_removals:
        dels, inss, del_gain, ins_gain = [], [], [], []
        for j, i in steps(list(enumerate(subset)), f"deletion and insertion, {removal}"):
            order = token_ranking(spatial[j], generator)
            d, ins = deletion_insertion(model, clips[i], int(refs.explained[i]), order, tuple(spatial[j].shape),
                                        curve, removal, refs.ends[removal][i])
            rand_del, rand_ins = refs.random_auc[removal][i]
            dels.append(curve_auc(d))
            inss.append(curve_auc(ins))
            del_gain.append(rand_del - dels[-1])
            ins_gain.append(inss[-1] - rand_ins)
        seed = settings.seed
        out[f"deletion_auc_{removal}"] = mean_interval(dels, seed)
        out[f"random_deletion_auc_{removal}"] = mean_interval([refs.random_auc[removal][i][0] for i in subset], seed)
        out[f"deletion_gain_{removal}"] = mean_interval(del_gain, seed)
        out[f"insertion_auc_{removal}"] = mean_interval(inss, seed)
        out[f"random_insertion_auc_{removal}"] = mean_interval([refs.random_auc[removal][i][1] for i in subset],
                                                               seed)
        out[f"insertion_gain_{removal}"] = mean_interval(ins_gain, seed)
    return out


def _temporal(subset, temporal, refs: _References, settings: JudgingSettings) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(settings.seed + 3)
    out: dict[str, Any] = {}
    for removal in settings.frame_removals:
        top, rand, bottom, gain = [], [], [], []
        for j, i in enumerate(subset):
            table = refs.frames[removal][i]
            first, last = top_and_bottom(temporal[j], settings.top_k, generator)
            top.append(table.drop_of(first))
            bottom.append(table.drop_of(last))
            rand.append(table.random_drop)
            gain.append(top[-1] - rand[-1])
        seed = settings.seed
        out[f"drop_top_k_{removal}"] = mean_interval(top, seed)
        out[f"drop_random_k_{removal}"] = mean_interval(rand, seed)
        out[f"drop_bottom_k_{removal}"] = mean_interval(bottom, seed)
        out[f"temporal_gain_{removal}"] = mean_interval(gain, seed)
    return out


def _localisation(model, clips, masks, manipulated, subset, spatial, refs: _References, name, options,
                  settings: JudgingSettings) -> dict[str, Any]:
    """Every measure on all manipulated clips (maps explaining "fake") and on the correctly classified."""
    chosen = [j for j, i in enumerate(subset) if manipulated[i]]
    maps = {j: spatial[j] for j in chosen if refs.explained[subset[j]] == FAKE}
    missed = [j for j in chosen if j not in maps]
    if missed:  # a missed fake was explained as real: ask the method about "fake" for localisation
        idx = [subset[j] for j in missed]
        fake_maps, _, _ = _explain(model, clips, idx, name, torch.full((len(idx),), FAKE), options,
                                   settings.batch_size)
        maps.update({j: fake_maps[n] for n, j in enumerate(missed)})
    size = clips.shape[-2:]
    scores = {}
    for j in chosen:
        mask = binary_mask(masks[subset[j]].cpu())
        if mask.any():
            pixels = torch.nn.functional.interpolate(maps[j][:, None].float(), size=tuple(size), mode="bilinear",
                                                     align_corners=False)[:, 0]
            scores[j] = localisation_scores(pixels, mask)
    correct = [j for j in scores if refs.explained[subset[j]] == FAKE]
    out: dict[str, Any] = {"localised": len(scores), "localised_correct": len(correct)}
    seed = settings.seed
    for group, members in (("", list(scores)), ("_correct", correct)):
        for key in LOCALISATION:
            out[f"{key}{group}"] = mean_interval([scores[j][key] for j in members], seed)
        out[f"pointing_gain{group}"] = mean_interval(
            [scores[j]["pointing_game"] - scores[j]["pointing_chance"] for j in members], seed)
    out["pointing_chance"] = mean_interval([scores[j]["pointing_chance"] for j in scores], seed)
    out["energy_chance"] = mean_interval([scores[j]["energy_chance"] for j in scores], seed)
    return out


def _sanity(model, clips, name, options, settings: JudgingSettings) -> SanityResult:
    subset = _subset(clips.shape[0], settings.sanity_clips)
    target = [FAKE] * len(subset)

    def maps_of(m: nn.Module) -> torch.Tensor:
        return explain(m, clips[subset], method=name, target=target, **options).spatial.detach().float()

    return sanity_check(model, maps_of, settings.seed + 1)


# -- verdicts ---------------------------------------------------------------------------------------
def _verdicts(row: Mapping[str, Any], sanity: SanityResult | None, spread: Mapping[str, float],
              effect: Mapping[str, float], settings: JudgingSettings) -> dict[str, str]:
    """Per criterion; a removal the model does not react to is left out, and with none left: n/a."""
    out = {"sanity": "n/a" if sanity is None or sanity.passed is None else ("pass" if sanity.passed else "fail")}
    effective = [r for r in settings.token_removals if effect[r] >= settings.insensitive_spread]
    for criterion in ("deletion", "insertion"):
        gains = [row[f"{criterion}_gain_{r}"] for r in effective]
        out[criterion] = _all_above(gains) if effective else "n/a"
    sensitive = [r for r in settings.frame_removals if spread[r] >= settings.insensitive_spread]
    out["temporal"] = _all_above([row[f"temporal_gain_{r}"] for r in sensitive]) if sensitive else "n/a"
    gain = row.get("pointing_gain_correct")
    out["pointing"] = "n/a" if gain is None else _all_above([gain])
    return out


def _all_above(intervals: Sequence[Interval]) -> str:
    """pass when every interval lies above 0, n/a when one rests on fewer than 2 clips, else fail."""
    if not intervals or any(i.n < 2 or math.isnan(i.mean) for i in intervals):
        return "n/a"
    return "pass" if all(i.above(0.0) for i in intervals) else "fail"
