"""What is known about each built-in explanation method before any of it runs: torch-free.

The command line lists the methods in its help and the renderers label and colour their maps from
here, without importing torch.  Each method class carries its ``MethodFacts`` as the attribute
``facts`` (``Attribution``), so a method's name, label and sign are written once, in this table,
and a method of one's own carries its facts on its class the same way (``registry``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cost = Literal["forward", "backward", "many-passes"]
"""How much work one explanation takes: one forward pass; a forward and one backward pass; or many
passes (a path integral, a sliding occlusion): the Captum baselines that take minutes per clip on a CPU."""


@dataclass(frozen=True)
class MethodFacts:
    """The facts of one method, for tables, legends, colour maps and schedulers.

    Attributes:
        name: the registry key (``explain(method=name)``, ``--method NAME``): lower case, words joined by
            hyphens.
        label: the name a legend or a report prints.
        short_label: the name a figure's row label prints (narrow).
        signed: its maps carry evidence against the explained class as negative values, drawn on a
            diverging map centred on 0 (docs/display.md); every other method's maps are clipped at 0.
        needs_gradients: it asks autograd for gradients (the model must allow them).
        cost: ``Cost``.
        aliases: older names it still answers to.
    """

    name: str
    label: str
    short_label: str = ""
    signed: bool = False
    needs_gradients: bool = False
    cost: Cost = "forward"
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.short_label:
            object.__setattr__(self, "short_label", self.name.replace("-", " "))


BUILT_IN: dict[str, MethodFacts] = {facts.name: facts for facts in (
    MethodFacts("relevance", "Gradient-weighted relevance (Chefer 2021)", needs_gradients=True, cost="backward"),
    MethodFacts("rollout", "Attention rollout"),
    MethodFacts("attention", "Raw attention (last block)"),
    MethodFacts("spatial-only", "Spatial relevance only", needs_gradients=True, cost="backward",
                aliases=("spatial_only",)),
    MethodFacts("temporal-only", "Temporal relevance only", needs_gradients=True, cost="backward",
                aliases=("temporal_only",)),
    MethodFacts("lrp", "LRP transformer attribution (Chefer 2021)", signed=True, needs_gradients=True,
                cost="backward"),
    MethodFacts("saliency", "Saliency", needs_gradients=True, cost="backward"),
    MethodFacts("integrated-gradients", "Integrated Gradients", short_label="integr. gradients", signed=True,
                needs_gradients=True, cost="many-passes", aliases=("integrated_gradients",)),
    MethodFacts("occlusion", "Occlusion (space-time patches)", signed=True, cost="many-passes"),
    MethodFacts("frame-ablation", "Frame ablation", signed=True, cost="many-passes",
                aliases=("feature_ablation", "feature-ablation")),
)}
"""The built-in methods, in the order of the command line's help (the default first)."""

BUILT_IN_MODULES = ("attention_methods", "captum_methods", "lrp")
"""The modules of ``istvt_explain.attribution`` that define the built-in classes (imported on first use)."""

DEFAULT_METHOD = "relevance"

ALIASES: dict[str, str] = {alias: facts.name for facts in BUILT_IN.values() for alias in facts.aliases}


def canonical_name(name: str) -> str:
    """The current name of a method that may be given by an older one (``feature_ablation``)."""
    return ALIASES.get(name, name)
