"""`pullback`: vector-Jacobian products (reverse mode), batched over cotangents."""

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

__all__ = ["prepare_pullback", "pullback", "value_and_pullback"]


def prepare_pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
) -> Prep:
    """`prepare_pullback(f, backend, x, ty, *contexts, y=None) -> Prep` for `pullback`."""
    return prepare(PULLBACK, f, backend, x, ty, contexts, y)


@overload
def pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ...]: ...


@overload
def pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> ArrayLike: ...


def pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> ArrayLike | tuple[ArrayLike, ...]:
    """`pullback(f, backend, x, ty, *contexts) -> tx`: the VJP `ty @ J(x)`, shaped like `x`.

    Args:
        f: `f(x, *contexts) -> y`, or `f(y, x, *contexts)` writing into `y` when `y=` is given.
        backend: the backend object.
        x: the point.
        ty: one cotangent shaped like `f(x)`, or a tuple of them (computed in one batch).
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        y: output buffer of a two-argument `f` (shape and dtype only; not written to).
        prep: the result of `ad.prepare_pullback` with arguments like these.

    Returns:
        `tx` (a tuple of them for a tuple `ty`), the same kind of array as `x`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.pullback(lambda x: x**2, ad.AutoFiniteDiff(), np.array([1.0, 2.0]), np.ones(2)).round(6)
        array([2., 4.])
    """
    p = prep if type(prep) is Prep else reuse(prep, PULLBACK, f, backend, x, ty, contexts, y)
    result, single = p.plain(PULLBACK, f, backend, x, contexts, y, ty)
    return result[0] if single else result


@overload
def value_and_pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, tuple[ArrayLike, ...]]: ...


@overload
def value_and_pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike]: ...


def value_and_pullback(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    ty: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike | tuple[ArrayLike, ...]]:
    """`value_and_pullback(f, backend, x, ty, *contexts) -> (y, tx)`; see `pullback`."""
    p = prep if type(prep) is Prep else reuse(prep, PULLBACK, f, backend, x, ty, contexts, y)
    (value, result), single = p.with_value(PULLBACK, f, backend, x, contexts, y, ty)
    return value, (result[0] if single else result)


def generic_pullback(
    impl: BackendImpl,
    f: Callable[..., Any],
    x: ArrayLike,
    cotangents: tuple[ArrayLike, ...],
    contexts: tuple[Any, ...],
    spec: OutputSpec,
) -> Kernels:
    """Stack the cotangents (a tuple, or one) and call the backend's batched `vjp` primitive."""

    def value_and_pullback(x: Any, cotangents: Any, *contexts: Any) -> tuple[Any, Any]:
        y, pull = impl.vjp(f, x, contexts)
        return y, unstacked(pull(stack(x, cotangents)), cotangents)

    def pullback(x: Any, cotangents: Any, *contexts: Any) -> Any:
        return value_and_pullback(x, cotangents, *contexts)[1]

    mode = "reverse" if impl.reverse else "one pushforward per input"
    compiled = impl.compile(pullback, x), impl.compile(value_and_pullback, x)
    return Kernels(*compiled, {"mode": mode}, single_tangent=True)


PULLBACK = Operator("pullback", results=("y", "xs"), tangents="y", two_argument=True, generic=generic_pullback)
