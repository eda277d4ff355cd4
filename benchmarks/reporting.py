"""What every committed benchmark report shares: paths and commands a reader of the repository can use.

A report names files relative to the repository root (never by the absolute path of the machine that
made it), and its command is written as it would be typed from that root.  A path outside the
repository (a scratch folder) is shown as ``OUT`` for an output and by its file name otherwise.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT_OPTIONS = ("--out", "-o", "--keep-videos")  # folders the script writes


def repo_path(path: str | Path, outside: str | None = None) -> str:
    """``path`` relative to the repository root; ``outside`` (default: the file name) when it lies elsewhere."""
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(REPO).as_posix()
    except ValueError:
        return outside if outside is not None else resolved.name


def repo_command(script: str, argv: Sequence[str]) -> str:
    """``python SCRIPT ARGS`` with every argument that names an existing path, or follows ``--out``, made
    relative to the repository (``repo_path``)."""
    shown, previous = [], ""
    for arg in argv:
        if previous in OUTPUT_OPTIONS:
            shown.append(repo_path(arg, outside="OUT"))
        elif not arg.startswith("-") and ("/" in arg or Path(arg).exists()):
            shown.append(repo_path(arg))
        else:
            shown.append(arg)
        previous = arg
    return shlex.join(["python", script, *shown])
