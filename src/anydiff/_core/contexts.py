"""Contexts: extra arguments of `f` that are not differentiated (API.md section 4)."""

from __future__ import annotations

from typing import Any

from .frozen import frozen_dataclass

__all__ = ["Cache", "Constant", "Context", "check_contexts"]


@frozen_dataclass
class Constant:
    """`Constant(value)`: an argument of `f` whose value matters and which is never mutated.

    `f(x, c)` is differentiated in `x` only. The value may change between calls sharing a prep.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.gradient(lambda x, a: (a * x**2).sum(), ad.AutoFiniteDiff(), np.ones(2), ad.Constant(3.0)).round(4)
        array([6., 6.])
    """

    value: Any


@frozen_dataclass
class Cache:
    """`Cache(buffer)`: scratch space `f` may overwrite; its value does not matter.

    Backends whose arrays are immutable (JAX) hand `f` a fresh array of the same shape instead.
    """

    value: Any


Context = Constant | Cache


def check_contexts(operator: str, contexts: tuple[Any, ...]) -> None:
    """Raise `TypeError` with a hint when an extra positional argument is not wrapped."""
    for position, context in enumerate(contexts):
        if not isinstance(context, (Constant, Cache)):
            raise TypeError(
                f"{operator}: extra positional arguments after `x` must be wrapped as "
                f"`ad.Constant(value)` (an input that is not differentiated) or `ad.Cache(buffer)` "
                f"(scratch space); argument {position} after `x` is a bare "
                f"{type(context).__name__}. Write `ad.{operator}(f, backend, x, ad.Constant(c))`."
            )
