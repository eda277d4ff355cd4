"""How fragile the answer and the explanation are under everyday degradations.

For every clip, perturbation and strength we record the fake probability
(and its change from the clean clip) and the explanation's stability: the
Spearman rank correlation of the perturbed maps with the clean ones.  Maps are
compared on the same *content*: when a perturbation moves frames in time, the
map at output position t is compared with the clean map of the frame it shows.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data._files import atomic_write
from .common import ExplainFn, as_uint8_clips, explain_batched, spearman
from .perturbations import resolve_perturbations


@dataclass(frozen=True)
class SensitivityRow:
    """One clip under one perturbation at one strength."""

    clip: int
    clip_id: str
    label: int  # 1 fake, 0 real, -1 unknown
    perturbation: str
    strength: float
    method: str
    base_probability: float
    probability: float
    spatial_correlation: float
    temporal_correlation: float

    @property
    def probability_change(self) -> float:
        return self.probability - self.base_probability


@dataclass
class SensitivityResult:
    """Every row of a sensitivity study, with summaries and CSV in and out."""

    rows: list[SensitivityRow]
    method: str
    units: dict[str, str]
    labels: dict[str, str]

    def perturbations(self) -> list[str]:
        return list(dict.fromkeys(r.perturbation for r in self.rows))

    def summary(self) -> list[dict[str, Any]]:
        """Mean over clips per (perturbation, strength), in study order (NaN correlations skipped)."""
        groups: dict[tuple[str, float], list[SensitivityRow]] = defaultdict(list)
        for r in self.rows:
            groups[(r.perturbation, r.strength)].append(r)
        out = []
        for (name, strength), rows in groups.items():
            out.append({
                "perturbation": name, "strength": strength, "clips": len(rows),
                "mean_probability": _nanmean([r.probability for r in rows]),
                "mean_abs_change": _nanmean([abs(r.probability_change) for r in rows]),
                "mean_change": _nanmean([r.probability_change for r in rows]),
                "decision_flips": sum((r.probability >= 0.5) != (r.base_probability >= 0.5) for r in rows),
                "spatial_correlation": _nanmean([r.spatial_correlation for r in rows]),
                "temporal_correlation": _nanmean([r.temporal_correlation for r in rows]),
            })
        return out

    def to_csv(self, path: str | Path) -> Path:
        """One line per row, plus the derived probability change (what a reader plots first)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = [f.name for f in fields(SensitivityRow)]

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow([*names, "probability_change"])
                for r in self.rows:
                    values = asdict(r)
                    writer.writerow([_fmt(values[n]) for n in names] + [_fmt(r.probability_change)])

        atomic_write(path, write)  # never a half-written table
        return path

    def summary_to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = self.summary()
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(summary[0]) if summary else ["perturbation"])
            writer.writeheader()
            for row in summary:
                writer.writerow({k: _fmt(v) for k, v in row.items()})
        return path

    @classmethod
    def from_csv(cls, path: str | Path) -> SensitivityResult:
        """Read back what ``to_csv`` wrote (figures can be redrawn without the model)."""
        from .perturbations import PERTURBATIONS

        types = {f.name: f.type for f in fields(SensitivityRow)}
        rows = []
        with open(path, newline="") as fh:
            for raw in csv.DictReader(fh):
                values = {}
                for name, kind in types.items():
                    text = raw[name]
                    values[name] = int(text) if kind == "int" else float(text) if kind == "float" else text
                rows.append(SensitivityRow(**values))
        method = rows[0].method if rows else ""
        names = dict.fromkeys(r.perturbation for r in rows)
        return cls(rows, method,
                   {n: PERTURBATIONS[n].unit if n in PERTURBATIONS else "strength" for n in names},
                   {n: PERTURBATIONS[n].label if n in PERTURBATIONS else n for n in names})


def _nanmean(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def run_sensitivity(
    model: torch.nn.Module,
    clips: np.ndarray,
    *,
    labels: Sequence[int] | None = None,
    clip_ids: Sequence[str] | None = None,
    perturbations: Sequence[str] | None = None,
    strengths: Mapping[str, Sequence[float]] | None = None,
    method: str = "relevance",
    seed: int = 0,
    batch_size: int = 4,
    explain_options: dict[str, Any] | None = None,
    explain_fn: ExplainFn | None = None,
    progress: Callable[[str], None] | None = None,
) -> SensitivityResult:
    """Perturb each clip at every strength, explain, and compare with the clean explanation.

    Args:
        model: the detector (its device is used).
        clips: uint8 (K, T, H, W, 3) face clips, as the data stage makes them.
        labels: optional ground truth per clip (1 fake, 0 real), carried into the rows.
        clip_ids: names for the CSV (default ``clip0``, ``clip1``...).
        perturbations: registry names (default: all of them).
        strengths: per perturbation, strengths to use instead of its defaults.
        method: the explanation method whose stability is measured.
        seed: randomness of noise, dropped and shuffled frames; the same seed gives the same study.
        batch_size: clips explained at once.
        explain_options: passed on to the explanation method.
        explain_fn: stand-in for ``istvt_explain.attribution.explain`` (tests, other explainers).
        progress: called with a short message before each clip.
    """
    clips = as_uint8_clips(clips)
    k = len(clips)
    labels = list(labels) if labels is not None else [-1] * k
    clip_ids = list(clip_ids) if clip_ids is not None else [f"clip{i}" for i in range(k)]
    if len(labels) != k or len(clip_ids) != k:
        raise ValueError(f"labels and clip_ids must have one entry per clip ({k})")
    chosen = resolve_perturbations(perturbations)
    strengths = dict(strengths or {})
    unknown = sorted(set(strengths) - {p.name for p in chosen})
    if unknown:
        raise ValueError(f"strengths given for perturbations not studied: {', '.join(unknown)}")
    common = {"batch_size": batch_size, "explain_fn": explain_fn, "options": explain_options}

    rows: list[SensitivityRow] = []
    for i, clip in enumerate(clips):
        if progress:
            progress(f"sensitivity: clip {i + 1}/{k} ({clip_ids[i]})")
        variants, sources, keys = [], [], []
        for p_index, p in enumerate(chosen):
            for s_index, strength in enumerate(strengths.get(p.name, p.strengths)):
                rng = np.random.default_rng([seed, i, p_index, s_index])
                frames, source = p(clip, strength, rng)
                variants.append(frames)
                sources.append(source)
                keys.append((p.name, float(strength)))
        base = explain_batched(model, clip[None], method, **common)[0]
        perturbed = explain_batched(model, np.stack(variants), method, **common)
        base_spatial = base.spatial[0].numpy()
        base_temporal = base.temporal[0].numpy()
        base_prob = float(base.fake_probability[0])
        for (name, strength), source, exp in zip(keys, sources, perturbed, strict=True):
            rows.append(SensitivityRow(
                clip=i, clip_id=str(clip_ids[i]), label=int(labels[i]), perturbation=name, strength=strength,
                method=method, base_probability=base_prob, probability=float(exp.fake_probability[0]),
                spatial_correlation=spearman(exp.spatial[0].numpy(), base_spatial[source]),
                temporal_correlation=spearman(exp.temporal[0].numpy(), base_temporal[source]),
            ))
    return SensitivityResult(rows, method, {p.name: p.unit for p in chosen}, {p.name: p.label for p in chosen})
