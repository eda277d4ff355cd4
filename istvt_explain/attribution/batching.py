"""Explain more clips than fit in one model call: the one batching loop of the package.

The video pipeline, the scan, the analyses and the judge all explain long lists of clips; they cut
them into batches here (as Captum keeps its batching in one utility), so that a target stays with
its clip and every batch's result is joined the same way (``Explanation.cat``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import nn

from .base import Target
from .catalogue import DEFAULT_METHOD
from .explanation import Explanation
from .registry import get_method


class Sliceable(Protocol):
    """What ``explain_batches`` needs of its clips: a length and slices (a tensor, an array, a list)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> Any: ...


ExplainFn = Callable[..., Explanation]
"""The call shape of ``explain``: ``fn(model, clips, method=..., target=..., **options) -> Explanation``."""

BatchCallback = Callable[[int, int, Explanation], None]
"""``on_batch(done, total, part)``: called after each batch with the clips done so far, the number of
clips and the batch's explanation; it may raise to stop the loop (a check of the scores, say)."""


def explain_batches(model: nn.Module, clips: Sliceable, method: str = DEFAULT_METHOD, *,
                    target: Target = None, batch_size: int = 4,
                    to_input: Callable[[Any], torch.Tensor] | None = None,
                    on_batch: BatchCallback | None = None, explain_fn: ExplainFn | None = None,
                    **options: Any) -> Explanation:
    """Explain ``clips`` ``batch_size`` at a time and return one explanation of all of them, on the CPU.

    Args:
        clips: a normalised tensor (K, T, 3, H, W), or any sequence that slices, with ``to_input``
            turning a slice of it into the model's input (uint8 frames, positions in a crop store).
        method, options: as for ``explain``; the method is built once for all batches.
        target: as for ``explain``; one target per clip is cut into batches with the clips.
        batch_size: clips per model call (memory against speed); a batch the device has no memory for
            (``torch.OutOfMemoryError``) is done again at half the size, and so are the batches after it.
        on_batch: ``BatchCallback``.
        explain_fn: a stand-in for ``explain`` (an explainer that is not a registered method).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = len(clips)
    if total == 0:
        raise ValueError("explain_batches needs at least one clip")
    per_clip = _per_clip_targets(target, total)
    if explain_fn is None:
        explainer = get_method(method)(model, **options)
        run = explainer.attribute
    else:
        def run(inputs: Any, target: Target) -> Explanation:
            return explain_fn(model, inputs, method=method, target=target, **options)
    def prepared(first: int, size: int) -> Any:
        batch = clips[first:min(first + size, total)]
        return to_input(batch) if to_input is not None else batch

    parts: list[Explanation] = []
    first, size = 0, batch_size
    inputs = prepared(first, size)
    while first < total:
        last = min(first + size, total)
        try:
            part = run(inputs, target=per_clip[first:last] if per_clip is not None else target)
        except torch.OutOfMemoryError:
            if size == 1:
                raise
            part = None
        if part is None:
            # The device is full at this size: free what the failed call held (its traceback is gone
            # once out of the ``except``) and go on at half the size.
            inputs = None
            _release_device_memory()
            size //= 2
            inputs = prepared(first, size)
            continue
        # The next batch's input is made (gathered, sent to the device) before this one's result is
        # taken off the device: on a GPU the copy overlaps the work still queued for this batch.
        inputs = prepared(last, size) if last < total else None
        parts.append(Explanation.cat([part]))  # off the device at once: a long video's maps stay in memory
        if on_batch is not None:
            on_batch(last, total, part)
        first = last
    return Explanation.cat(parts)


def default_batch_size(device: torch.device | str) -> int:
    """Clips per model call when the caller does not say: ``GPU_BATCH_SIZE`` on a GPU, else ``CPU_BATCH_SIZE``.

    Why two: a CPU is busy at 4 clips and more only costs memory; a GPU at 4 clips waits on kernel
    launches and copies (the video's explain stage took three times the method's own time on 100
    clips), and ``explain_batches`` halves a batch the GPU has no memory for.
    """
    return GPU_BATCH_SIZE if torch.device(device).type == "cuda" else CPU_BATCH_SIZE


CPU_BATCH_SIZE = 4
GPU_BATCH_SIZE = 32


def _release_device_memory() -> None:
    import gc

    gc.collect()  # the failed call's tensors, held by its traceback's frames until now
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _per_clip_targets(target: Target, total: int) -> Sequence[int] | None:
    """The targets as one entry per clip when ``target`` gives one per clip, else None (shared)."""
    if target is None or isinstance(target, (int, str)):
        return None
    values = torch.as_tensor(target).reshape(-1).tolist()
    if len(values) != total:
        raise ValueError(f"got {len(values)} targets for {total} clips")
    return values
