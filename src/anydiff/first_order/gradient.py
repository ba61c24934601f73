"""`gradient`: the gradient of a scalar-valued function."""

from __future__ import annotations

from typing import Any

from .._core.arrays import namespace
from .._core.kernels import Kernels, OutputSpec, basis, device
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse

__all__ = ["gradient", "prepare_gradient", "value_and_gradient"]

GRADIENT = Operator("gradient", output="scalar")


def prepare_gradient(f: Any, backend: Any, x: Any, *contexts: Any, y: Any = None) -> Prep:
    """`prepare_gradient(f, backend, x, *contexts) -> Prep` for `gradient` and `value_and_gradient`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> f = lambda x: (x**2).sum()
        >>> prep = ad.prepare_gradient(f, ad.AutoFiniteDiff(), np.zeros(2))
        >>> ad.gradient(f, ad.AutoFiniteDiff(), np.array([1.0, 2.0]), prep=prep).round(6)
        array([2., 4.])
    """
    return prepare(GRADIENT, f, backend, x, None, contexts, y)


def gradient(f: Any, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None) -> Any:
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
    return reuse(prep, GRADIENT, f, backend, x, None, contexts).plain(x, contexts)


def value_and_gradient(f: Any, backend: Any, x: Any, *contexts: Any, prep: Prep | None = None) -> tuple[Any, Any]:
    """`value_and_gradient(f, backend, x, *contexts) -> (y, g)`; see `gradient`."""
    return reuse(prep, GRADIENT, f, backend, x, None, contexts).with_value(x, contexts)


def value_and_gradient_function(impl: Any, f: Any) -> Any:
    """`(f(x), ∇f(x))` from the backend's primitives, traceable by other transforms: a pullback of
    the seed 1 (reverse mode), or one pushforward per input (forward mode)."""
    if impl.reverse:

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, pull = impl.vjp(f, x, contexts)
            return y, pull(namespace(x).ones((1,), dtype=y.dtype, device=device(x)))[0]

    else:

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            xp = namespace(x)
            y, columns = impl.jvp(f, x, basis(xp, x), contexts)
            return y, xp.reshape(columns, x.shape)

    return value_and_gradient


def fallback(impl: Any, f: Any, x: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
    """The composable value-and-gradient of `value_and_gradient_function`, compiled."""
    value_and_gradient = value_and_gradient_function(impl, f)

    def gradient(x: Any, *contexts: Any) -> Any:
        return value_and_gradient(x, *contexts)[1]

    mode = "reverse" if impl.reverse else "forward"
    return Kernels(impl.compile(gradient, x), impl.compile(value_and_gradient, x), {"mode": mode})
