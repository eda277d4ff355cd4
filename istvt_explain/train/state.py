"""Everything a killed run needs to go on exactly where it stopped.

The resumable state is one file written atomically (write, then rename): model, optimizer and
scheduler state, the position in the epoch, the best score so far and every random generator.
It holds only tensors and plain containers, so it loads with ``torch.load(weights_only=True)``:
random states are stored as tensors, never as pickled objects.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..data._files import atomic_write, part_pattern, remove_stale_parts
from ..models.weights import CheckpointError, safe_torch_load

STATE_VERSION = 1


class ResumableSampler(DistributedSampler):
    """A DistributedSampler that can start part-way into an epoch.

    The order of an epoch depends only on (seed, epoch), so skipping the first ``start`` samples of
    this process's share gives the batches an uninterrupted run would have seen next.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=False)
        self.start = 0

    def set_start(self, start: int) -> None:
        self.start = max(0, int(start))

    @property
    def group_size(self) -> int:
        """Items that must stay together in one batch (2 for real/pseudo-fake pairs), else 1."""
        size = int(getattr(self.dataset, "group_size", 1))
        return size if size > 1 and self.shuffle and len(self.dataset) % size == 0 else 1

    def _epoch_indices(self) -> list[int]:
        size = self.group_size
        if size == 1:
            return list(super().__iter__())
        # Shuffle whole groups and hand each process whole groups, so a pair is never split.
        gen = torch.Generator()
        gen.manual_seed(self.seed + self.epoch)
        groups = torch.randperm(len(self.dataset) // size, generator=gen).tolist()
        groups += groups[: (-len(groups)) % self.num_replicas]
        return [g * size + j for g in groups[self.rank::self.num_replicas] for j in range(size)]

    def __iter__(self) -> Iterator[int]:
        return iter(self._epoch_indices()[self.start:])

    def __len__(self) -> int:
        total = self.num_samples if self.group_size == 1 else len(self._epoch_indices())
        return max(0, total - self.start)


# -- random states as tensors -----------------------------------------------------------------------
def capture_rng() -> dict[str, torch.Tensor]:
    """Python, NumPy (legacy global), torch CPU and CUDA generator states, all as tensors."""
    version, py_state, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    out = {
        "python": torch.tensor(list(py_state), dtype=torch.int64),
        "python_meta": torch.tensor([version, 0 if gauss is None else 1], dtype=torch.int64),
        "python_gauss": torch.tensor([0.0 if gauss is None else gauss], dtype=torch.float64),
        "numpy_keys": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_meta": torch.tensor([np_pos, np_has_gauss], dtype=torch.int64),
        "numpy_gauss": torch.tensor([np_gauss], dtype=torch.float64),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return out


def restore_rng(state: dict[str, torch.Tensor]) -> None:
    version, has_gauss = state["python_meta"].tolist()
    gauss = float(state["python_gauss"].item()) if has_gauss else None
    random.setstate((version, tuple(state["python"].tolist()), gauss))
    pos, np_has_gauss = state["numpy_meta"].tolist()
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), pos, np_has_gauss,
                         float(state["numpy_gauss"].item())))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# -- the state file ---------------------------------------------------------------------------------
def save_state(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scheduler: Any, progress: dict[str, Any], rng: list[dict[str, torch.Tensor]],
               config: dict[str, Any]) -> None:
    """Write the resumable state (``rng``: one entry per process, in rank order) atomically."""
    state = {
        "version": STATE_VERSION,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": dict(progress),
        "rng": rng,
        "config": config,
    }
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def remove_orphaned_parts(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """Delete the temporary ``.NAME.*.part`` files that ``atomic_write`` left when a run was killed
    mid-write (up to a full state each); only for ``names``, the files this run writes itself.

    Called before this run writes anything: every such file there is an earlier run's."""
    return remove_stale_parts(folder, [part_pattern(name) for name in names], time.time())


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state file safely (``weights_only=True``) with a clear error when it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no training state to resume from")
    state = safe_torch_load(path, "training state")
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: not an istvt-explain training state (version {STATE_VERSION})")
    return state
