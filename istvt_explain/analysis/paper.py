"""Every paper figure from one model and one labelled clip set: what ``istvt-explain figures`` runs.

The computations come from the package (scores, ``explain``, ``judge_explanations``,
per-head attention, the sensitivity study); the drawings from ``render.figures``.
Everything is seeded, so running it again on the same weights gives the same
figures: the committed ``figures/`` are checked that way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..render import figures as F
from ..render.style import save_figure
from .attention import head_attention
from .clipsets import LabelledClips, clips_from_dataset
from .common import explain_batched, fake_probabilities, model_input
from .perturbations import get_perturbation
from .sensitivity import SensitivityResult, run_sensitivity

FIGURE_NAMES = ("roc", "heatmaps", "temporal", "judging", "attention", "sensitivity")

_TIMING_COLUMNS = {"seconds_per_clip"}
# The cheaper settings the judging run uses, reused for the heatmap grid.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {"integrated_gradients": {"n_steps": 16}, "occlusion": {"patch_frames": 2}}


@dataclass(frozen=True)
class FigureSettings:
    """What the figures are computed on.

    Attributes:
        clips: clips of the demo test split scored for the ROC curves (real and fake mixed).
        methods: explanation methods in the heatmap grid, the curves and the judging table.
        grid_frames: frames shown in the heatmap grid (0-based).
        judging_clips: clips the explanation judging runs on (half real, half fake; the full judging
            of ``istvt-explain evaluate-explanations`` uses 200).
        judging_methods: methods judged (None: ``methods``).
        judging_steps: resolution of the deletion / insertion curves.
        judging_sanity: run the model-randomisation checks (on up to 4 of the clips).
        sensitivity_clips: clips of the sensitivity study (half real, half fake).
        sensitivity_method: the method whose stability is measured.
        perturbations: perturbations studied (None: all).
        strengths: per perturbation, strengths other than its defaults.
        roc_perturbations: (name, strength) pairs whose ROC curve is drawn next to the clean one.
        seed: for every random choice.
    """

    clips: int = 48
    methods: tuple[str, ...] = ("attention", "rollout", "relevance", "lrp", "integrated_gradients")
    grid_frames: tuple[int, ...] = (0, 2, 4)
    judging_clips: int = 8
    judging_methods: tuple[str, ...] | None = None
    judging_steps: int = 4
    judging_sanity: bool = True
    sensitivity_clips: int = 4
    sensitivity_method: str = "relevance"
    perturbations: tuple[str, ...] | None = None
    strengths: Mapping[str, tuple[float, ...]] | None = None
    roc_perturbations: tuple[tuple[str, float], ...] = (("jpeg", 25), ("blur", 2.0), ("downscale", 0.35))
    seed: int = 0
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(METHOD_OPTIONS))

    @classmethod
    def quick(cls) -> FigureSettings:
        """The same figures from a few clips and two methods: notebooks in CI, smoke tests."""
        return cls(clips=8, methods=("rollout", "relevance"), judging_clips=2, sensitivity_clips=2,
                   perturbations=("jpeg", "blur", "brightness", "shuffle_frames"),
                   roc_perturbations=(("jpeg", 25),))

    @classmethod
    def smoke(cls) -> FigureSettings:
        """Every figure from the least work that still draws it (tests and notebook CI, a shared CPU)."""
        return cls(clips=4, methods=("attention", "rollout"), judging_clips=2, judging_methods=("attention",),
                   judging_steps=3, judging_sanity=False,
                   sensitivity_clips=2, sensitivity_method="rollout", perturbations=("jpeg", "shuffle_frames"),
                   strengths={"jpeg": (50, 10), "shuffle_frames": (2, 6)}, roc_perturbations=(("jpeg", 25),))


@dataclass
class PaperResults:
    """The numbers behind the figures, and the files written."""

    scores: np.ndarray
    labels: np.ndarray
    ids: list[str]
    judging: list[dict[str, Any]]
    sensitivity: SensitivityResult
    files: dict[str, list[Path]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Headline numbers (what the README quotes), JSON-ready."""
        from sklearn.metrics import roc_auc_score

        preds = self.scores >= 0.5
        both = len(np.unique(self.labels)) == 2
        sens = {}
        for row in self.sensitivity.summary():
            key = f"{row['perturbation']}@{row['strength']:g}"
            sens[key] = {k: _round(row[k]) for k in ("mean_abs_change", "decision_flips", "spatial_correlation",
                                                     "temporal_correlation")}
        return {
            "clips": int(len(self.scores)),
            "clip_auc": _round(roc_auc_score(self.labels, self.scores)) if both else None,
            "clip_accuracy": _round(float((preds == self.labels.astype(bool)).mean())),
            "false_positives": int((preds & (self.labels == 0)).sum()),
            "false_negatives": int((~preds & (self.labels == 1)).sum()),
            "judging": [{k: _round(v) for k, v in r.items()} for r in self.judging],
            "sensitivity": sens,
        }


def _round(value: Any, digits: int = 4) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else round(float(value), digits)
    return value


def demo_test_clips(model_config, count: int) -> LabelledClips:
    """The first ``count`` clips of the demo configuration's test split: a face the demo weights never saw."""
    from ..train import load_config
    from ..train.data import build_dataset

    dataset = build_dataset(load_config("demo"), model_config, "test")
    return clips_from_dataset(dataset, range(min(count, len(dataset))))


def _example_pair(data: LabelledClips, scores: np.ndarray) -> tuple[int, int]:
    """The fake the model is surest of, and the real clip it is surest of: what the method grid contrasts."""
    fakes = np.flatnonzero(data.labels == 1)
    reals = np.flatnonzero(data.labels == 0)
    if not len(fakes) or not len(reals):
        raise ValueError("the figures need at least one real and one fake clip")
    return int(reals[np.argmin(scores[reals])]), int(fakes[np.argmax(scores[fakes])])


def balanced_indices(labels: np.ndarray, count: int) -> list[int]:
    """``count`` clips alternating real and fake, in data order (deterministic)."""
    reals = list(np.flatnonzero(np.asarray(labels) == 0))
    fakes = list(np.flatnonzero(np.asarray(labels) == 1))
    out: list[int] = []
    while len(out) < count and (reals or fakes):
        for pool in (reals, fakes):
            if pool and len(out) < count:
                out.append(int(pool.pop(0)))
    return out


def roc_curves(model: torch.nn.Module, data: LabelledClips, scores: np.ndarray,
               settings: FigureSettings) -> dict[str, tuple[Sequence[int], Sequence[float]]]:
    """Clean clips, videos (when a video has several clips), and clips under the chosen degradations."""
    curves: dict[str, tuple[Sequence[int], Sequence[float]]] = {"clean clips": (data.labels, scores)}
    by_video: dict[tuple[str, int], list[float]] = {}
    for v, s, y in zip(data.videos, scores, data.labels, strict=True):
        by_video.setdefault((v, int(y)), []).append(float(s))
    if len(by_video) < len(data) and len({y for _, y in by_video}) == 2:
        curves["clean videos (mean of clips)"] = ([y for _, y in by_video], [float(np.mean(s)) for s in by_video.values()])
    for name, strength in settings.roc_perturbations:
        p = get_perturbation(name)
        rng = np.random.default_rng(settings.seed)
        degraded = np.stack([p(c, strength, rng)[0] for c in data.clips])
        curves[f"{p.label.lower()} ({strength:g})"] = (data.labels, fake_probabilities(model, degraded))
    return curves


def example_panels(model: torch.nn.Module, data: LabelledClips, scores: np.ndarray,
                   settings: FigureSettings) -> list[F.ClipPanel]:
    """The real and the fake example clip, explained (as fake) by every method."""
    options = {m: dict(o) for m, o in settings.method_options.items()}
    panels = []
    for index, name in zip(_example_pair(data, scores), ("real", "fake"), strict=True):
        exps = {m: explain_batched(model, data.clips[index:index + 1], m, options=options.get(m))[0]
                for m in settings.methods}
        panels.append(F.ClipPanel(f"{name} clip (fake prob. {scores[index]:.2f})", data.clips[index], exps))
    return panels


def judging_result(model: torch.nn.Module, data: LabelledClips, settings: FigureSettings):
    """The explanation judging (``evaluate.judging``) on a balanced handful of the clips."""
    from ..evaluate.judging import JudgingSettings, judge_explanations

    chosen = balanced_indices(data.labels, settings.judging_clips)
    masks = torch.as_tensor(np.asarray(data.masks)[chosen], dtype=torch.float32)
    return judge_explanations(
        model, model_input(data.clips[chosen]), masks, settings.judging_methods or settings.methods,
        settings=JudgingSettings(seed=settings.seed, steps=settings.judging_steps, sanity=settings.judging_sanity,
                                 sanity_clips=min(4, len(chosen)),
                                 method_options={m: dict(o) for m, o in settings.method_options.items()}))


def judging_rows(result) -> list[dict[str, Any]]:
    """The judging table without the timing columns: timings vary from run to run, the committed
    figures' data must not (benchmarks report speed)."""
    return [{k: v for k, v in row.items() if k not in _TIMING_COLUMNS} for row in result.rows]


def make_paper_figures(model: torch.nn.Module, data: LabelledClips, out_dir: str | Path,
                       settings: FigureSettings = FigureSettings(), *,
                       progress: Callable[[str], None] | None = None) -> PaperResults:
    """Compute every result and write ``FIGURE_NAMES`` as PNG and PDF, plus CSVs and ``summary.json``."""
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    files: dict[str, list[Path]] = {}

    say(f"scoring {len(data)} clips")
    scores = fake_probabilities(model, data.clips)
    files["roc"] = save_figure(F.roc_figure(roc_curves(model, data, scores, settings),
                                            title="ROC on held-out pseudo-fakes"), out, "roc")

    say("explaining the example clips")
    panels = example_panels(model, data, scores, settings)
    files["heatmaps"] = save_figure(F.heatmap_grid_figure(panels, settings.grid_frames), out, "heatmaps")
    files["temporal"] = save_figure(F.temporal_curves_figure(panels), out, "temporal")

    say("judging the explanations")
    from ..evaluate.judging_report import gains_figure

    judged = judging_result(model, data, settings)
    judging = judging_rows(judged)
    files["judging"] = save_figure(gains_figure(judged), out, "judging")

    say("reading attention per layer and head")
    fake = _example_pair(data, scores)[1]
    att = head_attention(model, model_input(data.clips[fake:fake + 1]))
    frame = settings.grid_frames[len(settings.grid_frames) // 2] if settings.grid_frames else 0
    files["attention"] = save_figure(F.attention_figure(
        att.frame_maps(frame), att.temporal, data.clips[fake][frame],
        title=f"Class-token attention, fake clip, frame {frame + 1}"), out, "attention")

    say("sensitivity study")
    chosen = balanced_indices(data.labels, settings.sensitivity_clips)
    sensitivity = run_sensitivity(
        model, data.clips[chosen], labels=data.labels[chosen], clip_ids=[data.ids[i] for i in chosen],
        perturbations=settings.perturbations, strengths=settings.strengths, method=settings.sensitivity_method,
        seed=settings.seed, explain_options=dict(settings.method_options.get(settings.sensitivity_method, {})),
        progress=say)
    files["sensitivity"] = save_figure(F.sensitivity_figure(sensitivity), out, "sensitivity")

    results = PaperResults(scores, data.labels, data.ids, judging, sensitivity, files)
    files["data"] = [sensitivity.to_csv(out / "sensitivity.csv"), _write_judging(judging, out / "judging.csv"),
                     _write_scores(results, out / "scores.csv")]
    summary_path = out / "summary.json"
    summary = {"settings": _jsonable(asdict(settings)), **results.summary()}
    summary_path.write_text(json.dumps(summary, indent=1, sort_keys=False) + "\n")
    files["data"].append(summary_path)
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _write_judging(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def _write_scores(results: PaperResults, path: Path) -> Path:
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label", "probability"])
        for i, s, y in zip(results.ids, results.scores, results.labels, strict=True):
            writer.writerow([i, int(y), f"{s:.6f}"])
    return path
