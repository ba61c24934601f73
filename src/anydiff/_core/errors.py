"""The error hierarchy of anydiff (API.md section 7)."""

from __future__ import annotations

__all__ = [
    "AnyDiffError",
    "BackendNotInstalledError",
    "FunctionNotDifferentiableError",
    "PreparationMismatchError",
    "UnsupportedError",
]


class AnyDiffError(Exception):
    """Base class of every error anydiff raises on purpose."""


class BackendNotInstalledError(AnyDiffError, ImportError):
    """The library behind a backend is not installed; the message names the `pip install` extra."""


class PreparationMismatchError(AnyDiffError, ValueError):
    """A prepared call received arguments that differ from those the prep was built for."""


class UnsupportedError(AnyDiffError, NotImplementedError):
    """The backend cannot do this operator or feature; the message names the alternative."""


class FunctionNotDifferentiableError(AnyDiffError, TypeError):
    """`f` used something the backend cannot trace; the message says how to write `f` instead."""
