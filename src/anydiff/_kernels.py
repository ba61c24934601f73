"""Small shared pieces of the operator machinery: kernel records and basis tangents."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

__all__ = ["Kernels", "OutputSpec", "SparseLayout", "basis", "device", "flat_size", "unstack"]


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
    they return a tuple in the same order.
    """

    plain: Callable[..., Any]
    with_value: Callable[..., Any]
    #: what the backend chose (mode, strategy, batch size, ...), shown on the prep
    info: Mapping[str, Any] = MappingProxyType({})
    #: for a sparse matrix result (`ad.AutoSparse`): the kernels return only its CSR data, a 1-D
    #: native array (`plain` alone, `with_value` last), and the prep builds the sparse matrix
    #: of the user's array kind from it with this layout
    sparse: SparseLayout | None = None


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
