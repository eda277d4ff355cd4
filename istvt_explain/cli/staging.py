"""Output files written under temporary names and renamed only when the whole job succeeded.

Why: a job writes several outputs (video, report, maps, key frames); if anything fails, none
of them may be left behind, half-written or not, and an existing output is only replaced
by a complete new one.  Every path is checked before any work starts, so a bad output
path costs the user nothing.  The temporaries that an earlier run killed by SIGKILL left
beside an output are deleted when that output is claimed again (``stale_temporaries``).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..data._files import part_pattern, public_mode, remove_stale_parts, temporary_prefix
from .errors import UserError


@dataclass
class _Staged:
    final: Path
    temp: Path
    is_dir: bool
    replace: str | None = None


class StagedOutputs:
    """Context manager: ``claim`` paths, write to the returned temporary paths, ``commit`` at the end.

    Leaving the block with an exception (or without ``commit``) removes every temporary file.
    ``started``: when the run began (``time.time()``, default now); the temporaries of a claimed
    output older than that are an earlier, killed run's, and are deleted.
    """

    def __init__(self, force: bool = False, protected: tuple[Path, ...] = (), started: float | None = None) -> None:
        self.force = force
        self.protected = tuple(p.resolve() for p in protected)
        self.started = time.time() if started is None else started
        self._items: list[_Staged] = []

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()

    def claim(self, path: str | Path, option: str, directory: bool = False, replace: str | None = None) -> Path:
        """Check that ``path`` may be written and return the temporary path to write instead.

        ``replace``: for a folder that exists (``--force``), a glob of the files of an earlier run
        that the new ones replace (so old key frames do not mix with new ones); others are kept.
        """
        final = Path(path).expanduser()
        resolved = final.resolve()
        if resolved in self.protected:
            raise UserError(f"{final}: {option} would overwrite the input")
        if any(item.final.resolve() == resolved for item in self._items):
            raise UserError(f"{final}: given for two outputs")
        if directory:
            if final.exists() and not final.is_dir():
                raise UserError(f"{final}: {option} must be a folder, but a file of that name exists")
            if final.is_dir() and any(final.iterdir()) and not self.force:
                raise UserError(f"{final}: folder exists and is not empty (use --force to write into it)")
        else:
            if final.is_dir():
                raise UserError(f"{final}: {option} is a folder, not a file name")
            if final.exists() and not self.force:
                raise UserError(f"{final}: already exists (use --force to overwrite)")
        parent = final.parent
        if not parent.is_dir():
            raise UserError(f"{final}: cannot write {option}: folder {parent} does not exist")
        remove_stale_parts(parent, stale_temporaries(final.name), self.started)
        prefix = temporary_prefix(final.name)
        try:
            if directory:
                temp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".part", dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, suffix=".part" + final.suffix, dir=parent)
                os.close(fd)
                temp = Path(name)
        except OSError as err:
            raise UserError(f"{final}: cannot write {option} there ({err.strerror or err})") from None
        temp.chmod(public_mode(directory))  # temp files are private; outputs are not
        self._items.append(_Staged(final, temp, directory, replace))
        return temp

    def commit(self) -> list[Path]:
        """Move every temporary output to its final name; return the final paths."""
        done = []
        try:
            for item in self._items:
                if item.is_dir and item.final.is_dir():
                    for old in item.final.glob(item.replace) if item.replace else ():
                        old.unlink()
                    for child in sorted(item.temp.iterdir()):
                        os.replace(child, item.final / child.name)
                    item.temp.rmdir()
                else:
                    os.replace(item.temp, item.final)
                done.append(item.final)
        except OSError as err:
            raise UserError(f"cannot move the outputs into place ({err.strerror or err})") from None
        finally:
            self._items = [i for i in self._items if i.final not in done]
        return done

    def abort(self) -> None:
        """Remove every temporary output not yet committed."""
        for item in self._items:
            if item.is_dir:
                shutil.rmtree(item.temp, ignore_errors=True)
            else:
                item.temp.unlink(missing_ok=True)
        self._items.clear()


def stale_temporaries(name: str) -> tuple[str, ...]:
    """Globs of the temporaries a run writing the output ``name`` names beside it: the staged file
    (``.NAME.*.part.SUFFIX``) or folder (``.NAME.*.part``), and the video writer's own temporary of
    the staged file (``..NAME.*.part.SUFFIX.*.part``)."""
    escaped, suffix = glob.escape(name), glob.escape(Path(name).suffix)
    return tuple(dict.fromkeys((part_pattern(name), f".{escaped}.*.part{suffix}",
                                f"..{escaped}.*.part{suffix}.*.part")))
