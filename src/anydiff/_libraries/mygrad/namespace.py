"""The array-API namespace over MyGrad: what `ad.namespace` hands `f` for `mygrad.Tensor`s.

MyGrad implements NumPy's `__array_ufunc__` and `__array_function__` for the functions it
differentiates, so array-api-compat's NumPy namespace already runs most array-API functions on
tensors and returns tensors. What is defined here is what that path lacks: functions MyGrad does
not implement (`cumulative_sum` through `np.cumulative_sum`, `flip`, `take`, `sort`, `vecdot`,
`linalg.vector_norm`), and `asarray`, which would turn a tensor into a plain NumPy array and cut
it out of the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import array_api_compat.numpy as npx
import mygrad as mg
import numpy as np

from anydiff.extend import FunctionNotDifferentiableError

__all__ = ["MyGradNamespace", "mygrad_namespace"]


def _axes(ndim: int, axis: int | Sequence[int] | None) -> list[int]:
    if axis is None:
        return list(range(ndim))
    return [a % ndim for a in ((axis,) if isinstance(axis, int) else axis)]


def _along(x: Any, axis: int, index: Any) -> Any:
    """`x[..., index, ...]` with `index` at position `axis` (MyGrad differentiates indexing)."""
    return x[(slice(None),) * (axis % x.ndim) + (index,)]


def _data(x: Any) -> np.ndarray:
    return x.data if isinstance(x, mg.Tensor) else np.asarray(x)


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    if isinstance(obj, mg.Tensor):
        return obj if dtype is None or obj.dtype == dtype else obj.astype(dtype)
    if isinstance(obj, (list, tuple)) and any(isinstance(a, mg.Tensor) for a in obj):
        # `xp.asarray([t0, t1])` of tensors: a stack, which keeps them in the graph.
        stacked = mg.stack([_asarray(a) if isinstance(a, (list, tuple)) else a for a in obj])
        return stacked if dtype is None or stacked.dtype == dtype else stacked.astype(dtype)
    return np.asarray(obj, dtype=dtype, copy=copy)


def _cumulative(op: Any, fill: float, x: Any, axis: int | None, dtype: Any, include_initial: bool) -> Any:
    axis = 0 if axis is None else axis % x.ndim
    x = x if dtype is None else x.astype(dtype)
    out = op(x, axis=axis)
    if include_initial:
        first = _along(x, axis, slice(0, 1))
        out = mg.concatenate([mg.full_like(first, fill, constant=True), out], axis=axis)
    return out


def _cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    return _cumulative(mg.cumsum, 0.0, x, axis, dtype, include_initial)


def _cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    return _cumulative(mg.cumprod, 1.0, x, axis, dtype, include_initial)


def _flip(x: Any, /, *, axis: int | Sequence[int] | None = None) -> Any:
    key = [slice(None)] * x.ndim
    for a in _axes(x.ndim, axis):
        key[a] = slice(None, None, -1)
    return x[tuple(key)]


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    return _along(x, 0 if axis is None else axis, _data(indices))


def _take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    axis %= x.ndim
    grid = list(np.indices(np.shape(indices), sparse=True))
    grid[axis] = _data(indices)
    return x[tuple(grid)]


def _argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> np.ndarray:
    data = _data(x)
    return np.argsort(-data if descending else data, axis=axis, kind="stable")


def _sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    # A gather by the sorting permutation: MyGrad differentiates the indexing.
    return _take_along_axis(x, _argsort(x, axis=axis, descending=descending), axis=axis)


def _sign(x: Any, /) -> Any:
    # Its derivative is zero almost everywhere; MyGrad refuses `np.sign` of a variable tensor.
    return mg.Tensor(np.sign(_data(x)), constant=True)


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    return mg.sum(x1 * x2, axis=axis)


def _matrix_transpose(x: Any, /) -> Any:
    return mg.swapaxes(x, -1, -2)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return mg.concatenate([mg.reshape(a, (-1,)) for a in arrays])
    return mg.concatenate(arrays, axis=axis)


def _unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    return tuple(_along(x, axis, i) for i in range(x.shape[axis]))


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    a = mg.abs(x)
    if ord == 2:
        return mg.sqrt(mg.sum(a * a, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return mg.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return mg.min(a, axis=axis, keepdims=keepdims)
    if ord == 1:
        return mg.sum(a, axis=axis, keepdims=keepdims)
    return mg.sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    rows, cols = x.shape[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    k = max(min(rows - start_row, cols - start_col), 0)
    return x[..., np.arange(start_row, start_row + k), np.arange(start_col, start_col + k)]


class _Linalg:
    """The array API's `linalg` extension: what MyGrad differentiates, else NumPy's on arrays.

    NumPy's `linalg` functions compute on a tensor's values and return a plain array: `f`'s
    derivative would lose them silently (a zero Jacobian through `xp.linalg.solve`), so on a
    variable tensor they raise `FunctionNotDifferentiableError`.
    """

    diagonal = staticmethod(_diagonal)
    matmul = staticmethod(mg.matmul)
    matrix_transpose = staticmethod(_matrix_transpose)
    outer = staticmethod(lambda x1, x2, /: mg.reshape(x1, (-1, 1)) * mg.reshape(x2, (1, -1)))
    trace = staticmethod(lambda x, /, *, offset=0, dtype=None: mg.sum(_diagonal(x, offset=offset), axis=-1))
    vecdot = staticmethod(_vecdot)
    vector_norm = staticmethod(_vector_norm)

    def __getattr__(self, name: str) -> Any:
        function = getattr(npx.linalg, name)

        def on_arrays_only(*args: Any, **kwargs: Any) -> Any:
            if any(isinstance(a, mg.Tensor) and not a.constant for a in args):
                raise FunctionNotDifferentiableError(
                    f"`xp.linalg.{name}` has no derivative in MyGrad: NumPy would compute it on the "
                    "tensor's values and the derivative of `f` would silently leave it out. Use "
                    "`ad.AutoJAX()`, `ad.AutoTorch()` or `ad.AutoAutograd()` for `f`, or write it "
                    "with the operations MyGrad differentiates."
                )
            return function(*args, **kwargs)

        return on_arrays_only


class MyGradNamespace:
    """The array-API namespace (2023.12) over MyGrad: what `ad.namespace(tensor)` returns.

    Every name not defined here is array-api-compat's NumPy function of that name, which MyGrad's
    `__array_function__` and `__array_ufunc__` run on tensors. Functions MyGrad has no derivative
    for (`linalg.inv`, `linalg.solve`, ...) raise `FunctionNotDifferentiableError` on variable
    tensors.

    Example:
        >>> import mygrad as mg, numpy as np, anydiff as ad
        >>> x = mg.tensor([1.0, 2.0])
        >>> xp = ad.namespace(x)
        >>> y = xp.sum(xp.cumulative_sum(x) ** 2)
        >>> y.backward()
        >>> x.grad
        array([8., 6.])
    """

    __array_api_version__ = "2023.12"

    argsort = staticmethod(_argsort)
    asarray = staticmethod(_asarray)
    concat = staticmethod(_concat)
    cumulative_prod = staticmethod(_cumulative_prod)
    cumulative_sum = staticmethod(_cumulative_sum)
    flip = staticmethod(_flip)
    linalg = _Linalg()
    matrix_transpose = staticmethod(_matrix_transpose)
    sign = staticmethod(_sign)
    sort = staticmethod(_sort)
    take = staticmethod(_take)
    take_along_axis = staticmethod(_take_along_axis)
    unstack = staticmethod(_unstack)
    vecdot = staticmethod(_vecdot)

    def __getattr__(self, name: str) -> Any:
        value = getattr(npx, name)
        setattr(self, name, value)  # found once: later look-ups are plain attributes
        return value

    def __repr__(self) -> str:
        return "<anydiff's array-API namespace for MyGrad>"


#: the namespace `ad.namespace` returns for MyGrad's tensors
mygrad_namespace = MyGradNamespace()
