"""Removing evidence without leaving the data: noisy linear imputation (ROAD, Rong et al., ICML 2022).

Deletion and insertion ask how the score moves when the tokens a map ranks first are removed.  If
"removed" means blurred or greyed, the model also reacts to the blur or the grey itself (the demo
weights call a blurred face more fake), and the curve measures that instead.  ROAD replaces every
removed pixel by the weighted mean of its eight neighbours (1/6 for the four direct ones, 1/12 for the
diagonals, the weights of neighbours outside the frame left out), solved jointly for all removed pixels,
so a hole is filled smoothly from its border, and adds a little Gaussian noise.

The linear system (symmetric, positive definite) is solved here by conjugate gradients on the GPU or CPU,
for many frames at once, coarse to fine: each level halves the resolution until the frame is a few pixels
wide, the coarsest level starts from each frame's mean colour (which is also what a frame with every
pixel removed becomes), and each finer level starts from the upsampled coarser solution.  ``tests/test_judging.py`` holds it against
the direct sparse solve of the same equations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NOISE = 0.01  # standard deviation of the added noise, in the model's normalised units (range 2)


def _weighted_neighbours(x: torch.Tensor) -> torch.Tensor:
    """Sum of the eight neighbours weighted 1/6 (direct) and 1/12 (diagonal), zero outside the frame.

    The kernel is ``([1, 2, 1] outer [1, 2, 1] - 4 at the centre) / 12``: two separable passes of
    shifted adds, several times faster on a CPU than a depthwise convolution.
    """
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., :-2, :] + 2 * p[..., 1:-1, :] + p[..., 2:, :]
    both = rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]
    return (both - 4 * x) / 12


def _solve(frames: torch.Tensor, known: torch.Tensor, start: torch.Tensor, iterations: int) -> torch.Tensor:
    """Conjugate gradients on ``s_i x_i - sum_j w_ij x_j = 0`` for the unknown pixels (known ones fixed):
    the system is symmetric positive definite (a weighted Laplacian with the known pixels as border).
    Every frame and channel is its own system; all of them advance together."""
    unknown = (~known).to(frames.dtype)
    weight_sum = _weighted_neighbours(torch.ones_like(frames[:1, :1]))  # the neighbours inside the frame

    def operator(v: torch.Tensor) -> torch.Tensor:  # v is zero on known pixels
        return (weight_sum * v - _weighted_neighbours(v)) * unknown

    fixed = frames * (1 - unknown)
    x = start * unknown
    # A frame without a known pixel has no border to solve from (the system is singular): it keeps its start.
    solvable = (1 - unknown).flatten(-2).amax(-1)[..., None, None] > 0
    residual = ((_weighted_neighbours(fixed) * unknown) - operator(x)) * solvable
    direction = residual.clone()
    rr = (residual * residual).sum(dim=(-1, -2), keepdim=True)
    for _ in range(iterations):
        ad = operator(direction)
        curvature = (direction * ad).sum(dim=(-1, -2), keepdim=True)
        step = torch.where(curvature > 0, rr / curvature.clamp_min(1e-30), torch.zeros_like(rr))  # converged: 0
        x = x + step * direction
        residual = residual - step * ad
        rr_next = (residual * residual).sum(dim=(-1, -2), keepdim=True)
        direction = residual + torch.where(rr > 0, rr_next / rr.clamp_min(1e-30), torch.zeros_like(rr)) * direction
        rr = rr_next
    return fixed + x * unknown


def _coarse(frames: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half resolution: each coarse pixel is the mean of its known fine pixels (unknown when it has none)."""
    weight = F.avg_pool2d(known.float(), 2, ceil_mode=True)
    values = F.avg_pool2d(frames * known, 2, ceil_mode=True) / weight.clamp_min(1e-12)
    return values, weight > 0


def linear_imputation(frames: torch.Tensor, unknown: torch.Tensor, *, noise: float = NOISE,
                      generator: torch.Generator | None = None, iterations: int = 24, refine: int = 0
                      ) -> torch.Tensor:
    """``frames`` (N, C, H, W) with the pixels where ``unknown`` (N, 1, H, W) is True imputed (see the
    module doc).  Known pixels are returned unchanged; ``noise`` 0 gives the plain linear solution.

    ``iterations``: conjugate-gradient steps at every level below full resolution; ``refine``: at full
    resolution.  With the default 0, the system is solved at half resolution and the solution upsampled
    into the holes (a quarter of the work; the filled values differ from the full-resolution solution by
    about 2 % of the value range, mostly along the holes' borders: ``tests/test_judging.py``).
    """
    known = (~unknown.bool()).expand_as(frames)
    solution = _coarse_to_fine(frames, known, iterations, refine)
    if noise > 0:
        draw = torch.randn(frames.shape, generator=generator, dtype=frames.dtype)
        solution = solution + noise * draw.to(frames.device)
    return torch.where(known, frames, solution)


def _coarse_to_fine(frames: torch.Tensor, known: torch.Tensor, iterations: int, refine: int) -> torch.Tensor:
    count = known.float().flatten(2).sum(-1)[..., None, None]
    mean = (frames * known).flatten(2).sum(-1)[..., None, None] / count.clamp_min(1)
    mean = torch.where(count > 0, mean, frames.mean(dim=(-1, -2), keepdim=True))  # no known pixel: the frame mean
    if bool(known.all()):
        return frames
    if min(frames.shape[-2:]) <= 6:
        start = mean.expand_as(frames)
    else:
        small, small_known = _coarse(frames, known)
        coarse = _coarse_to_fine(torch.where(small_known, small, mean.expand_as(small)), small_known, iterations,
                                 iterations)
        start = F.interpolate(coarse, size=frames.shape[-2:], mode="bilinear", align_corners=False)
    return _solve(frames, known, start, refine) if refine else torch.where(known, frames, start)
