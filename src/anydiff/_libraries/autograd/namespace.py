"""The array-API namespace over autograd: what `ad.namespace` hands `f` for its arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import autograd.numpy as anp
import numpy as np
from autograd.extend import defjvp, defvjp, primitive
from autograd.numpy.numpy_boxes import ArrayBox

from anydiff.extend import register_namespace

# -- the array-API namespace over autograd.numpy ---------------------------------------------------

__all__ = ["AutogradNamespace", "autograd_namespace"]


def _axes(ndim: int, axis: int | Sequence[int] | None) -> list[int]:
    if axis is None:
        return list(range(ndim))
    return [a % ndim for a in ((axis,) if isinstance(axis, int) else axis)]


def _along(x: Any, axis: int, index: Any) -> Any:
    """`x[..., index, ...]` with `index` at position `axis` (indexing has autograd derivatives)."""
    return x[(slice(None),) * (axis % anp.ndim(x)) + (index,)]


def _flip(x: Any, /, *, axis: int | Sequence[int] | None = None) -> Any:
    key = [slice(None)] * anp.ndim(x)
    for a in _axes(anp.ndim(x), axis):
        key[a] = slice(None, None, -1)
    return x[tuple(key)]


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return anp.concatenate([anp.ravel(a) for a in arrays])
    return anp.concatenate(arrays, axis=axis)


def _cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    axis = 0 if axis is None else axis
    x = x if dtype is None else anp.astype(x, dtype)
    out = anp.cumsum(x, axis=axis)
    if include_initial:
        out = anp.concatenate([anp.zeros_like(_along(x, axis, slice(0, 1))), out], axis=axis)
    return out


@primitive
def _cumprod(x: Any, axis: int) -> Any:
    return np.cumprod(x, axis=axis)


# d(prod_{j<=i} x_j)/dx_k = prod_i / x_k for k <= i; undefined where x_k = 0 (as in TensorFlow).
defvjp(_cumprod, lambda ans, x, axis: lambda g: np.flip(np.cumsum(np.flip(g * ans, axis), axis), axis) / x)
defjvp(_cumprod, lambda g, ans, x, axis: ans * np.cumsum(g / x, axis=axis))


def _cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    axis = 0 if axis is None else axis % anp.ndim(x)
    x = x if dtype is None else anp.astype(x, dtype)
    out = _cumprod(x, axis)
    if include_initial:
        out = anp.concatenate([anp.ones_like(_along(x, axis, slice(0, 1))), out], axis=axis)
    return out


def _var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    mean = anp.mean(x, axis=axis, keepdims=True)
    count = anp.size(x) // anp.size(mean)
    return anp.sum(anp.abs(x - mean) ** 2, axis=axis, keepdims=keepdims) / (count - correction)


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    return _along(x, 0 if axis is None else axis, np.asarray(indices))


def _take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    axis %= anp.ndim(x)
    grid = list(np.indices(np.shape(indices), sparse=True))
    grid[axis] = np.asarray(indices)
    return x[tuple(grid)]


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    if isinstance(obj, ArrayBox):
        return obj if dtype is None or obj.dtype == dtype else anp.astype(obj, dtype)
    return anp.array(obj, dtype=dtype)


def _broadcast_to(x: Any, /, shape: tuple[int, ...]) -> Any:
    # autograd's derivative of `broadcast_to` cannot add leading axes: add them by reshaping.
    return anp.broadcast_to(anp.reshape(x, (1,) * (len(shape) - anp.ndim(x)) + anp.shape(x)), shape)


def _broadcast_arrays(*arrays: Any) -> list[Any]:
    shape = np.broadcast_shapes(*(anp.shape(a) for a in arrays))
    return [_broadcast_to(a, shape) for a in arrays]


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    # By indexing: autograd's `diagonal` differentiates offset 0 on the first two axes only.
    rows, cols = anp.shape(x)[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    k = max(min(rows - start_row, cols - start_col), 0)
    return x[..., np.arange(start_row, start_row + k), np.arange(start_col, start_col + k)]


def _svdvals(x: Any, /) -> Any:
    return anp.linalg.svd(x, full_matrices=False)[1]  # autograd differentiates reduced SVDs only


def _unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    return tuple(_along(x, axis, i) for i in range(anp.shape(x)[axis]))


def _clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002 (array-API names)
    if min is not None:
        x = anp.maximum(x, min)
    if max is not None:
        x = anp.minimum(x, max)
    return x


def _sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    # `sort` of the negated values keeps equal elements in their order when descending.
    return -anp.sort(-x, axis=axis, kind="stable") if descending else anp.sort(x, axis=axis, kind="stable")


def _argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    return anp.argsort(-x if descending else x, axis=axis, kind="stable")


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    return anp.sum(anp.conj(x1) * x2, axis=axis)


def _matrix_transpose(x: Any, /) -> Any:
    return anp.swapaxes(x, -1, -2)


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    a = anp.abs(x)
    if ord == 2:
        return anp.sqrt(anp.sum(a * a, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return anp.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return anp.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return anp.sum(a != 0, axis=axis, keepdims=keepdims).astype(a.dtype)
    if ord == 1:
        return anp.sum(a, axis=axis, keepdims=keepdims)
    return anp.sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    if ord == "fro":
        out = anp.sqrt(anp.sum(anp.abs(x) ** 2, axis=(-2, -1)))
    elif ord in ("nuc", 2, -2):
        s = _svdvals(x)
        out = {"nuc": anp.sum, 2: anp.max, -2: anp.min}[ord](s, axis=-1)
    else:  # 1, -1 (column sums), inf, -inf (row sums)
        sums = anp.sum(anp.abs(x), axis=-2 if ord in (1, -1) else -1)
        out = anp.max(sums, axis=-1) if ord > 0 else anp.min(sums, axis=-1)
    return out[..., None, None] if keepdims else out


def _matrix_power(x: Any, n: int, /) -> Any:
    if n < 0:
        x, n = anp.linalg.inv(x), -n
    result = anp.broadcast_to(np.eye(anp.shape(x)[-1], dtype=x.dtype), anp.shape(x))
    while n:  # square-and-multiply
        if n & 1:
            result = anp.matmul(result, x)
        x, n = anp.matmul(x, x), n >> 1
    return result


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class _Linalg:
    """The array API's `linalg` extension over `autograd.numpy.linalg`."""

    cholesky = staticmethod(
        lambda x, /, *, upper=False: _matrix_transpose(anp.linalg.cholesky(x)) if upper else anp.linalg.cholesky(x)
    )
    cross = staticmethod(lambda x1, x2, /, *, axis=-1: anp.cross(x1, x2, axis=axis))
    det = staticmethod(anp.linalg.det)
    diagonal = staticmethod(_diagonal)
    eigh = staticmethod(lambda x, /: EighResult(*anp.linalg.eigh(x)))
    eigvalsh = staticmethod(lambda x, /: anp.linalg.eigh(x)[0])
    inv = staticmethod(anp.linalg.inv)
    matmul = staticmethod(anp.matmul)
    matrix_norm = staticmethod(_matrix_norm)
    matrix_power = staticmethod(_matrix_power)
    matrix_rank = staticmethod(np.linalg.matrix_rank)
    matrix_transpose = staticmethod(_matrix_transpose)
    outer = staticmethod(lambda x1, x2, /: anp.outer(x1, x2))
    pinv = staticmethod(lambda x, /, *, rtol=None: anp.linalg.pinv(x) if rtol is None else anp.linalg.pinv(x, rtol))
    qr = staticmethod(np.linalg.qr)  # autograd has no derivative for it
    slogdet = staticmethod(anp.linalg.slogdet)
    solve = staticmethod(anp.linalg.solve)
    svd = staticmethod(lambda x, /, *, full_matrices=True: anp.linalg.svd(x, full_matrices=full_matrices))
    svdvals = staticmethod(_svdvals)
    tensordot = staticmethod(lambda x1, x2, /, *, axes=2: anp.tensordot(x1, x2, axes))
    trace = staticmethod(
        lambda x, /, *, offset=0, dtype=None: anp.sum(_diagonal(x, offset=offset), axis=-1, dtype=dtype)
    )
    vecdot = staticmethod(_vecdot)
    vector_norm = staticmethod(_vector_norm)


class AutogradNamespace:
    """The array-API namespace (2023.12) over `autograd.numpy`: what `ad.namespace(box)` returns.

    NumPy 2 already follows the array API, so every name not defined here is `autograd.numpy`'s
    function of the same name. The ones defined here are those whose autograd version lacks a
    derivative (`cumulative_sum`, `matrix_transpose`, `vecdot`, `take`, `flip`, `copysign`,
    `linalg.vector_norm`, ...) or whose array-API arguments autograd's derivative rules do not
    know (`std(correction=)`, `reshape(copy=)`, `sort(descending=)`, `linalg.cholesky(upper=)`).
    autograd's `ArrayBox` has no `.mT`: write `xp.matrix_transpose(x)`.

    Example:
        >>> import autograd, numpy as np, anydiff as ad
        >>> def f(x):
        ...     xp = ad.namespace(x)
        ...     return xp.sum(xp.cumulative_sum(x) ** 2)
        >>> autograd.grad(f)(np.array([1.0, 2.0]))
        array([8., 6.])
    """

    __array_api_version__ = "2023.12"

    asarray = staticmethod(_asarray)
    argsort = staticmethod(_argsort)
    broadcast_arrays = staticmethod(_broadcast_arrays)
    broadcast_to = staticmethod(_broadcast_to)
    clip = staticmethod(_clip)
    concat = staticmethod(_concat)
    copysign = staticmethod(lambda x1, x2, /: anp.where(np.signbit(x2), -anp.abs(x1), anp.abs(x1)))
    cumulative_prod = staticmethod(_cumulative_prod)
    cumulative_sum = staticmethod(_cumulative_sum)
    flip = staticmethod(_flip)
    linalg = _Linalg()
    matrix_transpose = staticmethod(_matrix_transpose)
    positive = staticmethod(lambda x, /: x)
    reshape = staticmethod(lambda x, /, shape, *, copy=None: anp.reshape(x, shape))
    sort = staticmethod(_sort)
    std = staticmethod(
        lambda x, /, *, axis=None, correction=0.0, keepdims=False: anp.sqrt(
            _var(x, axis=axis, correction=correction, keepdims=keepdims)
        )
    )
    take = staticmethod(_take)
    take_along_axis = staticmethod(_take_along_axis)
    unstack = staticmethod(_unstack)
    var = staticmethod(_var)
    vecdot = staticmethod(_vecdot)

    def __getattr__(self, name: str) -> Any:
        value = getattr(anp, name)
        # Kept as an attribute: a miss that reaches `__getattr__` costs 1.6 µs, a hit 0.05 µs.
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return "<anydiff's array-API namespace for autograd>"


#: the namespace `ad.namespace` returns for autograd's boxes
autograd_namespace = AutogradNamespace()

# `f` receives autograd's boxes (from the backend, or in a program calling a `DifferentiateWith`):
# `ad.namespace(box)` is this namespace.
register_namespace(ArrayBox, lambda a: autograd_namespace)
