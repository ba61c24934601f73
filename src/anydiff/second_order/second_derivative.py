"""`second_derivative`: the second derivative of a function of one scalar."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.arrays import namespace
from .._core.kernels import Kernels, OutputSpec, device
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse
from ..first_order.derivative import DERIVATIVE
from . import hvp as _hvp

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["prepare_second_derivative", "second_derivative", "value_derivative_and_second_derivative"]


def prepare_second_derivative(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, y: ArrayLike | None = None
) -> Prep:
    """`prepare_second_derivative(f, backend, x, *contexts) -> Prep` for `second_derivative`.

    Also serves `value_derivative_and_second_derivative`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> prep = ad.prepare_second_derivative(np.sin, ad.AutoFiniteDiff(), 0.0)
        >>> round(float(ad.second_derivative(np.sin, ad.AutoFiniteDiff(), 1.0, prep=prep)), 6)
        -0.841471
    """
    return prepare(SECOND_DERIVATIVE, f, backend, x, None, contexts, y)


def second_derivative(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, prep: Prep | None = None
) -> ArrayLike:
    """`second_derivative(f, backend, x, *contexts) -> d2y`: `d²f/dx²` for a scalar `x`, shaped like `f(x)`.

    Args:
        f: `f(x, *contexts) -> y` with `x` a scalar; `y` may be any array.
        backend: the backend object, or `ad.SecondOrder(outer, inner)` to choose both parts.
        x: a Python float or a 0-d array.
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        prep: the result of `ad.prepare_second_derivative` with arguments like these.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.second_derivative(lambda t: np.stack([t**2, t**3]), ad.AutoFiniteDiff(), 2.0).round(5)
        array([ 2., 12.])
    """
    p = prep if type(prep) is Prep else reuse(prep, SECOND_DERIVATIVE, f, backend, x, None, contexts)
    return p.plain(SECOND_DERIVATIVE, f, backend, x, contexts)


def value_derivative_and_second_derivative(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, prep: Prep | None = None
) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """`value_derivative_and_second_derivative(f, backend, x, *contexts) -> (y, dy, d2y)`; see `second_derivative`."""
    p = prep if type(prep) is Prep else reuse(prep, SECOND_DERIVATIVE, f, backend, x, None, contexts)
    return p.with_value(SECOND_DERIVATIVE, f, backend, x, contexts)


def generic_second_derivative(
    impl: BackendImpl, f: Callable[..., Any], x: ArrayLike, tangents: None, contexts: tuple[Any, ...], spec: OutputSpec
) -> Kernels:
    """The outer derivative of the inner `(f, f')`, stacked: its tangent holds `f''`.

    Pushforwards with the tangent 1 on both levels (a backend with reverse mode only emulates
    them, at one pullback per output).
    """
    outer, inner, f = impl.parts(SECOND_DERIVATIVE, f)
    if _hvp.evaluates_only(outer):
        inner_value_and_derivative = _hvp.at_arrays(inner.kernels(DERIVATIVE, f, x, None, contexts, spec).with_value)
    else:

        def inner_value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, dy = inner.jvp(f, x, _one(x), contexts)
            return y, dy[0]

    def value_and_derivative(x: Any, *contexts: Any) -> Any:
        return namespace(x).stack(inner_value_and_derivative(x, *contexts))

    def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
        both, tangent = outer.jvp(value_and_derivative, x, _one(x), contexts)
        return both[0], both[1], tangent[0, 1]

    def second_derivative(x: Any, *contexts: Any) -> Any:
        return outer.jvp(value_and_derivative, x, _one(x), contexts)[1][0, 1]

    compile = _hvp.compiler(outer, inner)
    info = {"strategy": _hvp.FORWARD_OVER_FORWARD}
    return Kernels(compile(second_derivative, x), compile(value_derivative_and_second_derivative, x), info)


def _one(x: Any) -> Any:
    """The tangent 1 for a scalar `x`, stacked: shape `(1,)`."""
    return namespace(x).ones((1,), dtype=x.dtype, device=device(x))


SECOND_DERIVATIVE = Operator(
    "second_derivative", results=("y", "y", "y"), input="scalar", order=2, generic=generic_second_derivative
)
