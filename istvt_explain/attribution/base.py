"""The call shape every method shares: ``Method(model, **options).attribute(clips, target=None)``.

``attribute`` validates the input, copies it to the model's device (the
caller's tensor is never touched), puts the model in eval mode for the call,
resolves the target and hands over to the method's ``_attribute``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from ..errors import MethodOutputError
from ..models.precision import DEFAULT_PRECISION, autocast, resolve_precision, upcast
from .catalogue import Cost, MethodFacts
from .explanation import Explanation

Target = int | str | Sequence[int] | torch.Tensor | None

_CLASS_NAMES = {"real": 0, "fake": 1}


def class_scores(model: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """Logits -> (B, C) class scores in which every class has its own column.

    A one-logit head (the paper's) scores "fake" with the logit and "real" with
    its negation, so column 0 = real, column 1 = fake, and explaining either
    class is the same operation as for a multi-class head.
    """
    if model.config.num_classes == 1:
        logit = logits.reshape(-1)
        return torch.stack([-logit, logit], dim=1)
    return logits


def raw_logits(model: nn.Module, logits: torch.Tensor) -> torch.Tensor:
    """The head's output before the calibration temperature: ``logits * T`` (``model.temperature``).

    Methods attribute this raw score, so calibrating a checkpoint changes the probabilities an
    explanation reports but never its maps (Chefer's ``R <- R + Mbar R`` is not scale-invariant,
    and gradient maps would otherwise shrink by ``1/T``).  Unchanged when the model has no temperature.
    """
    temperature = getattr(model, "temperature", None)
    return logits if temperature is None else logits * temperature.to(logits.dtype)


def resolve_target(model: nn.Module, target: Target, batch: int, logits: torch.Tensor) -> torch.Tensor:
    """The class column (of ``class_scores``) to explain for every clip, as a (B,) long tensor.

    ``None`` means the fake class for a one-logit head and the predicted class
    otherwise; ``"fake"``/``"real"`` name the two classes of a one- or
    two-class head; an int applies to every clip; a sequence gives one per clip.
    """
    classes = max(2, model.config.num_classes)
    if target is None:
        if model.config.num_classes == 1:
            return torch.ones(batch, dtype=torch.long, device=logits.device)
        return logits.argmax(dim=1)
    if isinstance(target, str):
        if target not in _CLASS_NAMES or classes != 2:
            raise ValueError(f"target {target!r}: names are 'fake' and 'real' (two-class models only)")
        target = _CLASS_NAMES[target]
    if isinstance(target, int):
        index = torch.full((batch,), target, dtype=torch.long, device=logits.device)
    else:
        index = torch.as_tensor(target, dtype=torch.long, device=logits.device).reshape(-1)
        if index.numel() != batch:
            raise ValueError(f"got {index.numel()} targets for a batch of {batch} clips")
    if (index < 0).any() or (index >= classes).any():
        raise ValueError(f"target class out of range: the model has {classes} classes, got {index.tolist()}")
    return index


def class_probability(model: nn.Module, logits: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fake probability, probability of the explained class), both (B,)."""
    if model.config.num_classes == 1:
        fake = torch.sigmoid(logits.reshape(-1))
        return fake, torch.where(index == 1, fake, 1 - fake)
    probs = logits.softmax(dim=1)
    fake = probs[:, 1] if probs.shape[1] == 2 else probs.gather(1, index[:, None]).squeeze(1)
    return fake, probs.gather(1, index[:, None]).squeeze(1)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Explain the inference model (BatchNorm statistics, no dropout); restore the mode after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class MethodResult(NamedTuple):
    """What ``_attribute`` hands back; ``attribute`` turns it into an ``Explanation``."""

    spatial: torch.Tensor  # (B, T, g, g)
    temporal: torch.Tensor  # (B, T)
    logits: torch.Tensor  # the model output on the clips
    index: torch.Tensor  # (B,) explained class columns
    extras: dict[str, Any]


class Attribution:
    """Base of every explanation method.

    Subclasses set ``name`` (registry key), ``label`` (legend text), ``signed`` (their maps hold
    evidence against the class as negative values) and implement ``maps(clips, target) -> (spatial,
    temporal)``: the public contract, enough for a method of one's own; the class then carries these
    facts as ``facts`` (``catalogue.MethodFacts``).  The built-ins take theirs from the catalogue
    (``facts = BUILT_IN[...]``, which sets the same attributes) and implement ``_attribute(clips,
    target) -> MethodResult`` instead, which runs the forward and resolves the target with
    ``self._index`` (so no method pays for an extra forward pass).
    Options are keyword arguments of ``__init__``; ``settings`` records them.  Every method takes
    ``precision`` (``models.precision``: ``auto``, the default, ``fp32``, ``bf16``, ``fp16``): the model
    runs under autocast and the method's own arithmetic stays in float32.
    """

    facts: ClassVar[MethodFacts]
    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    signed: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = True
    cost: ClassVar[Cost] = "backward"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "facts" in cls.__dict__:  # a built-in: the catalogue's facts become its attributes
            facts = cls.facts
            cls.name, cls.label, cls.signed = facts.name, facts.label, facts.signed
            cls.needs_gradients, cls.cost = facts.needs_gradients, facts.cost
        elif cls.name:  # a method of one's own: its attributes become its facts
            cls.facts = MethodFacts(cls.name, cls.label or cls.name, signed=cls.signed,
                                    needs_gradients=cls.needs_gradients, cost=cls.cost)

    def __init__(self, model: nn.Module, *, precision: str = DEFAULT_PRECISION, **options: Any) -> None:
        if not hasattr(model, "attention_modules") or not hasattr(model, "config"):
            raise ValueError("explanations need an ISTVT model (istvt_explain.create_model / load_model)")
        if options:
            raise ValueError(f"{self.name}: unknown option(s) {', '.join(sorted(options))}")
        resolve_precision(precision, "cpu")  # refuses an unknown name now, not at the first clip
        self.model = model
        self.precision = precision
        self.settings: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def attribute(self, clips: torch.Tensor, target: Target = None) -> Explanation:
        """Explain ``clips`` (B, T, 3, H, W) for ``target`` (see ``resolve_target``)."""
        if not isinstance(clips, torch.Tensor):
            raise ValueError(f"clips must be a torch.Tensor (B, T, 3, H, W), got {type(clips).__name__}")
        self.model.check_clips(clips)
        private = clips.detach().to(device=self.device, dtype=self.dtype, copy=True)
        with eval_mode(self.model), autocast(self.precision, self.device) as precision:
            spatial, temporal, logits, index, extras = self._attribute(private, target)
        check_method_maps(self.name, spatial, temporal, logits, clips.shape[0], clips.shape[1])
        spatial, temporal, logits = upcast(spatial), upcast(temporal), upcast(logits)
        extras = {k: upcast(v) if isinstance(v, torch.Tensor) else v for k, v in extras.items()}
        fake, explained = class_probability(self.model, logits.detach(), index)
        extras.setdefault("target_probability", explained)
        extras.setdefault("target_index", index)
        return Explanation(
            spatial=spatial.detach(), temporal=temporal.detach(), fake_probability=fake.detach(),
            logits=logits.detach(), method=self.name, target=_plain_target(target),
            settings={"label": self.label, **self.settings, "precision": precision}, extras=extras,
        )

    def maps(self, clips: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The one method a new explanation needs: ``(spatial (B, T, h, w), temporal (B, T))``.

        ``clips`` (B, T, 3, H, W) is a private, normalised copy on the model's device; ``target``
        (B,) the class column to explain for each clip (1 = fake).  Larger values mean more evidence
        for the target.  Gradients are available (no ``no_grad`` around the call).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement maps(clips, target)")

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        """Built-ins override this (to share their forward pass); a method that defines ``maps`` gets
        a separate no-grad forward for the logits."""
        with torch.no_grad():
            logits = self.model(clips)
        index = self._index(target, logits)
        spatial, temporal = self.maps(clips, index)  # checked in ``attribute``, as every method's maps are
        return MethodResult(spatial, temporal, logits, index, {})

    def _index(self, target: Target, logits: torch.Tensor) -> torch.Tensor:
        return resolve_target(self.model, target, logits.shape[0], logits.detach())

    # -- helpers shared by methods ---------------------------------------------------------------
    def _scores(self, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(B,) raw score (``raw_logits``) of the explained class of each clip; clips are independent
        so one sum suffices."""
        return class_scores(self.model, raw_logits(self.model, logits)).gather(1, index[:, None]).squeeze(1)

    def _grid_maps(self, token_maps: torch.Tensor) -> torch.Tensor:
        """(B, T, N) patch values -> (B, T, g, g)."""
        g = self.model.config.grid
        return token_maps.reshape(token_maps.shape[0], token_maps.shape[1], g, g)


def check_method_maps(name: str, spatial: Any, temporal: Any, logits: torch.Tensor, batch: int, frames: int) -> None:
    """``MethodOutputError`` unless the maps are tensors of the right shape, finite for every clip the model
    scored finitely.

    The one check every method's output passes (``Attribution.attribute``): a plugin is held to what the
    built-ins are, and a broken map becomes one clear error instead of "importance 1.0" or ``null`` in a
    report.  A clip whose score is itself NaN is the model's fault, named as such by the video job.
    """
    for what, maps, dims in (("spatial maps", spatial, 4), ("frame importance", temporal, 2)):
        shape = tuple(getattr(maps, "shape", ()))
        fits = shape[:2] == (batch, frames) and len(shape) == dims and all(n >= 1 for n in shape)
        if not isinstance(maps, torch.Tensor) or not fits:
            wanted = f"({batch}, {frames}, h, w)" if dims == 4 else f"({batch}, {frames})"
            raise MethodOutputError(name, f"maps of the wrong shape: {what} {shape} ({type(maps).__name__}), "
                                          f"not a tensor {wanted}")
    scored = torch.isfinite(logits.detach().float().reshape(batch, -1)).all(dim=1)
    for what, maps in (("spatial maps", spatial), ("frame importance", temporal)):
        values = maps.detach()
        broken = ~torch.isfinite(values.reshape(batch, -1)).all(dim=1) & scored.to(values.device)
        if bool(broken.any()):
            clip = int(torch.nonzero(broken)[0])
            kind = "NaN" if bool(torch.isnan(values[clip]).any()) else "infinite"
            raise MethodOutputError(name, f"{kind} maps", clip, what)


def _plain_target(target: Target) -> int | None:
    if target is None:
        return None
    if isinstance(target, str):
        return _CLASS_NAMES[target]
    if isinstance(target, int):
        return target
    values = torch.as_tensor(target).reshape(-1).unique()
    return int(values[0]) if values.numel() == 1 else None
