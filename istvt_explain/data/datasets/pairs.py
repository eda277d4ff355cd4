"""Data sets of real and fake clips in alternation: item 2k real, item 2k + 1 fake."""

from __future__ import annotations

from torch.utils.data import Dataset


class AlternatingPairs(Dataset):
    """Base of a data set whose even items are real and odd items fake, ``length`` of them in all:
    its labels are known without loading an item (samplers and class counts read them)."""

    length: int

    def __len__(self) -> int:
        return self.length

    @property
    def labels(self) -> list[float]:
        return [float(i % 2) for i in range(self.length)]

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.length:
            raise IndexError(index)
