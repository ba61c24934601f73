"""`derivative`: the derivative of a function of one scalar."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.arrays import namespace
from .._core.kernels import Kernels, OutputSpec
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["derivative", "prepare_derivative", "value_and_derivative"]


def prepare_derivative(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, y: ArrayLike | None = None
) -> Prep:
    """`prepare_derivative(f, backend, x, *contexts, y=None) -> Prep` for `derivative`."""
    return prepare(DERIVATIVE, f, backend, x, None, contexts, y)


def derivative(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> ArrayLike:
    """`derivative(f, backend, x, *contexts) -> dy`: `df/dx` for a scalar `x`, shaped like `f(x)`.

    Args:
        f: `f(x, *contexts) -> y` with `x` a scalar (or `f(y, x, *contexts)` with `y=`).
        backend: the backend object.
        x: a Python float or a 0-d array.
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        y: output buffer of a two-argument `f` (shape and dtype only; not written to).
        prep: the result of `ad.prepare_derivative` with arguments like these.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.derivative(lambda t: np.stack([t, t**2]), ad.AutoFiniteDiff(), 3.0).round(6)
        array([1., 6.])
    """
    p = prep if type(prep) is Prep else reuse(prep, DERIVATIVE, f, backend, x, None, contexts, y)
    return p.plain(DERIVATIVE, f, backend, x, contexts, y)


def value_and_derivative(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike]:
    """`value_and_derivative(f, backend, x, *contexts) -> (y, dy)`; see `derivative`."""
    p = prep if type(prep) is Prep else reuse(prep, DERIVATIVE, f, backend, x, None, contexts, y)
    return p.with_value(DERIVATIVE, f, backend, x, contexts, y)


def generic_derivative(
    impl: BackendImpl, f: Callable[..., Any], x: ArrayLike, tangents: None, contexts: tuple[Any, ...], spec: OutputSpec
) -> Kernels:
    """A pushforward with the tangent 1."""

    def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
        y, ty = impl.jvp(f, x, namespace(x).ones((1,), dtype=x.dtype), contexts)
        return y, ty[0]

    def derivative(x: Any, *contexts: Any) -> Any:
        return value_and_derivative(x, *contexts)[1]

    return Kernels(impl.compile(derivative, x), impl.compile(value_and_derivative, x))


DERIVATIVE = Operator("derivative", results=("y", "y"), input="scalar", two_argument=True, generic=generic_derivative)
