"""`hessian`: the dense Hessian of a scalar function, shape `x.shape + x.shape`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.arrays import namespace
from .._core.kernels import Kernels, OutputSpec, basis_rows, flat_size, jacobian_batch
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse
from . import hvp as _hvp

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["hessian", "prepare_hessian", "value_gradient_and_hessian"]


def prepare_hessian(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    y: ArrayLike | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> Prep:
    """`prepare_hessian(f, backend, x, *contexts, batch_size=None) -> Prep` for `hessian` and its value form.

    `prep.info["strategy"]` says how the Hessian-vector products behind it are computed (see
    `ad.prepare_hvp`). `batch_size` bounds how many of them (one per basis tangent) run at once,
    as for `ad.prepare_jacobian`: by default as many as fit in about 256 MB.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> f = lambda x: x[0] ** 2 * x[1]
        >>> prep = ad.prepare_hessian(f, ad.AutoFiniteDiff(), np.zeros(2))
        >>> ad.hessian(f, ad.AutoFiniteDiff(), np.array([1.0, 2.0]), prep=prep).round(5)
        array([[4., 2.],
               [2., 0.]])
    """
    return prepare(HESSIAN, f, backend, x, None, contexts, y, batch_size, flat)


def hessian(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    prep: Prep | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> ArrayLike:
    """`hessian(f, backend, x, *contexts) -> H`: the Hessian of a scalar `f`, shape `x.shape + x.shape`.

    `H[i..., j...]` is `∂²f / ∂x[i...] ∂x[j...]`: the Jacobian of the gradient.

    Args:
        f: `f(x, *contexts) -> y` with `y` a scalar (shape `()`).
        backend: the backend object, or `ad.SecondOrder(outer, inner)` to choose both parts.
        x: the point (NumPy, JAX, torch array or Python float).
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        prep: the result of `ad.prepare_hessian` with arguments like these.
        batch_size: the most Hessian-vector products computed at once (see `prepare_hessian`).
        flat: return one 2-D array `(x.size, x.size)` (for a tree `x`: rows and columns in leaf
            order) instead of `x.shape + x.shape` (for a tree: nested blocks `H[p][q]`).

    Returns:
        The Hessian, the same kind of array as `x`.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.hessian(lambda x: x[0] ** 2 * x[1], ad.AutoFiniteDiff(), np.array([1.0, 2.0])).round(5)
        array([[4., 2.],
               [2., 0.]])
    """
    p = prep if type(prep) is Prep and batch_size is None and flat is prep.flat else None
    p = p or reuse(prep, HESSIAN, f, backend, x, None, contexts, None, batch_size, flat)
    return p.plain(HESSIAN, f, backend, x, contexts)


def value_gradient_and_hessian(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    *contexts: Context,
    prep: Prep | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """`value_gradient_and_hessian(f, backend, x, *contexts) -> (y, g, H)`; see `hessian`."""
    p = prep if type(prep) is Prep and batch_size is None and flat is prep.flat else None
    p = p or reuse(prep, HESSIAN, f, backend, x, None, contexts, None, batch_size, flat)
    return p.with_value(HESSIAN, f, backend, x, contexts)


def generic_hessian(
    impl: BackendImpl, f: Callable[..., Any], x: ArrayLike, tangents: None, contexts: tuple[Any, ...], spec: OutputSpec
) -> Kernels:
    """Hessian-vector products of the basis, `batch` of them at a time (see `hvp.products`)."""
    outer, inner, f = impl.parts(HESSIAN, f)
    how, hvps, gradient_and_hvps = _hvp.products(outer, inner, f, x, contexts, spec)
    columns = how in (_hvp.FORWARD_OVER_REVERSE, _hvp.FORWARD_OVER_FORWARD)
    n = flat_size(tuple(x.shape))
    size = jacobian_batch(x, OutputSpec(tuple(x.shape), spec.dtype), True)  # each product is shaped like x
    batches = [(start, min(start + size, n)) for start in range(0, max(n, 1), size)]

    def matrix(xp: Any, x: Any, parts: list) -> Any:
        # Transposing the columns also lets XLA pick a fast layout for the batch: 2-30x faster
        # at n = 1 000 than the rows as they come out of `vmap` (measured).
        parts = [xp.reshape(p, (p.shape[0], n)) for p in parts]
        if columns:
            parts = [xp.matrix_transpose(p) for p in parts]
        square = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1 if columns else 0)
        return xp.reshape(square, (*x.shape, *x.shape))

    def hessian(x: Any, *contexts: Any) -> Any:
        xp = namespace(x)
        return matrix(xp, x, [hvps(x, basis_rows(xp, x, start, stop), *contexts) for start, stop in batches])

    def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
        xp = namespace(x)
        parts = []
        for start, stop in batches:
            g, products = gradient_and_hvps(x, basis_rows(xp, x, start, stop), *contexts)
            parts.append(products)
        return f(x, *contexts), g, matrix(xp, x, parts)

    compile = _hvp.compiler(outer, inner)
    info = {"strategy": how} | ({"batch_size": size} if len(batches) > 1 else {})
    return Kernels(compile(hessian, x), compile(value_gradient_and_hessian, x), info)


HESSIAN = Operator("hessian", results=("y", "x", "H"), output="scalar", order=2, generic=generic_hessian)
