"""Judge explanation methods side by side, with verdicts that can fail and maps that read no model failing
them (docs/judging.md).

``judge_explanations(model, clips, masks, methods=[...], identities=[...])`` explains every clip for the
class the model predicts, with every method, measures every criterion (``criteria``) and gives each a
verdict, ``"pass"``, ``"fail"`` or ``"n/a"``:

* every per-clip margin becomes a mean over *people* (each person's clips averaged first) with a 95 %
  bootstrap interval that resamples people, and a one-sided p-value (``statistics``);
* the run's whole family of margins is corrected with Holm's method, so that the chance of any false
  "pass" among all the verdicts of the run stays below 5 %;
* a criterion passes when every margin it asks survives the correction; n/a when it could ask none.

Methods are judged against references that read no model: a random ranking of the same clip
(deletion, insertion), the mean over every frame subset (temporal), the centre prior and the other
people's masks (pointing).  ``references.FOOLS``, three maps known to be wrong, can be judged beside the
methods (``include_fools``): each must fail (fresh noise: sanity; the centre prior: sanity and pointing;
the negated relevance map: deletion wherever relevance passes it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ...attribution.base import Attribution
from ...attribution.registry import available_methods, get_method, resolve_method
from ..statistics import Interval, holm
from .context import CLASS_NAMES, JudgedMethod, JudgingContext, spread_subset
from .criteria import CRITERIA, JUDGED, Measurement
from .references import FOOLS
from .sanity import SanityResult
from .settings import TOKEN_REMOVALS, JudgingSettings

MethodSpec = str | type[Attribution]


def judging_options(config) -> dict[str, dict[str, Any]]:
    """Cheaper settings for the costly baselines, so a judging run stays minutes on a CPU:
    16 IG steps, and occlusion boxes of half the crop (2 frames) moved by a quarter."""
    size = config.image_size
    return {"integrated-gradients": {"n_steps": 16},
            "occlusion": {"patch": max(1, size // 2), "stride": max(1, size // 4), "patch_frames": 2}}


@dataclass
class JudgingResult:
    """``verdicts[method][criterion]``; ``table``: one row per method, every margin and value as an
    ``Interval`` over people; ``contrasts``: paired intervals of method against method."""

    verdicts: dict[str, dict[str, str]]
    table: list[dict[str, Any]]
    sanity: dict[str, SanityResult]
    notes: list[str]
    settings: JudgingSettings
    model_name: str = ""
    clips: int = 0
    manipulated: int = 0
    identities: int = 0
    contrasts: list[dict[str, Any]] = field(default_factory=list)
    family: int = 0  # margins asked in the run (the Holm family)
    removal_effects: dict[str, dict[str, Interval]] = field(default_factory=dict)  # removal -> class -> effect
    fools: tuple[str, ...] = ()

    def row(self, method: str) -> dict[str, Any]:
        for r in self.table:
            if r["method"] == method:
                return r
        raise KeyError(method)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The table flattened for CSV: every interval as ``_mean``, ``_low``, ``_high`` and ``_p`` columns."""
        flat = []
        for row in self.table:
            out: dict[str, Any] = {}
            for key, value in row.items():
                if isinstance(value, Interval):
                    out[key] = value.mean
                    out[f"{key}_low"], out[f"{key}_high"], out[f"{key}_p"] = value.low, value.high, value.p_above
                else:
                    out[key] = value
            out.update({f"verdict_{c}": self.verdicts[row["method"]][c] for c in JUDGED})
            flat.append(out)
        return flat


def judge_explanations(model: nn.Module, clips: torch.Tensor, masks: torch.Tensor | None = None,
                       methods: Sequence[MethodSpec] | None = None, *, identities: Sequence[str] | None = None,
                       settings: JudgingSettings | None = None, include_fools: bool = False,
                       progress: Callable[[str], None] | None = None, bars: bool = False) -> JudgingResult:
    """Judge ``methods`` (names or ``Attribution`` classes; default: every registered one) on ``clips``
    (K, T, 3, H, W), normalised.

    ``masks`` (K, T, H, W) mark the manipulated pixels, zero for real clips; without masks there is no
    pointing verdict.  ``identities`` (K,) name the person (or source video) of each clip: the bootstrap
    resamples them; without them every clip counts as its own person, which overstates the evidence when
    clips share a face (a note says so).  ``progress`` hears each stage; ``bars`` adds a progress bar
    with an estimate of the time left to every loop over clips (on stderr).
    """
    settings = settings or JudgingSettings()
    say = progress or (lambda _msg: None)
    specs = list(methods) if methods else list(available_methods())
    if include_fools:
        specs += [f for f in FOOLS if f not in specs]
    resolved = [_resolve(spec) for spec in specs]
    k, t = clips.shape[:2]
    if masks is not None and tuple(masks.shape) != (k, t, clips.shape[3], clips.shape[4]):
        raise ValueError(f"masks must be (K, T, H, W) = {(k, t, *clips.shape[3:])}, got {tuple(masks.shape)}")
    if not 1 <= settings.top_k < t:
        raise ValueError(f"top_k must be in 1..{t - 1} for clips of {t} frames, got {settings.top_k}")
    notes: list[str] = []
    if identities is None:
        identities = [f"clip {i}" for i in range(k)]
        notes.append("no identities given: every clip is resampled as if it were its own person")
    identities = [str(p) for p in identities]
    if len(identities) != k:
        raise ValueError(f"got {len(identities)} identities for {k} clips")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        context = JudgingContext(model, clips.to(device), masks, identities, settings, _with_bars if bars else _without_bars)
        criteria = [c() for c in CRITERIA if settings.sanity or c.name != "sanity"]
        measured: dict[str, dict[str, Measurement]] = {}
        judged: list[JudgedMethod] = []
        for name, cls in resolved:
            options = {**judging_options(model.config).get(name, {}), **settings.method_options.get(name, {})}
            method = JudgedMethod(name, cls, options, spread_subset(identities, settings.method_clips.get(name)))
            judged.append(method)
            measured[name] = {}
            for criterion in criteria:
                say(f"{name}: {criterion.name} ({len(method.subset)} clips)")
                measured[name][criterion.name] = criterion.measure(context, method)
    finally:
        model.train(was_training)
    return _verdicts(context, judged, measured, notes, settings,
                     tuple(name for name, cls in resolved if cls in FOOLS))


def _resolve(spec: MethodSpec) -> tuple[str, type[Attribution]]:
    if isinstance(spec, str):
        name = resolve_method(spec)  # the one check of a method name: unknown names fail before any work
        return name, get_method(name)
    if isinstance(spec, type) and issubclass(spec, Attribution) and spec.name:
        return spec.name, spec
    raise ValueError(f"a method to judge is a name or an Attribution class with a name, got {spec!r}")


def _with_bars(items, desc: str):
    """``items`` under a tqdm bar (rate and time left, on stderr)."""
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="clip", leave=False)


def _without_bars(items, desc: str):
    return items


# -- verdicts ---------------------------------------------------------------------------------------------
def _verdicts(context: JudgingContext, judged: list[JudgedMethod], measured: dict[str, dict[str, Measurement]],
              notes: list[str], settings: JudgingSettings, fools: tuple[str, ...]) -> JudgingResult:
    margins: dict[tuple[str, str, str], Interval] = {}
    table = []
    for method in judged:
        row: dict[str, Any] = {"method": method.name, "label": method.label or method.name,
                               "clips": len(method.subset), "fool": method.name in fools}
        for criterion, m in measured[method.name].items():
            for key, values in m.values.items():
                row[f"{criterion}_{key}"] = context.interval(values, m.clips)
            for key, values in m.margins.items():
                margins[method.name, criterion, key] = row[f"{criterion}_margin_{key}"] = \
                    context.interval(values, m.clips)
            notes += [n for n in m.notes if n not in notes]
        table.append(row)
    asked = {key: i.p_above for key, i in margins.items() if i.groups >= 2}
    passed = holm(asked, settings.alpha)
    verdicts = {}
    for method in judged:
        verdicts[method.name] = {}
        for criterion in JUDGED:
            keys = [key for key in asked if key[0] == method.name and key[1] == criterion]
            if criterion not in measured[method.name] or not keys:
                verdicts[method.name][criterion] = "n/a"
            else:
                verdicts[method.name][criterion] = "pass" if all(passed[key] for key in keys) else "fail"
    for row in table:
        row.update({f"holm_{c}_{k}": passed[(m, c, k)] for (m, c, k) in asked if m == row["method"]})
    sanity = {name: m["sanity"].detail for name, m in measured.items() if "sanity" in m}
    contrasts = _contrasts(context, judged, measured)
    effects = {}
    for removal in TOKEN_REMOVALS:
        effect = context.whole_clip_effect(removal)
        effects[removal] = {name: context.interval(effect[members], members) for klass, name in CLASS_NAMES.items()
                            if (members := [i for i in range(context.count) if int(context.explained[i]) == klass])}
    identities = len(set(context.identities))
    if identities < 2:
        notes.append("fewer than two people: no interval can be drawn and no verdict given")
    return JudgingResult(verdicts, table, sanity, notes, settings, model_name=getattr(context.model.config, "name", ""),
                         clips=context.count, manipulated=int(context.manipulated().sum()), identities=identities,
                         contrasts=contrasts, family=len(asked), removal_effects=effects, fools=fools)


def _contrasts(context: JudgingContext, judged: list[JudgedMethod],
               measured: dict[str, dict[str, Measurement]]) -> list[dict[str, Any]]:
    """Every pair of methods on every margin both were asked, on the clips both were judged on: the
    paired difference of the first minus the second, as an interval over people (uncorrected)."""
    out = []
    for a_index, a in enumerate(judged):
        for b in judged[a_index + 1:]:
            for criterion in JUDGED:
                ma, mb = measured[a.name].get(criterion), measured[b.name].get(criterion)
                if ma is None or mb is None:
                    continue
                shared = sorted(set(ma.clips) & set(mb.clips))
                pa, pb = {c: n for n, c in enumerate(ma.clips)}, {c: n for n, c in enumerate(mb.clips)}
                for key in sorted(set(ma.margins) & set(mb.margins)):
                    diff = [ma.margins[key][pa[c]] - mb.margins[key][pb[c]] for c in shared]
                    interval = context.interval(diff, shared)
                    if interval.n and not math.isnan(interval.mean):
                        out.append({"first": a.name, "second": b.name, "criterion": criterion, "margin": key,
                                    "difference": interval})
    return out


def verdict_margins(result: JudgingResult, method: str, criterion: str) -> dict[str, Interval]:
    """The margins a verdict rests on, by name (for reports)."""
    prefix = f"{criterion}_margin_"
    return {k[len(prefix):]: v for k, v in result.row(method).items() if k.startswith(prefix)}


