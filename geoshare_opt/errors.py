"""Typed exceptions. The CLI maps them to exit codes in one place (geoshare_opt/cli/exits.py)."""


class GeoshareError(Exception):
    """Base class of every error geoshare-opt raises on purpose."""


class InputError(GeoshareError, ValueError):
    """The user's input is wrong (file, option, instance, result, spec). CLI exit code 2."""


class InstanceError(InputError):
    """An instance file or object violates the instance format."""


class ResultError(InputError):
    """A result file is malformed or does not answer the given instance."""


class SolverUnavailableError(InputError):
    """A backend was named that is unknown or whose library is not installed."""


class SolverError(GeoshareError):
    """A backend failed in a way that is not the user's fault (exit code 1)."""
