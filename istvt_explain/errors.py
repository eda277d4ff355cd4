"""Errors that mean "the input is wrong", as opposed to a bug: the CLI prints them as one line."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a missing or unreadable file, a video without a face, a corrupt checkpoint.

    The message names the file and says what is wrong, in one line.
    """


class MethodOutputError(InputError):
    """An explanation method (a plugin or a built-in) returned maps that are NaN, infinite or of the wrong shape.

    Never a number in a report: the video gets this one-line error instead (exit 2 at the command line).
    ``clip`` is the first broken clip of the call, when one is; ``at`` names the video and its clip number.
    """

    def __init__(self, method: str, problem: str, clip: int | None = None, part: str = "", where: str = "") -> None:
        self.method, self.problem, self.clip, self.part, self.where = method, problem, clip, part, where
        details = [d for d in (part, None if clip is None else f"clip {clip}") if d]
        detail = f" ({', '.join(details)})" if details else ""
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}explanation method {method!r} returned {problem}{detail}; no explanation is given")

    def at(self, where: str, first_clip: int = 0) -> MethodOutputError:
        """The same error for the video ``where``, whose call started at clip ``first_clip``."""
        clip = None if self.clip is None else first_clip + self.clip
        return MethodOutputError(self.method, self.problem, clip, self.part, where)
