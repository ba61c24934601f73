"""`jacobian`: the dense Jacobian, shape `y.shape + x.shape`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.arrays import namespace
from .._core.kernels import Kernels, OutputSpec, basis_rows, flat_size, jacobian_batch, use_forward
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["jacobian", "prepare_jacobian", "value_and_jacobian"]


def prepare_jacobian(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> Prep:
    """`prepare_jacobian(f, backend, x, *contexts, y=None, batch_size=None) -> Prep` for `jacobian`.

    `prep.info["mode"]` says whether columns (forward) or rows (reverse) are computed, and
    `prep.info["batch_size"]` how many at once when they do not all fit in one batch.

    `batch_size` bounds how many basis tangents (columns or rows) go through `f` at once. By
    default as many as fit in about 256 MB with their results, so a 20 000 x 20 000 Jacobian
    needs 838 tangents at a time, not 20 000. JAX and torch batch their native routes; finite
    differences evaluate one column at a time anyway; other backends compute all at once.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> f = lambda x: x**2
        >>> prep = ad.prepare_jacobian(f, ad.AutoJAX(), np.zeros(3), batch_size=2)
        >>> prep.batch_size, ad.jacobian(f, ad.AutoJAX(), np.ones(3), prep=prep).diagonal()
        (2, array([2., 2., 2.]))
    """
    return prepare(JACOBIAN, f, backend, x, None, contexts, y, batch_size, flat)


def jacobian(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> ArrayLike:
    """`jacobian(f, backend, x, *contexts) -> J`: the dense Jacobian, shape `y.shape + x.shape`.

    For trees `x` and `y` (API.md section 10), `J[p][q]` is the block of output leaf `p` and input
    leaf `q`, shaped `y_p.shape + x_q.shape`.

    Args:
        f: `f(x, *contexts) -> y`, or `f(y, x, *contexts)` writing into `y` when `y=` is given.
        backend: the backend object; with `ad.AutoSparse(...)` the result is a sparse matrix.
        x: the point.
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        y: output buffer of a two-argument `f` (shape and dtype only; not written to).
        prep: the result of `ad.prepare_jacobian` with arguments like these.
        batch_size: the most basis tangents pushed through `f` at once (see `prepare_jacobian`).
        flat: return one 2-D array of shape `(y.size, x.size)` (for trees: rows and columns in
            leaf order) instead of `y.shape + x.shape` (for trees: nested blocks `J[p][q]`).

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.jacobian(lambda x: x**2, ad.AutoFiniteDiff(), np.array([1.0, 2.0])).round(6)
        array([[2., 0.],
               [0., 4.]])
    """
    p = prep if type(prep) is Prep and batch_size is None and flat is prep.flat else None
    p = p or reuse(prep, JACOBIAN, f, backend, x, None, contexts, y, batch_size, flat)
    return p.plain(JACOBIAN, f, backend, x, contexts, y)


def value_and_jacobian(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    prep: Prep | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> tuple[ArrayLike, ArrayLike]:
    """`value_and_jacobian(f, backend, x, *contexts) -> (y, J)`; see `jacobian`."""
    p = prep if type(prep) is Prep and batch_size is None and flat is prep.flat else None
    p = p or reuse(prep, JACOBIAN, f, backend, x, None, contexts, y, batch_size, flat)
    return p.with_value(JACOBIAN, f, backend, x, contexts, y)


def generic_jacobian(
    impl: BackendImpl, f: Callable[..., Any], x: ArrayLike, tangents: None, contexts: tuple[Any, ...], spec: OutputSpec
) -> Kernels:
    """Batched pushforwards of the input basis (columns) or pullbacks of the output basis (rows),
    `batch` of them at a time."""
    n, m = flat_size(tuple(x.shape)), flat_size(spec.shape)
    forward = use_forward(impl, n, m)
    size = jacobian_batch(x, spec, forward)
    # at least one batch, empty for an empty `x` or `y`, so that `f(x)` is still returned
    batches = [(start, min(start + size, n if forward else m)) for start in range(0, max(n if forward else m, 1), size)]

    def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
        xp = namespace(x)
        if forward:
            # Each batch of columns is transposed as it comes: their concatenation is J itself.
            parts = []
            for start, stop in batches:
                y, columns = impl.jvp(f, x, basis_rows(xp, x, start, stop), contexts)
                parts.append(xp.matrix_transpose(xp.reshape(columns, (stop - start, m))))
            jac = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        else:
            y, pull = impl.vjp(f, x, contexts)
            rows = [pull(basis_rows(xp, y, start, stop)) for start, stop in batches]
            jac = rows[0] if len(rows) == 1 else xp.concat(rows, axis=0)
        return y, xp.reshape(jac, (*y.shape, *x.shape))

    def jacobian(x: Any, *contexts: Any) -> Any:
        return value_and_jacobian(x, *contexts)[1]

    info = {"mode": "forward" if forward else "reverse"} | ({"batch_size": size} if len(batches) > 1 else {})
    return Kernels(impl.compile(jacobian, x), impl.compile(value_and_jacobian, x), info)


JACOBIAN = Operator("jacobian", results=("y", "J"), two_argument=True, generic=generic_jacobian)
