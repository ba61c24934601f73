"""`pushforward`: Jacobian-vector products (forward mode), batched over tangents."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from .._core.kernels import Kernels, OutputSpec, stack, unstacked
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["prepare_pushforward", "pushforward", "value_and_pushforward"]


def prepare_pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
) -> Prep:
    """`prepare_pushforward(f, backend, x, tx, *contexts, y=None) -> Prep` for `pushforward`."""
    return prepare(PUSHFORWARD, f, backend, x, tx, contexts, y)


@overload
def pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ...]: ...


@overload
def pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> ArrayLike: ...


def pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> ArrayLike | tuple[ArrayLike, ...]:
    """`pushforward(f, backend, x, tx, *contexts) -> ty`: the JVP `J(x) @ tx`, shaped like `f(x)`.

    Args:
        f: `f(x, *contexts) -> y`, or `f(y, x, *contexts)` writing into `y` when `y=` is given.
        backend: the backend object, e.g. `ad.AutoJAX()`.
        x: the point (NumPy, JAX, torch array or Python float).
        tx: one tangent shaped like `x`, or a tuple of them (computed in one batch).
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        y: output buffer of a two-argument `f`; it gives the output's shape and dtype and is
            not written to.
        prep: the result of `ad.prepare_pushforward` with arguments like these.

    Returns:
        `ty` (a tuple of them for a tuple `tx`), the same kind of array as `x`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.pushforward(lambda x: x**2, ad.AutoFiniteDiff(), np.array([1.0, 2.0]), np.ones(2)).round(6)
        array([2., 4.])
    """
    p = prep if type(prep) is Prep else reuse(prep, PUSHFORWARD, f, backend, x, tx, contexts, y)
    result, single = p.plain(PUSHFORWARD, f, backend, x, contexts, y, tx)
    return result[0] if single else result


@overload
def value_and_pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, tuple[ArrayLike, ...]]: ...


@overload
def value_and_pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike]: ...


def value_and_pushforward(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike | tuple[ArrayLike, ...]]:
    """`value_and_pushforward(f, backend, x, tx, *contexts) -> (y, ty)`; see `pushforward`."""
    p = prep if type(prep) is Prep else reuse(prep, PUSHFORWARD, f, backend, x, tx, contexts, y)
    (value, result), single = p.with_value(PUSHFORWARD, f, backend, x, contexts, y, tx)
    return value, (result[0] if single else result)


def generic_pushforward(
    impl: BackendImpl,
    f: Callable[..., Any],
    x: ArrayLike,
    tangents: tuple[ArrayLike, ...],
    contexts: tuple[Any, ...],
    spec: OutputSpec,
) -> Kernels:
    """Stack the tangents (a tuple, or one) and call the backend's batched `jvp` primitive."""

    def value_and_pushforward(x: Any, tangents: Any, *contexts: Any) -> tuple[Any, Any]:
        y, ty = impl.jvp(f, x, stack(x, tangents), contexts)
        return y, unstacked(ty, tangents)

    def pushforward(x: Any, tangents: Any, *contexts: Any) -> Any:
        return value_and_pushforward(x, tangents, *contexts)[1]

    mode = "forward" if impl.forward else "one pullback per output"
    compiled = impl.compile(pushforward, x), impl.compile(value_and_pushforward, x)
    return Kernels(*compiled, {"mode": mode}, single_tangent=True)


PUSHFORWARD = Operator("pushforward", results=("y", "ys"), tangents="x", two_argument=True, generic=generic_pushforward)
