"""Small shared pieces of the operator machinery: kernel records, basis tangents, batching."""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .arrays import itemsize, namespace

__all__ = [
    "BATCH_SIZE",
    "TANGENT_BYTES",
    "Kernels",
    "OutputSpec",
    "SparseLayout",
    "basis",
    "basis_rows",
    "device",
    "flat_size",
    "jacobian_batch",
    "stack",
    "tangent_batch",
    "unstack",
    "unstacked",
    "use_forward",
]


class OutputSpec(NamedTuple):
    """Shape and dtype of `f(x)` at the prep point (native dtype object)."""

    shape: tuple[int, ...]
    dtype: Any


class SparseLayout(NamedTuple):
    """The structure of a sparse matrix result in CSR form (NumPy index arrays), fixed at prepare."""

    indptr: Any
    indices: Any
    shape: tuple[int, int]


class Kernels(NamedTuple):
    """The two prepared callables of an operator: without and with the function's value.

    For an operator without tangents they are called as `plain(x, *contexts)`; for pushforward,
    pullback and hvp as `plain(x, tangents, *contexts)` with `tangents` a tuple of arrays, and
    they return a tuple in the same order. Kernels marked `single_tangent` also take one tangent
    array in place of the tuple, and then return its result alone (`stack`, `unstacked`): the
    prepared call passes the usual single tangent so, without the tuple a compiled kernel would
    take apart on every call (0.3-0.8 µs of a 12 µs JAX call at n = 10).
    """

    plain: Callable[..., Any]
    with_value: Callable[..., Any]
    #: what the backend chose (mode, strategy, batch size, ...), shown on the prep
    info: Mapping[str, Any] = MappingProxyType({})
    #: for a sparse matrix result (`ad.AutoSparse`): the kernels return only its CSR data, a 1-D
    #: native array (`plain` alone, `with_value` last), and the prep builds the sparse matrix
    #: of the user's array kind from it with this layout
    sparse: SparseLayout | None = None
    #: `plain` and `with_value` also take one tangent (an array) in place of a tuple of them
    single_tangent: bool = False


def flat_size(shape: tuple[int, ...]) -> int:
    """The number of elements of an array of this shape."""
    return math.prod(shape)


def basis(xp: Any, a: Any) -> Any:
    """The standard basis of `a`'s space, stacked: shape `(a.size,) + a.shape`."""
    n = flat_size(tuple(a.shape))
    eye = xp.eye(n, dtype=a.dtype, device=device(a))
    return xp.reshape(eye, (n, *a.shape))


def device(a: Any) -> Any:
    """The device `a` lives on, in array-API terms; `None` for arrays without one (MLX)."""
    import array_api_compat

    try:
        return array_api_compat.device(a)
    except AttributeError:  # MLX arrays have no `.device`; their namespace ignores `device=None`
        return None


def unstack(stacked: Any, k: int) -> tuple[Any, ...]:
    """The `k` leading slices of a stacked batch, as a tuple."""
    return tuple(stacked[i] for i in range(k))


def stack(x: Any, tangents: Any) -> Any:
    """A kernel's tangents, a tuple of arrays or one array (`Kernels.single_tangent`), as one
    batch for a batched primitive: shape `(k,) + shape`, in `x`'s namespace."""
    return namespace(x).stack(tangents if type(tangents) is tuple else (tangents,))


def unstacked(results: Any, tangents: Any) -> Any:
    """The batch of results of `stack(x, tangents)` in the form of `tangents`: a tuple, or the
    one result of one tangent."""
    return unstack(results, len(tangents)) if type(tangents) is tuple else results[0]


#: The default bound on the memory of the tangents (and their results) that a Jacobian or
#: Hessian pushes through `f` at once: a 20 000 x 20 000 float64 Jacobian (3.2 GB) then runs
#: in batches of 838 columns instead of one batch of 20 000.
TANGENT_BYTES = 256 * 2**20

#: The `batch_size` given to the `prepare_<operator>` being run, read by the kernels it builds.
BATCH_SIZE: contextvars.ContextVar[int | None] = contextvars.ContextVar("anydiff_batch_size", default=None)


def tangent_batch(count: int, bytes_per_tangent: int) -> int:
    """How many of `count` basis tangents a Jacobian or Hessian kernel pushes through `f` at once.

    The `batch_size` passed to `prepare_jacobian` / `prepare_hessian` when there is one, otherwise
    as many as fit in `TANGENT_BYTES`; a kernel being prepared reads it once, at prepare time.
    """
    chosen = BATCH_SIZE.get()
    if chosen is None:
        chosen = TANGENT_BYTES // max(1, bytes_per_tangent)
    return max(1, min(count, chosen))


def use_forward(impl: Any, n: int, m: int) -> bool:
    """Columns by pushforwards when forward mode is cheap and there are no more inputs than outputs."""
    return impl.forward and (not impl.reverse or n <= m)


def jacobian_batch(x: Any, spec: OutputSpec, forward: bool) -> int:
    """The basis tangents to push at once (`tangent_batch`): each costs an `x` and a `y`."""
    n, m = flat_size(tuple(x.shape)), flat_size(spec.shape)
    return tangent_batch(n if forward else m, (n + m) * itemsize(x.dtype))


def basis_rows(xp: Any, a: Any, start: int, stop: int) -> Any:
    """Rows `start:stop` of `basis(xp, a)`, made without the others."""
    n = flat_size(tuple(a.shape))
    if (start, stop) == (0, n):
        return basis(xp, a)
    eye = xp.eye(stop - start, n, k=start, dtype=a.dtype, device=device(a))
    return xp.reshape(eye, (stop - start, *a.shape))
