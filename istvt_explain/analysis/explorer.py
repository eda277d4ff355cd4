"""An interactive explorer for notebooks: clip, method, frame, layer, head and overlay opacity.

Three layers, so that everything but the widgets is testable without a browser:

* ``ExplorerData`` computes and caches explanations and per-head attention (the model work);
* ``explorer_view`` / ``render_view`` are plain functions from a state to a picture;
* ``Explorer`` wires ipywidgets to them; every widget change calls ``Explorer.update``,
  which redraws one ``Image`` widget in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..attribution.explanation import Explanation
from ..models.device import model_device
from ..render.figures import blend, heat_to_pixels, normalized_temporal
from ..render.style import COLUMN_WIDTH, figure_png, figure_style
from .attention import HeadAttention, head_attention
from .common import ExplainFn, explain_batched, model_input


@dataclass(frozen=True)
class ExplorerState:
    """What the user chose.  ``layer`` and ``head`` index the model's attention modules."""

    clip: int = 0
    method: str = "relevance"
    frame: int = 0
    layer: int = 0
    head: int = 0
    alpha: float = 0.6


class ExplorerData:
    """Clips and a model; explanations and attention computed on first use and cached.

    Args:
        model: the detector.
        clips: uint8 (K, T, S, S, 3).
        names: one name per clip, shown in the clip menu.
        methods: the explanation methods offered.
        explain_fn: stand-in for ``istvt_explain.attribution.explain``.
    """

    def __init__(self, model: torch.nn.Module, clips: np.ndarray, names: Sequence[str] | None = None,
                 methods: Sequence[str] = ("relevance", "rollout", "attention"),
                 explain_fn: ExplainFn | None = None) -> None:
        if clips.dtype != np.uint8 or clips.ndim != 5:
            raise ValueError(f"clips must be uint8 (K, T, S, S, 3), got {clips.dtype} {tuple(clips.shape)}")
        if not methods:
            raise ValueError("the explorer needs at least one method")
        self.model = model
        self.clips = clips
        self.names = list(names) if names is not None else [f"clip {i}" for i in range(len(clips))]
        if len(self.names) != len(clips):
            raise ValueError(f"{len(self.names)} names for {len(clips)} clips")
        self.methods = list(methods)
        self.explain_fn = explain_fn
        self._explanations: dict[tuple[int, str], Explanation] = {}
        self._attention: dict[int, HeadAttention] = {}

    @property
    def frames(self) -> int:
        return self.clips.shape[1]

    @property
    def layers(self) -> int:
        return len(getattr(self.model, "blocks", [])) or self.attention(0).layers

    @property
    def heads(self) -> int:
        config = getattr(self.model, "config", None)
        return config.heads if config is not None else self.attention(0).heads

    def explanation(self, clip: int, method: str) -> Explanation:
        key = (clip, method)
        if key not in self._explanations:
            self._explanations[key] = explain_batched(self.model, self.clips[clip:clip + 1], method,
                                                      explain_fn=self.explain_fn)[0]
        return self._explanations[key]

    def attention(self, clip: int) -> HeadAttention:
        if clip not in self._attention:
            self._attention[clip] = head_attention(self.model, model_input(self.clips[clip:clip + 1],
                                                                           model_device(self.model)))
        return self._attention[clip]


@dataclass(frozen=True)
class ExplorerView:
    """What the explorer shows for one state: three images/curves and a caption."""

    overlay: np.ndarray  # uint8 (S, S, 3)
    temporal: np.ndarray  # (T,) share of importance
    head_overlay: np.ndarray  # uint8 (S, S, 3)
    head_temporal: np.ndarray  # (T,) the chosen head's attention over frames
    caption: str
    state: ExplorerState


def clamp_state(state: ExplorerState, data: ExplorerData) -> ExplorerState:
    """Bring every index into range (a slider may be set beyond the data by code)."""
    def clip_to(v: int, n: int) -> int:
        return int(min(max(v, 0), n - 1))

    method = state.method if state.method in data.methods else data.methods[0]
    return replace(state, clip=clip_to(state.clip, len(data.clips)), frame=clip_to(state.frame, data.frames),
                   layer=clip_to(state.layer, data.layers), head=clip_to(state.head, data.heads),
                   alpha=float(min(max(state.alpha, 0.0), 1.0)), method=method)


def explorer_view(data: ExplorerData, state: ExplorerState) -> ExplorerView:
    """The pictures for ``state`` (computing what is not cached yet)."""
    state = clamp_state(state, data)
    frames = data.clips[state.clip]
    size = frames.shape[1]
    exp = data.explanation(state.clip, state.method)
    heat = heat_to_pixels(exp, size, size)[state.frame]
    att = data.attention(state.clip)
    head_map = att.spatial[state.layer, state.head, state.frame]
    head_map = (head_map - head_map.min()) / max(float(np.ptp(head_map)), 1e-12)
    prob = float(exp.fake_probability[0])
    caption = (f"{data.names[state.clip]}: fake probability {prob:.3f} | {state.method}, frame {state.frame}"
               f" | attention layer {state.layer + 1}, head {state.head + 1}")
    signed = exp.display_scale().signed  # the display convention of docs/display.md, as in the video
    return ExplorerView(blend(frames[state.frame], heat, state.alpha, size=None, signed=signed),
                        normalized_temporal(exp),
                        blend(frames[state.frame], head_map, state.alpha, size=None),
                        att.temporal[state.layer, state.head], caption, state)


def render_view(view: ExplorerView) -> Figure:
    """Overlay | frame-importance curve | the chosen head's attention (map and curve over frames)."""
    s = view.state
    with figure_style():
        fig = Figure(figsize=(2 * COLUMN_WIDTH, 1.9), layout="constrained")
        ax_img, ax_curve, ax_head, ax_head_t = fig.subplots(1, 4, width_ratios=[1, 1.3, 1, 1.1])
        for ax, image, title in ((ax_img, view.overlay, f"{s.method}, frame {s.frame}"),
                                 (ax_head, view.head_overlay, f"layer {s.layer + 1}, head {s.head + 1}")):
            ax.imshow(image)
            ax.set_title(title)
            ax.set_axis_off()
        x = np.arange(len(view.temporal))  # frames counted from 0, as everywhere
        ax_curve.plot(x, view.temporal, marker="o")
        ax_curve.axvline(s.frame, color="0.5", linestyle=":")
        ax_curve.set(title="frame importance", xlabel="frame", xticks=x)
        ax_head_t.bar(np.arange(len(view.head_temporal)), view.head_temporal, color="tab:purple")
        ax_head_t.set(title="head: clip token over frames", xlabel="frame", xticks=x)
    return fig


class Explorer:
    """The ipywidgets front end: ``display(Explorer(data).widget)`` in a notebook."""

    def __init__(self, data: ExplorerData, state: ExplorerState | None = None) -> None:
        import ipywidgets as w

        self.data = data
        self.state = clamp_state(state or ExplorerState(method=data.methods[0]), data)
        s = self.state
        self.controls: dict[str, Any] = {
            "clip": w.Dropdown(options=[(n, i) for i, n in enumerate(data.names)], value=s.clip, description="clip"),
            "method": w.Dropdown(options=data.methods, value=s.method, description="method"),
            "frame": w.IntSlider(value=s.frame, min=0, max=data.frames - 1, description="frame"),
            "layer": w.IntSlider(value=s.layer, min=0, max=data.layers - 1, description="layer"),
            "head": w.IntSlider(value=s.head, min=0, max=data.heads - 1, description="head"),
            "alpha": w.FloatSlider(value=s.alpha, min=0.0, max=1.0, step=0.05, description="opacity"),
        }
        self.image = w.Image(format="png")
        self.caption = w.HTML()
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = w.VBox([w.HBox([self.controls["clip"], self.controls["method"]]),
                              w.HBox([self.controls["frame"], self.controls["alpha"]]),
                              w.HBox([self.controls["layer"], self.controls["head"]]),
                              self.caption, self.image])
        self.update()

    def _on_change(self, _change: dict | None = None) -> None:
        self.update()

    def read_controls(self) -> ExplorerState:
        return ExplorerState(**{name: control.value for name, control in self.controls.items()})

    def update(self) -> ExplorerView:
        """Recompute from the controls and redraw the image in place."""
        self.state = clamp_state(self.read_controls(), self.data)
        view = explorer_view(self.data, self.state)
        self.image.value = figure_png(render_view(view), dpi=90, colours=None)
        self.caption.value = f"<b>{view.caption}</b>"
        return view
