"""Every paper figure from one model and one labelled clip set: what ``istvt-explain figures`` runs.

The computations come from the package (scores, ``explain``, ``judge_explanations``,
per-head attention, the sensitivity study); the drawings from ``render.figures``.
Everything is seeded, so running it again on the same weights gives the same
figures: the committed ``figures/`` are checked that way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data._files import atomic_write, remove_stale_parts, write_atomic
from ..render import figures as F
from ..render.style import save_figure, tidy_ticks
from .attention import head_attention
from .clipsets import LabelledClips, clips_from_dataset
from .common import explain_batched, fake_probabilities, model_input
from .perturbations import get_perturbation
from .sensitivity import SensitivityResult, run_sensitivity

FIGURE_NAMES = ("roc", "heatmaps", "temporal", "judging", "attention", "sensitivity")

_TIMING_COLUMNS = {"seconds_per_clip"}
# The cheaper settings the judging run uses, reused for the heatmap grid.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {"integrated-gradients": {"n_steps": 8}, "occlusion": {"patch_frames": 2}}


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
        judging_sanity: run the model-randomisation checks (on ``sanity_clips`` of the clips).
        sanity_clips: clips the randomisation checks re-explain at every randomised stage.
        sensitivity_clips: clips of the sensitivity study (half real, half fake).
        sensitivity_method: the method whose stability is measured.
        perturbations: perturbations studied (None: all).
        strengths: per perturbation, strengths other than its defaults.
        roc_perturbations: (name, strength) pairs whose ROC curve is drawn next to the clean one.
        seed: for every random choice.
    """

    # The defaults keep ``istvt-explain figures`` under five minutes on two CPU cores (it took 13 with
    # 48 clips, 8 judged clips and integrated gradients judged as well): the full judging is
    # ``istvt-explain evaluate-explanations``.
    clips: int = 32
    methods: tuple[str, ...] = ("attention", "rollout", "relevance", "lrp", "integrated-gradients")
    grid_frames: tuple[int, ...] = (0, 2, 4)
    judging_clips: int = 2
    judging_methods: tuple[str, ...] | None = ("attention", "rollout", "relevance", "lrp")
    judging_steps: int = 3
    judging_sanity: bool = True
    sanity_clips: int = 1
    sensitivity_clips: int = 2
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
    reused: list[str] = field(default_factory=list)  # the stages taken from the cache (``StageCache``)

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


def judging_result(model: torch.nn.Module, data: LabelledClips, settings: FigureSettings,
                   progress: Callable[[str], None] | None = None):
    """The explanation judging (``evaluate.judging``) on a balanced handful of the clips."""
    from ..evaluate.explanations.judge import JudgingSettings, judge_explanations

    chosen = balanced_indices(data.labels, settings.judging_clips)
    masks = torch.as_tensor(np.asarray(data.masks)[chosen], dtype=torch.float32)
    return judge_explanations(
        model, model_input(data.clips[chosen]), masks, settings.judging_methods or settings.methods,
        identities=[clip_person(data.videos[i]) for i in chosen],
        settings=JudgingSettings(seed=settings.seed, steps=settings.judging_steps, sanity=settings.judging_sanity,
                                 sanity_clips=min(settings.sanity_clips, len(chosen)),
                                 method_options={m: dict(o) for m, o in settings.method_options.items()}),
        progress=(lambda msg: progress(f"      judging: {msg}")) if progress else None)


def clip_person(video: str) -> str:
    """The person a test clip shows, from its video id (``name-pair``): the unit the judge resamples."""
    from ..data.material.catalogue import FACE_PICTURES, FACE_VIDEOS, material_person

    name = video.split(":")[0].rsplit("-", 1)[0]
    return material_person(name) if name in FACE_PICTURES or name in FACE_VIDEOS else name


def judging_rows(result) -> list[dict[str, Any]]:
    """The judging table without the timing columns: timings vary from run to run, the committed
    figures' data must not (benchmarks report speed)."""
    return [{k: v for k, v in row.items() if k not in _TIMING_COLUMNS} for row in result.rows]


STAGES = ("scores", "roc", "examples", "judging", "attention", "sensitivity")
"""The computations of ``make_paper_figures``, in order: each is timed, reported and cached apart."""
STAGE_SETTINGS: dict[str, tuple[str, ...]] = {
    "scores": (),
    "roc": ("roc_perturbations", "seed"),
    "examples": ("methods", "method_options"),
    "judging": ("methods", "method_options", "judging_clips", "judging_methods", "judging_steps", "judging_sanity",
                "sanity_clips", "seed"),
    "attention": ("grid_frames",),
    "sensitivity": ("sensitivity_clips", "sensitivity_method", "perturbations", "strengths", "method_options", "seed"),
}
"""The settings each stage's result depends on: changing the judging settings keeps the scores cached."""


class StageCache:
    """Results of the expensive stages, pickled under ``folder`` and keyed by everything they depend on.

    Why: redrawing a figure (a new style, a label) should not cost the minutes the judging takes.  The
    key hashes the model's weights, the settings and the clip ids, so a stale entry is never reused;
    ``reuse=False`` computes everything again (and refreshes the entries).
    """

    def __init__(self, folder: Path | None, model: torch.nn.Module, data: LabelledClips,
                 settings: FigureSettings, reuse: bool, say: Callable[[str], None]) -> None:
        import hashlib

        self.folder, self.reuse, self.say = folder, reuse, say
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ".gitignore").write_text("*\n")  # a cache, never committed with the figures
            remove_stale_parts(folder, self.temporaries(), time.time())  # what a killed run left
        self.reused: list[str] = []
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update("\n".join(data.ids).encode())
        self.key = digest.hexdigest()[:16]  # weights and clips; each stage adds its settings
        self.settings = _jsonable(asdict(settings))

    def stage_key(self, stage: str) -> str:
        import hashlib

        wanted = {name: self.settings[name] for name in STAGE_SETTINGS.get(stage, tuple(self.settings))}
        return hashlib.sha256((self.key + json.dumps(wanted, sort_keys=True, default=str)).encode()).hexdigest()[:16]

    def path(self, stage: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{stage}-{self.stage_key(stage)}.pt"

    @staticmethod
    def temporaries() -> list[str]:
        """Globs of the temporaries of the entries (``atomic_write``'s, and ``STAGE-KEY.part`` of
        earlier versions): the only files of the folder that a new run deletes, when older than it."""
        return [f".{stage}-*.pt.*.part" for stage in STAGES] + [f"{stage}-*.part" for stage in STAGES]

    def run(self, stage: str, compute: Callable[[], Any]) -> Any:
        """``compute()``'s result, or the cached one when reusing; says which, and how long it took."""
        number = f"[{STAGES.index(stage) + 1}/{len(STAGES)}]" if stage in STAGES else "[-]"
        path = self.path(stage)
        if self.reuse and path is not None and path.exists():
            value = torch.load(path, weights_only=False)
            self.reused.append(stage)
            self.say(f"{number} {stage}: reused {path}")
            return value
        self.say(f"{number} {stage}: computing...")
        start = time.perf_counter()
        value = compute()
        self.say(f"{number} {stage}: done in {time.perf_counter() - start:.1f} s")
        if path is not None:  # complete entries only: an interrupted run leaves no half file, nor its temporary
            atomic_write(path, lambda tmp: torch.save(value, tmp))
        return value


OUTPUT_TEMPORARIES = tuple(f".*.{ext}.*.part" for ext in ("png", "pdf", "csv", "json"))
"""Globs of the temporaries this module's writes name in the figures folder (``atomic_write``)."""


def make_paper_figures(model: torch.nn.Module, data: LabelledClips, out_dir: str | Path,
                       settings: FigureSettings = FigureSettings(), *,
                       progress: Callable[[str], None] | None = None, cache_dir: str | Path | None = None,
                       reuse: bool = False) -> PaperResults:
    """Compute every result and write ``FIGURE_NAMES`` as PNG and PDF, plus CSVs and ``summary.json``.

    ``cache_dir``: where each stage's result is kept (``StageCache``); ``reuse``: take the results found
    there instead of computing them (``istvt-explain figures --reuse``).  ``results.reused`` names them.
    """
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(out, OUTPUT_TEMPORARIES, time.time())  # what a killed run left among the figures
    torch.manual_seed(settings.seed)
    files: dict[str, list[Path]] = {}
    cache = StageCache(Path(cache_dir) if cache_dir is not None else None, model, data, settings, reuse, say)

    scores = cache.run("scores", lambda: fake_probabilities(model, data.clips))
    curves = cache.run("roc", lambda: roc_curves(model, data, scores, settings))
    files["roc"] = save_figure(F.roc_figure(curves, title="ROC on held-out pseudo-fakes"), out, "roc")

    panels = cache.run("examples", lambda: example_panels(model, data, scores, settings))
    files["heatmaps"] = save_figure(F.heatmap_grid_figure(panels, settings.grid_frames), out, "heatmaps")
    files["temporal"] = save_figure(F.temporal_curves_figure(panels), out, "temporal")

    from ..evaluate.explanations.report import gains_figure

    judged = cache.run("judging", lambda: judging_result(model, data, settings, progress=say))
    judging = judging_rows(judged)
    gains = gains_figure(judged)
    tidy_ticks(gains)
    files["judging"] = save_figure(gains, out, "judging")

    fake = _example_pair(data, scores)[1]
    frame = settings.grid_frames[len(settings.grid_frames) // 2] if settings.grid_frames else 0

    def attention() -> tuple[np.ndarray, np.ndarray]:
        att = head_attention(model, model_input(data.clips[fake:fake + 1]))
        return np.asarray(att.frame_maps(frame)), np.asarray(att.temporal)

    spatial, temporal = cache.run("attention", attention)
    files["attention"] = save_figure(F.attention_figure(
        spatial, temporal, data.clips[fake][frame],
        title=f"Class-token attention, fake clip, frame {frame}"), out, "attention")

    chosen = balanced_indices(data.labels, settings.sensitivity_clips)
    sensitivity = cache.run("sensitivity", lambda: run_sensitivity(
        model, data.clips[chosen], labels=data.labels[chosen], clip_ids=[data.ids[i] for i in chosen],
        perturbations=settings.perturbations, strengths=settings.strengths, method=settings.sensitivity_method,
        seed=settings.seed, explain_options=dict(settings.method_options.get(settings.sensitivity_method, {})),
        progress=lambda msg: say(f"      sensitivity: {msg}")))
    files["sensitivity"] = save_figure(F.sensitivity_figure(sensitivity), out, "sensitivity")

    results = PaperResults(scores, data.labels, data.ids, judging, sensitivity, files, reused=list(cache.reused))
    files["data"] = [sensitivity.to_csv(out / "sensitivity.csv"), _write_judging(judging, out / "judging.csv"),
                     _write_scores(results, out / "scores.csv")]
    summary_path = out / "summary.json"
    summary = {"settings": _jsonable(asdict(settings)), **results.summary()}
    write_atomic(summary_path, json.dumps(summary, indent=1, sort_keys=False) + "\n")
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

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})

    atomic_write(path, write)
    return path


def _write_scores(results: PaperResults, path: Path) -> Path:
    import csv

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "label", "probability"])
            for i, s, y in zip(results.ids, results.scores, results.labels, strict=True):
                writer.writerow([i, int(y), f"{s:.6f}"])

    atomic_write(path, write)
    return path
