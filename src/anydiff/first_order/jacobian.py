"""`jacobian`: the dense Jacobian, shape `y.shape + x.shape`."""

from __future__ import annotations

from typing import Any

from .._arrays import namespace
from .._kernels import Kernels, OutputSpec, basis, flat_size
from .._prep import Operator, Prep, prepare, reuse

__all__ = ["jacobian", "prepare_jacobian", "value_and_jacobian"]

JACOBIAN = Operator("jacobian", two_argument=True)


def prepare_jacobian(f: Any, backend: Any, x: Any, *contexts: Any, y: Any = None) -> Prep:
    """`prepare_jacobian(f, backend, x, *contexts, y=None) -> Prep` for `jacobian`.

    `prep.info["mode"]` says whether columns (forward) or rows (reverse) are computed.
    """
    return prepare(JACOBIAN, f, backend, x, None, contexts, y)


def jacobian(f: Any, backend: Any, x: Any, *contexts: Any, y: Any = None, prep: Prep | None = None) -> Any:
    """`jacobian(f, backend, x, *contexts) -> J`: the dense Jacobian, shape `y.shape + x.shape`.

    Args:
        f: `f(x, *contexts) -> y`, or `f(y, x, *contexts)` writing into `y` when `y=` is given.
        backend: the backend object; with `ad.AutoSparse(...)` the result is a sparse matrix.
        x: the point.
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        y: output buffer of a two-argument `f` (shape and dtype only; not written to).
        prep: the result of `ad.prepare_jacobian` with arguments like these.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.jacobian(lambda x: x**2, ad.AutoFiniteDiff(), np.array([1.0, 2.0])).round(6)
        array([[2., 0.],
               [0., 4.]])
    """
    return reuse(prep, JACOBIAN, f, backend, x, None, contexts, y).plain(x, contexts)


def value_and_jacobian(f: Any, backend: Any, x: Any, *contexts: Any, y: Any = None, prep: Prep | None = None) -> tuple[Any, Any]:
    """`value_and_jacobian(f, backend, x, *contexts) -> (y, J)`; see `jacobian`."""
    return reuse(prep, JACOBIAN, f, backend, x, None, contexts, y).with_value(x, contexts)


def use_forward(impl: Any, n: int, m: int) -> bool:
    """Columns by pushforwards when forward mode is cheap and there are no more inputs than outputs."""
    return impl.forward and (not impl.reverse or n <= m)


def fallback(impl: Any, f: Any, x: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
    """One batched pushforward of the input basis (columns) or pullback of the output basis (rows)."""
    forward = use_forward(impl, flat_size(tuple(x.shape)), flat_size(spec.shape))

    def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        if forward:
            y, columns = impl.jvp(f, x, basis(xp, x), contexts)
            n, m = columns.shape[0], flat_size(tuple(y.shape))
            jac = xp.matrix_transpose(xp.reshape(columns, (n, m)))
        else:
            y, pull = impl.vjp(f, x, contexts)
            jac = pull(basis(xp, y))
        return y, xp.reshape(jac, (*y.shape, *x.shape))

    def jacobian(x: Any, *contexts: Any) -> Any:
        return value_and_jacobian(x, *contexts)[1]

    mode = "forward" if forward else "reverse"
    return Kernels(impl.compile(jacobian, x), impl.compile(value_and_jacobian, x), {"mode": mode})
