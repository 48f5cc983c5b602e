"""Errors the CLI turns into a clear message and a non-zero exit code."""

import importlib


class HepbenchError(Exception):
    """Base class: the message is shown to the user as is, without a traceback."""

    exit_code = 1


class UsageError(HepbenchError):
    """A bad option or configuration value."""

    exit_code = 2


class ParameterError(UsageError, ValueError):
    """A bad parameter of a library call (names it); a ValueError too, as scikit-learn expects of estimators."""


class DataFormatError(HepbenchError):
    """A data file that is not in the published format (names the file and the problem)."""


class DataIntegrityError(DataFormatError):
    """A built data set whose files differ from the checksums recorded when it was built (names the file)."""


class FetchError(HepbenchError):
    """A download that could not be completed."""


class MissingExtra(HepbenchError):
    """An optional extra (pip install 'hepbench[extra]') that a command needs is not installed."""

    exit_code = 2


def require_extra(extra: str, modules: tuple[str, ...], what: str) -> None:
    """A clear message instead of a traceback when `what` needs an extra that is not installed."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise MissingExtra(
                f"{what} need the `{extra}` extra ({e.name or name} is missing): pip install 'hepbench[{extra}]'"
            ) from None
