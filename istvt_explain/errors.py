"""Errors that mean "the input is wrong", as opposed to a bug: the CLI prints them as one line."""


class InputError(ValueError):
    """Bad input: a missing or unreadable file, a video without a face, a corrupt checkpoint.

    The message names the file and says what is wrong, in one line.
    """
