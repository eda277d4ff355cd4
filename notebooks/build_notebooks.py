"""Write the notebooks from the cells below, and run them: `python notebooks/build_notebooks.py --execute [05 ...]`.

The notebooks are data: keeping their source here makes them reviewable as code.  They are committed
executed (``--execute``: demo weights, the ``smoke`` level, small inline figures), so that they read
with their outputs where people browse them; ``tests/test_notebooks.py`` checks that the committed
sources are the builder's and still runs every notebook from scratch.
Every notebook reads two environment variables so that CI can run it quickly:
``ISTVT_NOTEBOOK_WEIGHTS`` (a checkpoint instead of the demo weights) and
``ISTVT_NOTEBOOK_LEVEL`` (``paper``, ``quick`` or ``smoke``: how much work).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = '''\
%matplotlib inline
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from IPython.display import Markdown, display

import istvt_explain as ie

# CI sets these to run on a very small checkpoint with little work; by default: the demo weights.
WEIGHTS = os.environ.get("ISTVT_NOTEBOOK_WEIGHTS") or None
LEVEL = os.environ.get("ISTVT_NOTEBOOK_LEVEL", "quick")
WORK = Path(tempfile.mkdtemp(prefix="istvt-notebook-"))
torch.manual_seed(0)
model = ie.load_model(WEIGHTS) if WEIGHTS else ie.load_demo_model()
c = model.config
print(f"model: {c.name} preset, {c.frames} frames of {c.image_size} x {c.image_size}, depth {c.depth}, {c.heads} heads")'''


def quickstart() -> list:
    return [
        new_markdown_cell("# Quickstart: classify a face clip and see why\n\n"
                          "Load the demo detector, cut face clips out of a short video, ask for the fake "
                          "probability, then explain it: where in each frame the model looked (the heatmap) "
                          "and which frames mattered (the importance curve)."),
        new_code_cell(SETUP),
        new_markdown_cell("## A video with a face\n\nThe package generates one from a public-domain photograph "
                          "(scikit-image's `astronaut`), so this runs offline. Use any video file instead."),
        new_code_cell('''\
from istvt_explain.data.clips import extract_face_clips
from istvt_explain.data.media import make_face_video

video = make_face_video(WORK / "face.mp4", frames=24, motion="pan-zoom")
found = extract_face_clips(video.path, image_size=c.image_size, frames=c.frames, max_clips=2)
print(f"{len(found.frame_indices)} clips of {c.frames} face crops; frames of the first: {found.frame_indices[0]}")'''),
        new_markdown_cell("## Classify"),
        new_code_cell('''\
with torch.no_grad():
    probabilities = torch.sigmoid(model(found.tensor()))
for i, p in enumerate(probabilities):
    print(f"clip {i}: fake probability {p:.3f} -> {'FAKE' if p >= 0.5 else 'real'}")'''),
        new_markdown_cell("## Explain\n\n`explain` returns an `Explanation`: `spatial` (B, T, h, w) token maps, "
                          "`temporal` (B, T) frame importance and the fake probability. Here the "
                          "gradient-weighted relevance of Chefer et al. and plain attention rollout."),
        new_code_cell('''\
clip = found.tensor()[:1]
explanations = {method: ie.explain(model, clip, method=method) for method in ("relevance", "rollout")}
exp = explanations["relevance"]
print("spatial", tuple(exp.spatial.shape), "temporal", tuple(exp.temporal.shape),
      f"fake probability {exp.fake_probability.item():.3f}")'''),
        new_markdown_cell("## The overlay and the importance curve"),
        new_code_cell('''\
from istvt_explain.render.figures import ClipPanel, heatmap_grid_figure, temporal_curves_figure

panel = ClipPanel(f"clip 0 (fake prob. {exp.fake_probability.item():.2f})", found.clips[0], explanations)
display(heatmap_grid_figure([panel]))
display(temporal_curves_figure([panel]))'''),
    ]


def explorer() -> list:
    return [
        new_markdown_cell("# Explorer\n\nPick a clip, an explanation method, a frame, a layer and a head, and the "
                          "opacity of the overlay. The picture updates in place: the frame with its heatmap, "
                          "the frame-importance curve, and what the chosen attention head looks at (the class "
                          "token's attention over the frame's patches, and over the frames).\n\n"
                          "The widgets need a running kernel; the callbacks are plain functions "
                          "(`istvt_explain.analysis.explorer`) and are tested without a browser."),
        new_code_cell(SETUP),
        new_code_cell('''\
from istvt_explain.data.clips import extract_face_clips
from istvt_explain.data.media import make_face_video

clips, names = [], []
for motion, face in (("pan", "astronaut"), ("zoom", "astronaut-mirrored")):
    video = make_face_video(WORK / f"{motion}.mp4", frames=16, motion=motion, face=face)
    found = extract_face_clips(video.path, image_size=c.image_size, frames=c.frames, max_clips=2)
    for i, clip in enumerate(found.clips):
        clips.append(clip)
        names.append(f"{video.path.name}, clip {i}")
clips = np.stack(clips)
print(names)'''),
        new_code_cell('''\
from istvt_explain.analysis.explorer import Explorer, ExplorerData

methods = ["rollout", "attention"] if LEVEL == "smoke" else ["relevance", "rollout", "attention", "lrp"]
data = ExplorerData(model, clips, names, methods=methods)
explorer = Explorer(data)
display(explorer.widget)'''),
        new_markdown_cell("Code can drive the explorer too (what a click does):"),
        new_code_cell('''\
explorer.controls["frame"].value = c.frames - 1
explorer.controls["layer"].value = c.depth - 1
explorer.controls["head"].value = 1
print(explorer.caption.value)'''),
        new_markdown_cell("The same view as a static figure, for a report:"),
        new_code_cell('''\
from istvt_explain.analysis.explorer import ExplorerState, explorer_view, render_view

display(render_view(explorer_view(data, ExplorerState(clip=1, method=methods[0], frame=2, layer=0, head=0))))'''),
    ]


def hard_samples() -> list:
    return [
        new_markdown_cell("# Hard samples\n\nWhere is the model wrong, or unsure, and what did it look at there? "
                          "We score clips the demo weights never saw (the demo configuration's test split: a "
                          "held-out face and its pseudo-fakes), rank them by loss and by closeness to the "
                          "threshold, list the false positives and negatives, explain each, and test how "
                          "fragile the answers and explanations are."),
        new_code_cell(SETUP),
        new_code_cell('''\
import pandas as pd

from istvt_explain.analysis import clips_from_array, explain_hard_samples, rank_hard_samples, score_clips
from istvt_explain.analysis.paper import demo_test_clips

COUNT = {"smoke": 6, "quick": 24, "paper": 64}[LEVEL]
data = demo_test_clips(c, COUNT)
scores = score_clips(model, data.clips, data.labels, data.ids, data.videos)
hard = rank_hard_samples(scores, threshold=0.5, top=4)
hard.summary()'''),
        new_code_cell('''\
reasons = hard.reasons()
pd.DataFrame([{"clip": s.id, "truth": "fake" if s.label else "real", "fake prob.": round(s.probability, 3),
               "loss": round(s.loss, 3), "why": ", ".join(reasons[s.id])} for s in hard.selected()])'''),
        new_markdown_cell("## What the model looked at on the hard samples"),
        new_code_cell('''\
from istvt_explain.analysis.gallery import sample_panel, write_gallery
from istvt_explain.render.figures import gallery_figure

methods = ["rollout"] if LEVEL == "smoke" else ["relevance", "rollout"]
samples = explain_hard_samples(model, hard, clips_from_array(data.clips, scores), methods=methods,
                               limit=3 if LEVEL == "smoke" else 8)
display(gallery_figure([sample_panel(s) for s in samples]))
files = write_gallery(samples, hard, WORK / "gallery")
print(f"HTML gallery: {files.html}\\nCSV: {files.csv}")'''),
        new_markdown_cell("## How fragile are they?\n\nThe two hardest clips under compression, blur, noise, "
                          "rescaling, brightness and contrast changes, dropped and shuffled frames. Stability of "
                          "the explanation is the Spearman rank correlation of the maps with the clean ones."),
        new_code_cell('''\
from istvt_explain.analysis import run_sensitivity
from istvt_explain.render.figures import sensitivity_figure

hardest = [s.clip for s in hard.by_loss[:2]]
perturbations = ["jpeg", "shuffle_frames"] if LEVEL == "smoke" else None
study = run_sensitivity(model, data.clips[hardest], labels=data.labels[hardest],
                        clip_ids=[data.ids[i] for i in hardest], perturbations=perturbations,
                        method="rollout" if LEVEL == "smoke" else "relevance")
display(sensitivity_figure(study))
pd.DataFrame(study.summary()).round(3)'''),
    ]


def paper_figures() -> list:
    return [
        new_markdown_cell("# Paper figures\n\nEvery figure of `figures/`, built by the package "
                          "(`istvt_explain.analysis.paper.make_paper_figures`), exactly as "
                          "`istvt-explain figures --out figures/` does. `LEVEL = \"paper\"` (environment variable "
                          "`ISTVT_NOTEBOOK_LEVEL=paper`) reproduces the committed figures (under five minutes on "
                          "two CPU cores); the default `quick` level draws the same figures from fewer "
                          "clips and methods. They go to a temporary folder unless `ISTVT_FIGURES_OUT` says "
                          "otherwise, so the committed ones stay as they are."),
        new_code_cell(SETUP),
        new_code_cell('''\
from istvt_explain.analysis.paper import FIGURE_NAMES, FigureSettings, demo_test_clips, make_paper_figures

settings = {"paper": FigureSettings, "quick": FigureSettings.quick, "smoke": FigureSettings.smoke}[LEVEL]()
OUT = Path(os.environ.get("ISTVT_FIGURES_OUT") or WORK / "figures")
data = demo_test_clips(c, settings.clips)
results = make_paper_figures(model, data, OUT, settings, progress=print)
results.summary()["clip_auc"], results.summary()["false_positives"], results.summary()["false_negatives"]'''),
        new_markdown_cell("The files are print-ready (300 dpi PNG, vector PDF, 3.5 or 7.16 inches wide); here "
                          "they are shown shrunk, to keep the notebook light."),
        new_code_cell('''\
from PIL import Image as Picture

for name in FIGURE_NAMES:
    display(Markdown(f"### {name}"))
    picture = Picture.open(OUT / f"{name}.png").convert("RGB")
    picture.thumbnail((640, 640))
    display(picture.quantize(256))  # a palette: a quarter of the bytes, no visible change at this size'''),
    ]


def your_own_method() -> list:
    return [
        new_markdown_cell("# Bring your own explanation method\n\nA method is a class with a `name` and one "
                          "method, `maps(clips, target)`, that returns a spatial map per frame and an importance "
                          "per frame. Registered with `@ie.register_method`, it works everywhere the built-ins "
                          "do: `ie.explain`, `ie.judge_explanations`, and the command line. Here are two: one "
                          "that reads the model (gradient times input) and one that reads only the input "
                          "(frame differences, which look plausible on a video but ignore the model). The judge "
                          "should tell them apart (`docs/judging.md`)."),
        new_code_cell(SETUP),
        new_code_cell('''\
import torch.nn.functional as F


@ie.register_method
class GradientTimesInput(ie.Attribution):
    """d(target score)/d(pixel) x pixel, summed over colour and averaged over each token's pixels."""

    name = "gradient-x-input"
    label = "Gradient x input"

    def maps(self, clips, target):
        x = clips.clone().requires_grad_(True)
        logits = self.model(x).reshape(-1)
        score = torch.where(target == 1, logits, -logits).sum()  # one fake logit: "real" is its negation
        (grad,) = torch.autograd.grad(score, x)
        pixels = (grad * x).sum(dim=2)  # (B, T, H, W)
        b, t, h, w = pixels.shape
        spatial = F.adaptive_avg_pool2d(pixels.reshape(b * t, 1, h, w), self.model.config.grid)
        spatial = spatial.reshape(b, t, *spatial.shape[-2:])
        return spatial, spatial.flatten(2).sum(-1)


@ie.register_method
class FrameDifference(ie.Attribution):
    """How much each token changed since the previous frame: motion, not the model's evidence."""

    name = "frame-difference"
    label = "Frame difference (input only)"

    def maps(self, clips, target):
        change = (clips - clips.roll(1, dims=1)).abs().mean(dim=2)
        change[:, 0] = change[:, 1]  # the first frame has no predecessor
        b, t, h, w = change.shape
        spatial = F.adaptive_avg_pool2d(change.reshape(b * t, 1, h, w), self.model.config.grid)
        spatial = spatial.reshape(b, t, *spatial.shape[-2:])
        return spatial, spatial.flatten(2).sum(-1)


print([m for m in ie.available_methods() if m in ("gradient-x-input", "frame-difference")])'''),
        new_markdown_cell("## Explain with it, as with any built-in"),
        new_code_cell('''\
from istvt_explain.evaluate.explanations.data import heldout_judging_set

COUNT = {"smoke": 4, "quick": 16, "paper": 48}[LEVEL]
data = heldout_judging_set(COUNT, c.frames, c.image_size, seed=0)  # real and self-blended, people never trained on
exp = ie.explain(model, data.clips[1:2], method="gradient-x-input")
print("spatial", tuple(exp.spatial.shape), "temporal", tuple(exp.temporal.shape),
      "p(fake)", round(float(exp.fake_probability[0]), 3))'''),
        new_markdown_cell("## Judge it against a built-in\n\nSix criteria, each a verdict from margins that must "
                          "lie above zero over *people* (the bootstrap resamples people, and the run's verdicts are "
                          "corrected together with Holm's method). Three controls that read no model (fresh "
                          "noise, a centre prior, the negated relevance map) run beside the methods "
                          "(`include_fools=True`) and must fail. `n/a` means a criterion cannot judge on these "
                          "clips (for example too few people); `res.notes` says why. With the `smoke` level the "
                          "clips are few and most intervals are wide: run it with `ISTVT_NOTEBOOK_LEVEL=paper` "
                          "for a real comparison."),
        new_code_cell('''\
import pandas as pd

from istvt_explain.evaluate.explanations.report import gains_figure

res = ie.judge_explanations(model, data.clips, data.masks, methods=["relevance", "gradient-x-input", "frame-difference"],
                            identities=data.identities, include_fools=True,
                            settings=ie.JudgingSettings(steps=2 if LEVEL == "smoke" else 4,
                                                        sanity_clips=2 if LEVEL == "smoke" else 8,
                                                        robustness_clips=2 if LEVEL == "smoke" else 8))
display(pd.DataFrame(res.verdicts).T)
for note in res.notes:
    print("note:", note)'''),
        new_code_cell('''\
pd.DataFrame([{"method": m, "repeats (Spearman)": round(res.row(m)["sanity_repeat_spearman"].mean, 3),
               "randomised (|Spearman|)": round(res.row(m)["sanity_random_spearman"].mean, 3),
               "randomised (SSIM)": round(res.row(m)["sanity_random_ssim"].mean, 3)} for m in res.sanity])'''),
        new_code_cell("display(gains_figure(res))"),
        new_markdown_cell("## On the command line\n\nPut the class in a file, say `my_method.py`, and name it "
                          "in `ISTVT_EXPLAIN_METHODS`:\n\n```\nISTVT_EXPLAIN_METHODS=./my_method.py "
                          "istvt-explain video.mp4 --method gradient-x-input --out heat.mp4\n"
                          "ISTVT_EXPLAIN_METHODS=./my_method.py istvt-explain evaluate-explanations --demo "
                          "--methods relevance gradient-x-input\n```\n\nAn installed package can declare it "
                          "in the entry-point group `istvt_explain.methods` instead."),
    ]


NOTEBOOKS = {
    "01_quickstart.ipynb": quickstart,
    "02_explorer.ipynb": explorer,
    "03_hard_samples.ipynb": hard_samples,
    "04_paper_figures.ipynb": paper_figures,
    "05_your_own_method.ipynb": your_own_method,
}


def build(folder: Path = HERE, names: list[str] | None = None) -> list[Path]:
    """Write the notebooks (all, or those whose file name starts with one of ``names``)."""
    paths = []
    for name, cells in NOTEBOOKS.items():
        if names and not any(name.startswith(n) for n in names):
            continue
        nb = new_notebook(cells=cells())
        nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
        nb.metadata["language_info"] = {"name": "python"}
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: rebuilding changes nothing
        path = folder / name
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def execute(path: Path, level: str = "smoke", timeout: int = 600) -> None:
    """Run the notebook at ``path`` in place (demo weights, ``level``), keeping its outputs."""
    import os

    import nbclient

    os.environ["ISTVT_NOTEBOOK_LEVEL"] = level
    os.environ.pop("ISTVT_NOTEBOOK_WEIGHTS", None)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in nb.cells:  # machine-specific noise out of the committed file
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("widgets", None)  # widget state: only a live kernel can drive the explorer
    nbformat.write(nb, path)


if __name__ == "__main__":
    import sys

    # python build_notebooks.py [--execute] [05 ...]: rebuild (and run) all, or only the named ones
    chosen = [a for a in sys.argv[1:] if not a.startswith("--")]
    for p in build(names=chosen):
        print(p)
        if "--execute" in sys.argv:
            execute(p)
            print(f"  executed: {p.stat().st_size // 1024} KiB")
