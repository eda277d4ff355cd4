"""The frames of one decode pass, kept on disk so later passes read them instead of decoding again.

Why: the command looks at every frame three times (find the faces, cut the crops of the chosen
face, draw the explained video), and the crops and the drawing need the faces' tracks, which are
only known once the whole video has been seen.  Decoding once and reading the RGB frames back
costs a copy per frame instead of a decode and a colour conversion; on a GPU machine it is what
lets the CPU keep up.  Memory stays flat whatever the video's length: frames go to an anonymous
temporary file (the kernel's page cache holds what fits, the disk the rest), never to a list.

The file has no name (``tempfile.TemporaryFile``), so nothing is left behind even when the process
is killed.  It is bounded: at most ``DEFAULT_BUDGET`` bytes and a quarter of its folder's free space
(``scan``'s workers each keep one at a time: four of them at once take at most about two thirds),
and a small ``MEMORY_BACKED_BUDGET`` where the folder is a RAM file system (tmpfs), where "on disk"
would mean in memory.  A video that does not fit, or a write that fails (a full disk), simply
stops the keeping: ``complete`` is then False and the later passes decode the file again, as they
did before there was a store; ``reason`` says why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np

DEFAULT_BUDGET = 8 * 2**30
"""Bytes a store may hold: a 20 s 720p video at 30 fps is 1.7 GB of RGB, 1080p 3.7 GB."""

FREE_SPACE_SHARE = 4
"""A store takes at most 1/4 of its folder's free space when it starts: stores kept at the same time
(scan workers) each take a quarter of what the others left, so the disk never fills by their doing
alone, and two of them leave over half of it."""

MEMORY_BACKED_BUDGET = 512 * 2**20
"""The most kept in a RAM file system, where the store would otherwise grow with the video."""

_MEMORY_FILE_SYSTEMS = frozenset({"tmpfs", "ramfs"})


def memory_backed(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` lies on a RAM file system (Linux: from ``/proc/self/mounts``; False elsewhere)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    target = os.path.realpath(folder)
    best, kind = "", ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind in _MEMORY_FILE_SYSTEMS


def store_budget(folder: str | os.PathLike) -> int:
    """Bytes a store in ``folder`` may hold: the default cap, a quarter of the free space, less on tmpfs."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return 0
    budget = min(DEFAULT_BUDGET, free // FREE_SPACE_SHARE)
    return min(budget, MEMORY_BACKED_BUDGET) if memory_backed(folder) else budget


class DecodedFrames:
    """RGB frames (H, W, 3) ``uint8`` of one video, appended in order, read back by index or in order.

    ``folder``: where the anonymous file lives (None: the system's temporary folder); ``budget``:
    the bytes it may hold (None: ``store_budget(folder)``).  The pass that decodes calls ``start``
    with the video's frame size and declared frame count (so that a video known to be too long is
    not kept at all), ``append`` for every frame and ``finish`` at the end.  One video per store.
    Use as a context manager, or ``close()``: the file's space is freed at once.
    """

    def __init__(self, *, folder: str | os.PathLike | None = None, budget: int | None = None) -> None:
        self.folder = Path(folder) if folder is not None else Path(tempfile.gettempdir())
        self._budget = budget
        self.budget = 0
        self.shape: tuple[int, int, int] = (0, 0, 3)
        self.frame_bytes = 0
        self.reason = "not started"
        self.started = self.finished = False
        self._count = 0
        self._file = None

    def start(self, frame_size: tuple[int, int], expected_frames: int = 0) -> None:
        """Begin keeping the frames of a video of ``frame_size`` (H, W); ``expected_frames``: 0 if unknown."""
        if self.started:
            raise RuntimeError("a DecodedFrames keeps the frames of one video pass only")
        self.started, self.reason = True, ""
        height, width = (int(v) for v in frame_size)
        self.shape = (height, width, 3)
        self.frame_bytes = height * width * 3
        self.budget = store_budget(self.folder) if self._budget is None else int(self._budget)
        need = int(expected_frames) * self.frame_bytes
        if need > self.budget:
            self.reason = (f"{expected_frames} frames of {width}x{height} need {_gib(need)}, "
                           f"over the {_gib(self.budget)} allowed")
            return
        try:
            self._file = tempfile.TemporaryFile(dir=self.folder)
        except OSError as err:
            self.reason = f"no temporary file in {self.folder} ({err.strerror or err})"

    @property
    def keeping(self) -> bool:
        """Whether frames are still being kept (False once over budget, after a failed write, or closed)."""
        return self._file is not None and not self.finished

    @property
    def complete(self) -> bool:
        """Every frame of the pass is here: later passes may read them instead of decoding."""
        return self._file is not None and self.finished

    def __len__(self) -> int:
        return self._count if self._file is not None else 0

    def holds(self, num_frames: int) -> bool:
        """Whether all ``num_frames`` frames of the pass are here, so a later pass can read them all."""
        return self.complete and self._count == num_frames

    def append(self, frame: np.ndarray) -> None:
        """Keep the next frame (the pass's frame ``len(self)``); a frame that does not fit stops the keeping."""
        if not self.keeping:
            return
        if frame.shape != self.shape or frame.dtype != np.uint8:
            self._give_up(f"a frame of shape {frame.shape} in a video of {self.shape}")
            return
        if (self._count + 1) * self.frame_bytes > self.budget:
            self._give_up(f"the video is longer than the {_gib(self.budget)} allowed")
            return
        try:
            self._file.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except OSError as err:  # a full disk costs a second decode, never the analysis
            self._give_up(f"cannot write ({err.strerror or err})")
            return
        self._count += 1

    def finish(self) -> None:
        """The pass has ended: what was kept is every frame (when nothing stopped the keeping)."""
        if self._file is None:
            return
        try:
            self._file.flush()
        except OSError as err:
            self._give_up(f"cannot write ({err.strerror or err})")
            return
        self.finished = True

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as a new array (``complete`` stores only)."""
        if not self.complete:
            raise RuntimeError("the frames are not all kept; decode the video instead")
        if not 0 <= index < self._count:
            raise IndexError(f"frame {index} of {self._count}")
        out = np.empty(self.shape, np.uint8)
        got = os.preadv(self._file.fileno(), [memoryview(out).cast("B")], index * self.frame_bytes)
        if got != self.frame_bytes:
            raise OSError(f"the kept frames were cut short at frame {index}")
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every frame in order (the render pass's source in place of a decoder)."""
        for index in range(len(self)):
            yield self.read(index)

    def _give_up(self, reason: str) -> None:
        self.reason = reason
        self._close_file()

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        """Free the file's space now (the frames can no longer be read)."""
        if self._file is not None and not self.reason:
            self.reason = "closed"
        self._close_file()

    def __enter__(self) -> DecodedFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "complete" if self.complete else ("keeping" if self.keeping else f"not kept: {self.reason}")
        return f"DecodedFrames({len(self)} frames of {self.shape[1]}x{self.shape[0]}, {state})"


def frames_kept(keep: DecodedFrames | None, enabled: bool = True,
                folder: str | os.PathLike | None = None) -> AbstractContextManager[DecodedFrames | None]:
    """``keep`` as it is (its owner closes it); else a new store in ``folder`` (None: the system's
    temporary folder) that the ``with`` block closes, or none when keeping is not ``enabled``."""
    if keep is not None or not enabled:
        return nullcontext(keep)
    return DecodedFrames(folder=folder)


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
