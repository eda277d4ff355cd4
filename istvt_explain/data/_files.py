"""Files that readers never see half-written, and processes that may have left some behind.

Every output of the package (checkpoints, logs, cache entries, scan records, JSON) is written to
a temporary name beside its target and renamed over it, with the permissions the umask gives
(``mkstemp``'s private 0600 would survive the rename).  Temporary names carry a ``.part`` suffix and
the writer's tag (``temporary_prefix``: its pid and start time), so ``pid_alive`` tells whether the
process that left one is still at work.  ``sigterm_as_interrupt``
makes a kill by SIGTERM (a job scheduler, ``timeout``, ``docker stop``) unwind as Ctrl-C does, so
that the temporaries of the writes in progress are removed on the way out; ``remove_stale_parts``
deletes those a SIGKILL left, at the next run.  ``exit_with_parent`` ends a worker process whose
parent is gone, however it went (a SIGKILL runs no clean-up in the parent).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's umask (read without changing it for longer than the read)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(directory: bool = False) -> int:
    """The permissions a new file (or folder) gets from the umask: what ``open`` would have given it."""
    return (0o777 if directory else 0o666) & ~umask()


_WRITER_TAG = re.compile(r"\.w(\d+)(?:-(\d+))?\.")  # the tag ``temporary_prefix`` puts in a name


def writer_tag() -> str:
    """``w<pid>-<start>``: this process, as it names itself in its temporaries (``w<pid>`` where the
    kernel gives no start time).  Why the start time: a pid is reused; with it, a temporary of a
    process that died is never taken for a living one's."""
    return _writer_tag(os.getpid())  # keyed by pid: a forked worker must not inherit its parent's tag


@functools.cache
def _writer_tag(pid: int) -> str:
    started = process_start_time(pid)
    return f"w{pid}" if started is None else f"w{pid}-{started}"


def temporary_prefix(name: str) -> str:
    """The prefix of every temporary this process writes for the output ``name``: ``.NAME.<writer_tag>.``
    (``mkstemp`` adds random letters and the ``.part`` suffix).  It still matches ``part_pattern``."""
    return f".{name}.{writer_tag()}."


def written_by_a_living_process(part: str | os.PathLike) -> bool:
    """Whether the temporary ``part`` names a writer (``temporary_prefix``) other than this process that
    still runs.  An untagged name (an older version's) names no writer: False."""
    # the last tag: the output's own name may hold something tag-like, and a temporary of a
    # temporary (the video writer's, inside a staged output) names the same process twice
    match = next(reversed(list(_WRITER_TAG.finditer(Path(part).name))), None)
    if match is None:
        return False
    pid, started = int(match[1]), match[2]
    return pid != os.getpid() and pid_alive(pid, started)


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(temporary_path)`` and rename the result over ``path``: no half-written files.

    The folder is created when missing; the temporary file is removed when ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, public_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through ``atomic_write``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(raw))


def part_pattern(name: str) -> str:
    """The glob of the temporaries ``atomic_write`` names while writing the file ``name`` (``.NAME.*.part``)."""
    return f".{glob.escape(name)}.*.part"


def remove_stale_parts(folder: str | os.PathLike, patterns: Iterable[str], before: float) -> list[Path]:
    """Delete the temporaries in ``folder`` that match ``patterns`` (globs of this package's own
    temporary names) and were last changed before ``before`` (a wall-clock time: the run's start),
    unless their writer still runs (``written_by_a_living_process``).

    Why: a run killed by SIGKILL (or power loss) removes nothing, and its ``.part`` files can be as
    large as the outputs.  Only our names, so that no file of the user's goes; only older ones, so
    that another run writing meanwhile keeps its own; and never one whose writer is alive, so that a
    run that started earlier and is still writing the same output (its temporary older than this
    run's start) keeps it too.  A staged folder goes with its content; what cannot be removed stays
    (this is housekeeping, never a reason to fail).
    """
    removed = []
    for pattern in dict.fromkeys(patterns):
        for part in Path(folder).glob(pattern):
            try:
                info = part.lstat()
                if info.st_mtime >= before or written_by_a_living_process(part):
                    continue
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(part)
                else:
                    part.unlink()
            except OSError:  # gone meanwhile (its writer renamed it), or not ours to remove
                continue
            removed.append(part)
    return removed


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (tells a reused pid apart); None where /proc is absent."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` still runs (a zombie does not); with ``started`` (``process_start_time``),
    whether it is still the same process and not a later one that got the same pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields is not None and fields[0] == "Z":
        return False
    if started is None:
        return True
    return fields is not None and len(fields) > 19 and fields[19] == started


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None where unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def this_process() -> tuple[int, str | None]:
    """This process's pid and start time: what a worker needs to watch it (``exit_with_parent``)."""
    return os.getpid(), process_start_time(os.getpid())


def exit_with_parent(parent: tuple[int, str | None], interval: float = 0.2) -> None:
    """In a worker process: end it (``os._exit``) within ``interval`` seconds once ``parent``
    (``this_process()`` of the run that started it) is gone, from a daemon thread.

    Why: a parent killed by SIGKILL stops nothing, and a worker blocked on its task queue never sees
    the end of it (a spawned worker holds the queue's writing end too), so it would live on under
    PID 1 with its memory, and the multiprocessing resource tracker, which waits for every process
    that shares it, with it.
    The start time tells the parent apart from a later process that got its pid.
    """
    threading.Thread(target=_watch_parent, args=(*parent, interval), daemon=True, name="istvt-watch-parent").start()


def _watch_parent(pid: int, started: str | None, interval: float) -> None:
    while pid_alive(pid, started):
        time.sleep(interval)
    os._exit(1)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within this block SIGTERM raises ``KeyboardInterrupt``, as Ctrl-C does: ``finally`` blocks and
    ``atomic_write`` clean up, and the command line exits 130 with one line.

    Why: Python's default for SIGTERM ends the process at once, leaving every temporary behind.
    Outside the main thread (where no handler can be set) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
