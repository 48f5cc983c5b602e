"""Errors the CLI turns into a clear message and a non-zero exit code."""


class HepbenchError(Exception):
    """Base class: the message is shown to the user as is, without a traceback."""

    exit_code = 1


class UsageError(HepbenchError):
    """A bad option or configuration value."""

    exit_code = 2


class DataFormatError(HepbenchError):
    """A data file that is not in the published format (names the file and the problem)."""


class FetchError(HepbenchError):
    """A download that could not be completed."""
