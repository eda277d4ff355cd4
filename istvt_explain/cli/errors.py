"""The exceptions the command line turns into a plain line on stderr and exit status 2."""

from ..errors import InputError


class UserError(InputError):
    """Bad usage: an existing output without --force, an unwritable path, conflicting options."""
