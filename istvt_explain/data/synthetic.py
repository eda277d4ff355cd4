"""Generated clips with an easy, known signal: smoke tests, benchmarks and CI, no data needed.

A fake clip carries a square whose brightness flickers from frame to frame; a real clip does not.
A model that learns anything learns this within a few steps, so a falling loss means the loop works.
"""

from __future__ import annotations

import torch

from .datasets.pairs import AlternatingPairs


class SyntheticClipDataset(AlternatingPairs):
    """``length`` clips (T, 3, S, S) in [-1, 1], alternately real (even index) and fake (odd index).

    ``broken`` indices raise OSError, as a missing or corrupt video would.
    """

    def __init__(self, length: int, frames: int, size: int, seed: int = 0,
                 broken: tuple[int, ...] = ()) -> None:
        if length < 1 or frames < 1 or size < 8:
            raise ValueError(f"need length >= 1, frames >= 1, size >= 8; got {length}, {frames}, {size}")
        self.length, self.frames, self.size, self.seed = length, frames, size, seed
        self.broken = set(broken)

    def __getitem__(self, index: int) -> dict:
        self._check_index(index)
        if index in self.broken:
            raise OSError(f"synthetic video {index} is unreadable")
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        clip = torch.rand(self.frames, 3, self.size, self.size, generator=gen) * 0.6 - 0.3
        fake = index % 2 == 1
        mask = torch.zeros(self.frames, self.size, self.size)
        if fake:
            s = self.size // 3
            y, x = (int(v) for v in torch.randint(0, self.size - s, (2,), generator=gen))
            flicker = torch.tensor([0.6 if t % 2 else -0.6 for t in range(self.frames)])
            clip[:, :, y:y + s, x:x + s] += flicker.view(-1, 1, 1, 1)
            mask[:, y:y + s, x:x + s] = 1.0
        return {"clip": clip.clamp(-1, 1), "label": float(fake), "video_id": f"synthetic-{index // 4}",
                "manipulation": "flicker" if fake else "real", "mask": mask}
