"""Paper figures, drawn from results (explanations, scores, tables), never from the model.

Each function returns a bare ``matplotlib.figure.Figure`` in the package style
(``render.style``); ``render.style.save_figure`` writes it as PNG and PDF.
Images inside figures are blended to RGB at a small size first, so that the
PDFs stay light and the figures look the same in every viewer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve

from ..attribution.explanation import Explanation
from .overlay import OverlayStyle, colorize
from .style import (
    COLUMN_WIDTH,
    HEATMAP_CMAP,
    MIN_FONT,
    PAGE_WIDTH,
    add_colorbar,
    figure_style,
    method_colors,
    method_label,
    snap_width,
)


class SensitivityRows(Protocol):
    """What ``sensitivity_figure`` reads of a study (``analysis.sensitivity.SensitivityResult``): rows with
    ``perturbation``, ``strength``, ``clip``, ``label``, ``base_probability``, ``probability``,
    ``spatial_correlation`` and ``temporal_correlation``; the method; units and labels per perturbation."""

    rows: Sequence[Any]
    method: str
    units: Mapping[str, str]
    labels: Mapping[str, str]

    def perturbations(self) -> list[str]: ...

THUMBNAIL = 160  # pixels per image cell: about the printed size of a 0.55 in cell at 300 dpi
IMAGE_COLOURS = 128
MAP_LABEL = "evidence (display scale)"


@dataclass(frozen=True)
class ClipPanel:
    """One clip as figures show it: its frames and its explanations by method.

    Attributes:
        title: row or panel title ("real", "fake, p=0.93", a clip id...).
        frames: uint8 (T, H, W, 3) face crops.
        explanations: method name -> ``Explanation`` of this clip (B = 1).
    """

    title: str
    frames: np.ndarray
    explanations: Mapping[str, Explanation]

    @property
    def methods(self) -> list[str]:
        return list(self.explanations)


# -- image helpers ---------------------------------------------------------------------------------
def is_signed(exp: Explanation) -> bool:
    """Whether the clip's maps are drawn signed (diverging, centred on 0): docs/display.md."""
    return exp.display_scale().signed


def heat_to_pixels(exp: Explanation, height: int, width: int) -> np.ndarray:
    """(T, height, width) display values of the clip's maps: [0, 1], or [-1, 1] for a signed method.

    One robust scale for all the clip's frames (``Explanation.display_scale``), as the video uses one
    per video, so a frame that looks cold really mattered less than the warm frames of the same clip.
    """
    display = exp.display_spatial()[0]
    return np.stack([cv2.resize(m.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
                     for m in display])


def blend(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.6, cmap: str | None = None,
          size: int | None = THUMBNAIL, signed: bool = False) -> np.ndarray:
    """A uint8 RGB image: ``frame`` with ``heat`` (display values) drawn as the video draws it.

    Opacity grows with the magnitude (``OverlayStyle.opacity``), so weak evidence leaves the face as it is.
    """
    if size is not None and frame.shape[0] != size:
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    if heat.shape != frame.shape[:2]:
        heat = cv2.resize(heat.astype(np.float32), frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    style = OverlayStyle(colormap=cmap, alpha=alpha, box=False, colorbar=False)
    heat = np.clip(heat, -1.0 if signed else 0.0, 1.0)
    weight = style.opacity(heat)[..., None]
    colour = colorize(heat, style.cmap(signed), signed).astype(np.float32)
    out = frame.astype(np.float32) + weight * (colour - frame.astype(np.float32))
    return np.clip(out, 0, 255).round().astype(np.uint8)


def _thumb(frame: np.ndarray, size: int = THUMBNAIL) -> np.ndarray:
    return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA) if frame.shape[0] != size else frame


def _palette(image: np.ndarray, colours: int = IMAGE_COLOURS) -> np.ndarray:
    """The image reduced to a ``colours`` palette: PDFs embed images losslessly, and a
    palette image compresses four to five times better, with no visible change at cell size."""
    quantized = Image.fromarray(image).quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    return np.asarray(quantized.convert("RGB"))


def _image_axis(ax, image: np.ndarray) -> None:
    ax.imshow(_palette(image), interpolation="antialiased")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def normalized_temporal(exp: Explanation) -> np.ndarray:
    """(T,) frame importance as shares of the clip's total (negative parts clipped): curves comparable across methods."""
    t = exp.temporal[0].detach().float().cpu().clamp_min(0).numpy()
    total = t.sum()
    return t / total if total > 0 else np.full_like(t, 1.0 / len(t))


# -- figures ---------------------------------------------------------------------------------------
def roc_figure(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], title: str | None = None) -> Figure:
    """ROC curves, one per entry: name -> (labels with 1 = fake, fake scores); the AUC goes in the legend."""
    with figure_style():
        fig = Figure(figsize=(COLUMN_WIDTH, COLUMN_WIDTH * 0.9), layout="constrained")
        ax = fig.add_subplot()
        colours = method_colors(list(curves))
        for name, (labels, scores) in curves.items():
            labels = np.asarray(labels)
            if len(np.unique(labels)) < 2:
                raise ValueError(f"ROC of {name!r} needs both real and fake clips")
            fpr, tpr, _ = roc_curve(labels, scores)
            ax.plot(fpr, tpr, color=colours[name], label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})",
                    drawstyle="steps-post")
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=0.8, label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate",
               title=title or "ROC")
        ax.set_aspect("equal")
        ax.legend(loc="lower right")
    return fig


def heatmap_grid_figure(panels: Sequence[ClipPanel], frames: Sequence[int] | None = None,
                        alpha: float = 0.6) -> Figure:
    """Methods (rows) x frames (columns), the clips side by side, the input frames in the top row.

    Maps are on each clip's display scale (one robust scale over all its frames, per method), so a
    frame that looks cold really mattered less than the warm frames of the same clip; colour bars
    say how to read unsigned and (when a method is signed) signed maps.
    """
    if not panels:
        raise ValueError("heatmap grid needs at least one clip")
    methods = panels[0].methods
    cols = list(frames) if frames is not None else list(range(panels[0].frames.shape[0]))
    n_rows = 1 + len(methods)
    signed = {m: any(is_signed(p.explanations[m]) for p in panels) for m in methods}
    bars = 1 + any(signed.values())
    margin = 0.75 + 0.75 * bars  # row labels, colour bars with their tick labels
    width = snap_width(0.85 * len(cols) * len(panels) + margin)
    cell = min(1.0, (width - margin) / (len(cols) * len(panels)))
    with figure_style():
        fig = Figure(figsize=(width, cell * n_rows + 0.45), layout="constrained")
        grid = fig.add_gridspec(n_rows, len(cols) * len(panels), wspace=0.02, hspace=0.02)
        all_axes = []
        for p_index, panel in enumerate(panels):
            size = panel.frames.shape[1]
            heats = {m: heat_to_pixels(panel.explanations[m], size, size) for m in methods}
            for r, method in enumerate([None, *methods]):
                for c, t in enumerate(cols):
                    ax = fig.add_subplot(grid[r, p_index * len(cols) + c])
                    all_axes.append(ax)
                    frame = panel.frames[t]
                    _image_axis(ax, _thumb(frame) if method is None
                                else blend(frame, heats[method][t], alpha, signed=signed[method]))
                    if r == 0:
                        ax.set_title(f"frame {t}" if c else f"{panel.title}\nframe {t}", fontsize=MIN_FONT,
                                     loc="left" if c == 0 else "center")
                    if c == 0 and p_index == 0:
                        ax.set_ylabel("input" if method is None else _wrap(method_label(method), 12),
                                      fontsize=MIN_FONT)  # wrapped: a long name must not run past its row
        add_colorbar(fig, all_axes, False, MAP_LABEL, shrink=0.5, aspect=25, pad=0.01)
        if any(signed.values()):
            add_colorbar(fig, all_axes, True, "signed: " + ", ".join(method_label(m) for m in methods if signed[m]),
                         shrink=0.5, aspect=25, pad=0.01)
    return fig


def temporal_curves_figure(panels: Sequence[ClipPanel]) -> Figure:
    """Frame importance per method, one panel per clip; each curve is the share of the clip's relevance."""
    methods = list(dict.fromkeys(m for p in panels for m in p.methods))
    colours = method_colors(methods)
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH if len(panels) > 1 else COLUMN_WIDTH, 2.2), layout="constrained")
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, panel in zip(axes, panels, strict=True):
            for method, exp in panel.explanations.items():
                curve = normalized_temporal(exp)
                ax.plot(np.arange(len(curve)), curve, marker="o", color=colours[method], label=method_label(method))
            ax.set(title=panel.title, xlabel="frame (0-based)", xticks=np.arange(panel.frames.shape[0]))
            ax.axhline(1.0 / panel.frames.shape[0], color="0.6", linestyle=":", linewidth=0.8, label="uniform")
        axes[0].set_ylabel("share of importance")
        handles, labels = axes[-1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6), frameon=False)
    return fig


def judging_figure(table: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None,
                   higher_is_better: Mapping[str, bool] | None = None,
                   reference: Mapping[str, str] | None = None) -> Figure:
    """The explanation-judging table as bars: one panel per metric, one bar per method.

    ``table`` rows are ``{"method": name, metric: value, ...}``; non-numeric
    columns are skipped.  ``higher_is_better`` says which way is good in the
    panel title; ``reference`` names, per metric, a column holding its baseline
    (a random ranking's score), drawn as a dashed line at the mean over methods.
    """
    if not table:
        raise ValueError("the judging table is empty")
    methods = [str(row["method"]) for row in table]
    if metrics is None:
        baselines = set((reference or {}).values())
        metrics = [k for k in table[0] if k != "method" and k not in baselines and _is_number(table[0][k])]
    direction = dict(higher_is_better or {})
    colours = method_colors(methods)
    cols = min(3, len(metrics))
    n_rows = -(-len(metrics) // cols)
    with figure_style():
        fig = Figure(figsize=(snap_width(PAGE_WIDTH * cols / 3), 0.8 + 0.3 * len(methods) * n_rows),
                     layout="constrained")
        axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            values = [float(row.get(metric, np.nan)) for row in table]
            ax.barh(np.arange(len(methods)), values, color=[colours[m] for m in methods])
            # values in the row labels: text next to the bars collided with the reference line
            ax.set_yticks(np.arange(len(methods)),
                          [f"{method_label(m)} {v:.2f}" if np.isfinite(v) else method_label(m)
                           for m, v in zip(methods, values, strict=True)])
            ax.invert_yaxis()
            arrow = {True: "\n(higher better)", False: "\n(lower better)"}.get(direction.get(metric), "")
            ax.set_title(metric.replace("_", " ") + arrow)
            ref_col = (reference or {}).get(metric)
            if ref_col:
                refs = [float(row[ref_col]) for row in table if _is_number(row.get(ref_col))]
                refs = [r for r in refs if np.isfinite(r)]
                if refs:
                    ax.axvline(float(np.mean(refs)), color="0.3", linestyle="--", linewidth=0.8, label="random")
                    ax.legend(loc="lower right", frameon=False, handlelength=1.5)
        for ax in axes[len(metrics):]:
            ax.set_visible(False)
    return fig


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def attention_figure(spatial: np.ndarray | torch.Tensor, temporal: np.ndarray | torch.Tensor | None = None,
                     frame: np.ndarray | None = None, title: str | None = None) -> Figure:
    """Attention of the class token per layer (rows) and head (columns), with a colour bar and a head legend.

    Args:
        spatial: (L, H, g, g) spatial attention of one frame's class token over its patches; each map is
            scaled to its own maximum (attention weights sum to 1 per head: the bar reads 0 to the map's top).
        temporal: optional (L, H, T) attention of the clip class token over the frames, drawn as a last column.
        frame: optional uint8 (S, S, 3) frame the spatial maps belong to, blended underneath.
    """
    spatial = np.asarray(spatial, dtype=np.float32)
    n_layers, n_heads = spatial.shape[:2]
    extra = 1 if temporal is not None else 0
    cell = min(0.85, (PAGE_WIDTH - 1.6) / (n_heads + 1.8 * extra))
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH, cell * n_layers + 0.9), layout="constrained")
        grid = fig.add_gridspec(n_layers, n_heads + extra, width_ratios=[1] * n_heads + [1.8] * extra)
        colours = method_colors([f"head {h + 1}" for h in range(n_heads)])
        maps = []
        for layer in range(n_layers):
            for head in range(n_heads):
                ax = fig.add_subplot(grid[layer, head])
                maps.append(ax)
                heat = spatial[layer, head]
                heat = heat / max(float(heat.max()), 1e-12)
                if frame is not None:
                    _image_axis(ax, blend(frame, heat))
                else:
                    _image_axis(ax, (colormaps[HEATMAP_CMAP](heat)[..., :3] * 255).astype(np.uint8))
                if layer == 0:
                    ax.set_title(f"head {head + 1}", fontsize=MIN_FONT)
                if head == 0:
                    ax.set_ylabel(f"layer {layer + 1}", fontsize=MIN_FONT)
            if temporal is not None:
                tem = np.asarray(temporal, dtype=np.float32)[layer]
                ax = fig.add_subplot(grid[layer, n_heads])
                for head in range(n_heads):
                    ax.plot(np.arange(tem.shape[-1]), tem[head], color=colours[f"head {head + 1}"],
                            marker=".", label=f"head {head + 1}")
                ax.set_xticks(np.arange(tem.shape[-1]))
                if layer == 0:
                    ax.set_title("over frames", fontsize=MIN_FONT)
                if layer == n_layers - 1:
                    ax.set_xlabel("frame", fontsize=MIN_FONT)
                else:
                    ax.set_xticklabels([])
        add_colorbar(fig, maps, False, "attention", ends=("0", "head max"), shrink=0.6, aspect=30, pad=0.01,
                     location="left")
        if temporal is not None:
            handles, labels = ax.get_legend_handles_labels()
            fig.legend(handles, labels, loc="outside lower right", ncols=n_heads, frameon=False,
                       title="temporal attention of the clip token")
        if title:
            fig.suptitle(title)
    return fig


def sensitivity_figure(result: SensitivityRows) -> Figure:
    """Per perturbation (columns): fake probability, spatial and temporal map stability vs strength.

    Thin lines are single clips (coloured by label), the thick line their mean; the
    first point of every curve is the clean clip (probability as is, correlation 1).
    """
    names = result.perturbations()
    rows = [("probability", "fake probability"), ("spatial_correlation", "spatial rank corr."),
            ("temporal_correlation", "temporal rank corr.")]
    label_colour = {0: "tab:blue", 1: "tab:red", -1: "0.5"}
    with figure_style():
        fig = Figure(figsize=(PAGE_WIDTH, 5.2), layout="constrained")
        axes = fig.subplots(len(rows), len(names), sharey="row", squeeze=False)
        for c, name in enumerate(names):
            sel = [r for r in result.rows if r.perturbation == name]
            strengths = list(dict.fromkeys(r.strength for r in sel))
            x = np.arange(len(strengths) + 1)
            clips = list(dict.fromkeys(r.clip for r in sel))
            for r_index, (field, ylabel) in enumerate(rows):
                ax = axes[r_index, c]
                mean = np.zeros(len(x))
                for clip in clips:
                    by_s = {r.strength: r for r in sel if r.clip == clip}
                    first = by_s[strengths[0]]
                    clean = first.base_probability if field == "probability" else 1.0
                    ys = np.array([clean] + [getattr(by_s[s], field) for s in strengths])
                    ax.plot(x, ys, color=label_colour.get(first.label, "0.5"), alpha=0.35, linewidth=0.7)
                    mean += np.nan_to_num(ys, nan=0.0) / len(clips)
                ax.plot(x, mean, color="black", linewidth=1.4, marker="o", markersize=2)
                if field == "probability":
                    ax.axhline(0.5, color="0.6", linestyle="--", linewidth=0.6)
                    ax.set_ylim(-0.02, 1.02)
                else:
                    ax.axhline(0.0, color="0.6", linewidth=0.6)
                    ax.set_ylim(-1.05, 1.05)
                ax.set_xticks(x, ["clean"] + [f"{s:g}" for s in strengths] if r_index == len(rows) - 1 else [],
                              rotation=90)
                if r_index == 0:
                    ax.set_title(_wrap(result.labels.get(name, name), 12), fontsize=MIN_FONT)
                if r_index == len(rows) - 1:
                    ax.set_xlabel(_wrap(result.units.get(name, "strength"), 12), fontsize=MIN_FONT)
                if c == 0:
                    ax.set_ylabel(ylabel, fontsize=MIN_FONT)
        fig.suptitle(f"Sensitivity of the answer and of the {result.method} explanation "
                     "(red: fake clips, blue: real; black: mean)")
    return fig


def _wrap(text: str, width: int) -> str:
    """``text`` broken into lines of about ``width`` characters (narrow panel titles)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def gallery_figure(panels: Sequence[ClipPanel], alpha: float = 0.55) -> Figure:
    """Hard-sample gallery: one row per clip, its most important frame raw and under each method, and its curves.

    The frame shown is the one the first method ranks highest, so the row shows
    where the model looked in the frame it relied on most.
    """
    if not panels:
        raise ValueError("the gallery needs at least one clip")
    methods = panels[0].methods
    colours = method_colors(methods)
    n_cols = 2 + len(methods)
    with figure_style():
        cell = min(0.95, (PAGE_WIDTH - 2.2) / (n_cols + 0.6))
        fig = Figure(figsize=(PAGE_WIDTH, cell * len(panels) + 0.9), layout="constrained")
        grid = fig.add_gridspec(len(panels), n_cols, width_ratios=[1] * (n_cols - 1) + [1.6])
        map_axes: list = []
        for row, panel in enumerate(panels):
            first = panel.explanations[methods[0]]
            t = int(np.argmax(normalized_temporal(first)))
            size = panel.frames.shape[1]
            ax = fig.add_subplot(grid[row, 0])
            _image_axis(ax, _thumb(panel.frames[t]))
            ax.set_ylabel(_wrap(panel.title, 22), fontsize=MIN_FONT, rotation=0, ha="right", va="center")
            if row == 0:
                ax.set_title("frame", fontsize=MIN_FONT)
            for c, method in enumerate(methods, start=1):
                ax = fig.add_subplot(grid[row, c])
                map_axes.append(ax)
                exp = panel.explanations[method]
                _image_axis(ax, blend(panel.frames[t], heat_to_pixels(exp, size, size)[t], alpha,
                                      signed=is_signed(exp)))
                if row == 0:
                    ax.set_title(_wrap(method_label(method), 10), fontsize=MIN_FONT)
            ax = fig.add_subplot(grid[row, n_cols - 1])
            for method in methods:
                curve = normalized_temporal(panel.explanations[method])
                ax.plot(np.arange(len(curve)), curve, color=colours[method], marker=".", linewidth=0.8,
                        label=method_label(method))
            ax.axvline(t, color="0.6", linewidth=0.6, linestyle=":")
            ax.set_xticks(np.arange(len(curve)), [] if row < len(panels) - 1 else None)
            if row == 0:
                ax.set_title("frame importance", fontsize=MIN_FONT)
        add_colorbar(fig, map_axes, False, "evidence", shrink=0.8, aspect=20, pad=0.01, location="bottom")
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower right", ncols=min(len(labels), 3), frameon=False)
    return fig
