"""Maps that read no model: the references a method must beat, and the fools a judge must fail.

A judge is only as good as the bad answers it rejects.  Three maps whose faults are known by
construction run beside the real methods in every committed judging (``FOOLS``) and in the tests:

* ``fool-fresh-noise``: fresh uniform noise at every call.  It changes under randomisation (so an
  Adebayo check alone passes it), but it does not repeat: the sanity criterion must fail it.
* ``fool-centre-prior``: a fixed Gaussian blob in the middle of every frame, where faces sit.  It reads
  neither model nor clip; pointing compares every method with it, so it cannot beat itself, and it does
  not change under randomisation either.
* ``fool-negated-relevance``: the ``relevance`` map turned upside down.  It puts the least relevant
  tokens first, so where ``relevance`` passes deletion it must fail it.

The same centre prior, and the mean manipulation mask of the *other* people of a judging set (the
prior the data suggests: where blends usually are), are the references of the pointing criterion.
"""

from __future__ import annotations

import torch

from ...attribution.attention_methods import Relevance
from ...attribution.base import Attribution, MethodResult, Target

CENTRE_SIGMA = 0.25  # the blob's standard deviation, as a share of the grid side


def centre_prior(frames: int, grid: int, sigma: float = CENTRE_SIGMA) -> torch.Tensor:
    """(frames, grid, grid) Gaussian blob centred on every frame, peak 1."""
    centres = torch.arange(grid, dtype=torch.float64) - (grid - 1) / 2
    d2 = centres[:, None] ** 2 + centres[None, :] ** 2
    blob = torch.exp(-d2 / (2 * (sigma * grid) ** 2)).float()
    return blob.expand(frames, grid, grid).clone()


class FreshNoise(Attribution):
    """Uniform noise, drawn afresh at every call (see the module doc)."""

    name = "fool-fresh-noise"
    label = "Fool: fresh noise"

    def maps(self, clips: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.model.config.grid
        b, t = clips.shape[:2]
        return torch.rand(b, t, g, g, device=clips.device), torch.rand(b, t, device=clips.device)


class CentrePrior(Attribution):
    """The centre prior as a method: the same blob for every clip and frame (see the module doc)."""

    name = "fool-centre-prior"
    label = "Fool: centre prior"

    def maps(self, clips: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = clips.shape[:2]
        blob = centre_prior(t, self.model.config.grid).to(clips.device)
        return blob.expand(b, -1, -1, -1).clone(), torch.ones(b, t, device=clips.device)


class NegatedRelevance(Relevance):
    """``relevance`` with every value negated: its ranking turned upside down (see the module doc)."""

    name = "fool-negated-relevance"
    label = "Fool: negated relevance"

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        spatial, temporal, logits, index, extras = super()._attribute(clips, target)
        return MethodResult(-spatial, -temporal, logits, index, {})


FOOLS: tuple[type[Attribution], ...] = (FreshNoise, CentrePrior, NegatedRelevance)
"""The known-bad maps every committed judging runs beside the real methods."""
