"""`gradient`: the gradient of a scalar-valued function."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.kernels import Kernels, OutputSpec
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["gradient", "prepare_gradient", "value_and_gradient"]


def prepare_gradient(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, y: ArrayLike | None = None
) -> Prep:
    """`prepare_gradient(f, backend, x, *contexts) -> Prep` for `gradient` and `value_and_gradient`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> f = lambda x: (x**2).sum()
        >>> prep = ad.prepare_gradient(f, ad.AutoFiniteDiff(), np.zeros(2))
        >>> ad.gradient(f, ad.AutoFiniteDiff(), np.array([1.0, 2.0]), prep=prep).round(6)
        array([2., 4.])
    """
    return prepare(GRADIENT, f, backend, x, None, contexts, y)


def gradient(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, prep: Prep | None = None
) -> ArrayLike:
    """`gradient(f, backend, x, *contexts) -> g`: the gradient of a scalar `f`, shaped like `x`.

    Args:
        f: `f(x, *contexts) -> y` with `y` a scalar (shape `()`).
        backend: the backend object.
        x: the point (NumPy, JAX, torch array or Python float).
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        prep: the result of `ad.prepare_gradient` with arguments like these.

    Returns:
        The gradient, the same kind of array as `x`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.gradient(lambda x: (x**2).sum(), ad.AutoFiniteDiff(), np.array([1.0, 2.0])).round(6)
        array([2., 4.])
    """
    p = prep if type(prep) is Prep else reuse(prep, GRADIENT, f, backend, x, None, contexts)
    return p.plain(GRADIENT, f, backend, x, contexts)


def value_and_gradient(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context, prep: Prep | None = None
) -> tuple[ArrayLike, ArrayLike]:
    """`value_and_gradient(f, backend, x, *contexts) -> (y, g)`; see `gradient`."""
    p = prep if type(prep) is Prep else reuse(prep, GRADIENT, f, backend, x, None, contexts)
    return p.with_value(GRADIENT, f, backend, x, contexts)


def generic_gradient(
    impl: BackendImpl, f: Callable[..., Any], x: ArrayLike, tangents: None, contexts: tuple[Any, ...], spec: OutputSpec
) -> Kernels:
    """The backend's composable `value_and_gradient_function`, compiled."""
    value_and_gradient = impl.value_and_gradient_function(f)

    def gradient(x: Any, *contexts: Any) -> Any:
        return value_and_gradient(x, *contexts)[1]

    mode = "reverse" if impl.reverse else "forward"
    return Kernels(impl.compile(gradient, x), impl.compile(value_and_gradient, x), {"mode": mode})


GRADIENT = Operator("gradient", results=("y", "x"), output="scalar", generic=generic_gradient)
