"""The array-API namespace over MindSpore: what `ad.namespace` hands `f` for `mindspore.Tensor`s.

array-api-compat does not cover MindSpore. `mindspore.ops` spells some arguments otherwise
(`keep_dims`, `dim`, `ddof`), makes float32 where NumPy makes float64 (`Tensor(1.0)`,
`ops.zeros`), and takes no NumPy scalar but `numpy.float64` as an operand (see `load.py`).
Names defined here translate; every other name is `mindspore.ops`'s function of that name
(`sin`, `exp`, `matmul`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .load import load_mindspore

ms = load_mindspore()
ops = ms.ops

__all__ = ["MindSporeNamespace", "mindspore_namespace"]

_PYTHON_SCALARS = (bool, int, float)
_DTYPES = {
    np.dtype(name): getattr(ms, name)
    for name in ("int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64", "complex64", "complex128")
} | {np.dtype(bool): ms.bool_}
_NUMPY_DTYPES = {v: k for k, v in _DTYPES.items()}


def _is_mindspore_dtype(dtype: Any) -> bool:
    return type(dtype).__module__.startswith("mindspore")


def _dtype(dtype: Any) -> Any:
    """A dtype as MindSpore takes it: its own, or NumPy's (`"float64"`, `np.float64`)."""
    if dtype is None or _is_mindspore_dtype(dtype):
        return dtype
    return _DTYPES[np.dtype(dtype)]


def _numpy_dtype(dtype: Any) -> np.dtype:
    return _NUMPY_DTYPES[dtype] if _is_mindspore_dtype(dtype) else np.dtype(dtype)


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    if isinstance(obj, ms.Tensor):
        return obj if dtype is None or obj.dtype == _dtype(dtype) else ops.cast(obj, _dtype(dtype))
    if isinstance(obj, (list, tuple)) and any(isinstance(o, (ms.Tensor, list, tuple)) for o in obj):
        parts = [_asarray(o, dtype=dtype) for o in obj]
        common = _DTYPES[np.result_type(*(_numpy_dtype(p.dtype) for p in parts))]
        return ops.stack([ops.cast(p, common) for p in parts])
    # Through NumPy: Python numbers get NumPy's default dtypes (float64, int64), not MindSpore's.
    a = np.array(obj, dtype=None if dtype is None else _numpy_dtype(dtype), order="C")
    return ms.Tensor.from_numpy(a)


def _operands(x1: Any, x2: Any) -> tuple[Any, Any]:
    """`x1, x2` as tensors; a Python scalar takes the other operand's dtype, as the array API says."""
    t1, t2 = isinstance(x1, ms.Tensor), isinstance(x2, ms.Tensor)
    if not t1:
        x1 = ops.full((), x1, dtype=x2.dtype) if t2 and isinstance(x1, _PYTHON_SCALARS) else _asarray(x1)
    if not t2:
        x2 = ops.full((), x2, dtype=x1.dtype) if isinstance(x2, _PYTHON_SCALARS) else _asarray(x2)
    if x1.dtype != x2.dtype:
        common = _DTYPES[np.result_type(_numpy_dtype(x1.dtype), _numpy_dtype(x2.dtype))]
        x1, x2 = ops.cast(x1, common), ops.cast(x2, common)
    return x1, x2


def _binary(name: str) -> Any:
    op = getattr(ops, name)

    def apply(x1: Any, x2: Any, /) -> Any:
        return op(*_operands(x1, x2))

    apply.__name__ = name
    return staticmethod(apply)


def _axis(axis: int | Sequence[int] | None) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    return ops.sum(x, _axis(axis), keepdims, dtype=_dtype(dtype))


def _prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    if isinstance(axis, tuple):  # `ops.prod` takes one axis
        for a in sorted((a % x.ndim for a in axis), reverse=True):
            x = ops.prod(x, a, keepdims)
        return x if dtype is None else ops.cast(x, _dtype(dtype))
    return ops.prod(x, axis, keepdims, dtype=_dtype(dtype))


def _reduction(name: str) -> Any:
    op = getattr(ops, name)

    def apply(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
        return op(x, _axis(axis), keepdims)

    apply.__name__ = name
    return staticmethod(apply)


def _moments(name: str) -> Any:
    # By their formula: `ops.var` and `ops.std` compute float64 tensors in float32 on CPU.
    def apply(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        mean = ops.mean(x, _axis(axis), True)
        count = math.prod(x.shape) // max(math.prod(mean.shape), 1)
        var = ops.sum((x - mean) ** 2, _axis(axis), keepdims) / (count - correction)
        return var if name == "var" else ops.sqrt(var)

    apply.__name__ = name
    return staticmethod(apply)


def _along(x: Any, axis: int, index: Any) -> Any:
    return x[(slice(None),) * (axis % x.ndim) + (index,)]


def _cumulative(name: str, fill: float) -> Any:
    op = getattr(ops, name)

    def apply(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
        if axis is None:
            x, axis = ops.reshape(x, (-1,)), 0
        x = x if dtype is None else ops.cast(x, _dtype(dtype))
        out = op(x, axis % x.ndim)
        if include_initial:
            out = ops.concat([ops.full_like(_along(x, axis, slice(0, 1)), fill), out], axis)
        return out

    apply.__name__ = name
    return staticmethod(apply)


def _creation(name: str) -> Any:
    def apply(shape: Any, *args: Any, dtype: Any = None, device: Any = None) -> Any:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if name == "full" and dtype is None:
            return _asarray(np.full(shape, *args))
        return ms.Tensor.from_numpy(getattr(np, name)(shape, *args, dtype=_numpy_dtype(dtype or ms.float64)))

    apply.__name__ = name
    return staticmethod(apply)


def _like(name: str) -> Any:
    op = getattr(ops, name)

    def apply(x: Any, /, *args: Any, dtype: Any = None, device: Any = None) -> Any:
        return op(x, *args, dtype=_dtype(dtype) or x.dtype)

    apply.__name__ = name
    return staticmethod(apply)


def _np_dtype(dtype: Any, default: Any = None) -> Any:
    """A dtype given to a creation function as NumPy's (`default` when `None`)."""
    return default if dtype is None else _numpy_dtype(_dtype(dtype))


def _arange(
    start: float, /, stop: float | None = None, step: float = 1, *, dtype: Any = None, device: Any = None
) -> Any:
    return ms.Tensor.from_numpy(np.arange(start, stop, step, dtype=_np_dtype(dtype)))


def _linspace(
    start: float, stop: float, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
) -> Any:
    return ms.Tensor.from_numpy(np.linspace(start, stop, num, endpoint=endpoint, dtype=_np_dtype(dtype, np.float64)))


def _eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> Any:
    return ms.Tensor.from_numpy(np.eye(n_rows, n_cols, k, dtype=_np_dtype(dtype, np.float64)))


def _matrix_transpose(x: Any, /) -> Any:
    return ops.swapaxes(x, -1, -2)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    parts = [_asarray(a) for a in arrays]
    if axis is None:
        return ops.concat([ops.reshape(a, (-1,)) for a in parts])
    return ops.concat(parts, axis)


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    if axis is None:
        x, axis = ops.reshape(x, (-1,)), 0
    return ops.gather(x, _asarray(indices), axis)


def _where(condition: Any, x1: Any, x2: Any, /) -> Any:
    x1, x2 = _operands(x1, x2)
    return ops.where(_asarray(condition), x1, x2)


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = _operands(x1, x2)
    return ops.sum(x1 * x2, axis)


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    a = ops.abs(x)
    if ord == 2:
        return ops.sqrt(ops.sum(a * a, _axis(axis), keepdims))
    if ord == math.inf:
        return ops.amax(a, _axis(axis), keepdims)
    if ord == -math.inf:
        return ops.amin(a, _axis(axis), keepdims)
    return ops.pow(*_operands(ops.sum(ops.pow(*_operands(a, float(ord))), _axis(axis), keepdims), 1.0 / ord))


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return ops.diagonal(x, offset, -2, -1)


def _sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    # `ops.sort` returns float64 values rounded to float32 on CPU: gathered by `argsort` instead.
    return ops.gather_elements(x, axis % x.ndim, ops.argsort(x, axis, descending))


def _astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    return ops.cast(x, _dtype(dtype))


def _tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    x1, x2 = _operands(x1, x2)
    if isinstance(axes, int):
        axes = (tuple(range(x1.ndim - axes, x1.ndim)), tuple(range(axes)))
    return ms.numpy.tensordot(x1, x2, axes)


class _Linalg:
    """The array API's `linalg` extension over `mindspore.ops`."""

    cholesky = staticmethod(lambda x, /, *, upper=False: ops.cholesky(x, upper))
    diagonal = staticmethod(_diagonal)
    inv = staticmethod(lambda x, /: ops.inverse(x))
    matmul = staticmethod(lambda x1, x2, /: ops.matmul(*_operands(x1, x2)))
    matrix_transpose = staticmethod(_matrix_transpose)
    outer = staticmethod(lambda x1, x2, /: ops.outer(*_operands(x1, x2)))
    # `ops.matrix_solve` computes in float32 on CPU: solve through the inverse, in the dtype given.
    solve = staticmethod(lambda x1, x2, /: ops.matmul(ops.inverse(x1), x2))
    tensordot = staticmethod(_tensordot)
    trace = staticmethod(lambda x, /, *, offset=0, dtype=None: ops.sum(_diagonal(x, offset=offset), -1))
    vecdot = staticmethod(_vecdot)
    vector_norm = staticmethod(_vector_norm)

    def __getattr__(self, name: str) -> Any:
        return getattr(ops, name)


class MindSporeNamespace:
    """The array-API namespace (2023.12) over MindSpore: what `ad.namespace(tensor)` returns.

    Every name not defined here is `mindspore.ops`'s function of the same name. Python scalars in
    binary functions take the tensor's dtype: MindSpore 2.10's own operators round a Python float
    to float32 (`x * 0.7` and `x ** (1/3)` of a float64 tensor are off by about 1e-8 relative),
    where `xp.multiply(x, 0.7)` and `xp.pow(x, 1/3)` are exact. `asarray` of Python numbers and
    the creation functions (`zeros`, `ones`, `eye`, `linspace`) give NumPy's default dtypes
    (float64), not MindSpore's (float32). NumPy scalars and arrays are converted: MindSpore 2.10
    takes none as an operand under NumPy 2 (`x * np.int64(2)` raises `TypeError`;
    `numpy.float64` works). `sort` is exact in float64 (`ops.sort` rounds to float32).

    Example:
        >>> import mindspore, numpy as np, anydiff as ad
        >>> x = mindspore.Tensor(np.array([1.0, 2.0]))
        >>> xp = ad.namespace(x)
        >>> mindspore.grad(lambda x: xp.sum(xp.cumulative_sum(x) ** 2))(x).asnumpy()
        array([8., 6.])
    """

    __array_api_version__ = "2023.12"

    bool = ms.bool_
    float32, float64 = ms.float32, ms.float64
    int32, int64 = ms.int32, ms.int64
    e, pi, inf, nan, newaxis = math.e, math.pi, math.inf, math.nan, None

    add = _binary("add")
    subtract = _binary("sub")
    multiply = _binary("mul")
    divide = _binary("div")
    maximum = _binary("maximum")
    minimum = _binary("minimum")
    pow = _binary("pow")
    atan2 = _binary("atan2")
    hypot = _binary("hypot")
    logaddexp = _binary("logaddexp")
    remainder = _binary("remainder")
    floor_divide = _binary("floor_divide")
    equal = _binary("equal")
    not_equal = _binary("not_equal")
    less = _binary("less")
    less_equal = _binary("less_equal")
    greater = _binary("greater")
    greater_equal = _binary("greater_equal")
    logical_and = _binary("logical_and")
    logical_or = _binary("logical_or")
    logical_xor = _binary("logical_xor")
    copysign = _binary("copysign")
    matmul = _binary("matmul")

    sum = staticmethod(_sum)
    prod = staticmethod(_prod)
    mean = _reduction("mean")
    max = _reduction("amax")
    min = _reduction("amin")
    all = _reduction("all")
    any = _reduction("any")
    std = _moments("std")
    var = _moments("var")
    cumulative_sum = _cumulative("cumsum", 0.0)
    cumulative_prod = _cumulative("cumprod", 1.0)

    zeros = _creation("zeros")
    ones = _creation("ones")
    empty = _creation("zeros")
    full = _creation("full")
    zeros_like = _like("zeros_like")
    ones_like = _like("ones_like")
    empty_like = _like("zeros_like")
    full_like = _like("full_like")
    arange = staticmethod(_arange)
    linspace = staticmethod(_linspace)
    eye = staticmethod(_eye)
    asarray = staticmethod(_asarray)

    negative = staticmethod(ops.neg)
    positive = staticmethod(lambda x, /: x)
    acos, asin, atan = staticmethod(ops.acos), staticmethod(ops.asin), staticmethod(ops.atan)
    acosh, asinh, atanh = staticmethod(ops.acosh), staticmethod(ops.asinh), staticmethod(ops.atanh)
    astype = staticmethod(_astype)
    clip = staticmethod(lambda x, /, min=None, max=None: ops.clamp(x, min, max))  # noqa: A006
    reshape = staticmethod(lambda x, /, shape, *, copy=None: ops.reshape(x, tuple(shape)))
    expand_dims = staticmethod(lambda x, /, *, axis=0: ops.expand_dims(x, axis))
    squeeze = staticmethod(lambda x, /, axis: ops.squeeze(x, axis))
    permute_dims = staticmethod(lambda x, /, axes: ops.permute(x, tuple(axes)))
    matrix_transpose = staticmethod(_matrix_transpose)
    broadcast_to = staticmethod(lambda x, /, shape: ops.broadcast_to(x, tuple(shape)))
    concat = staticmethod(_concat)
    stack = staticmethod(lambda arrays, /, *, axis=0: ops.stack([_asarray(a) for a in arrays], axis))
    unstack = staticmethod(lambda x, /, *, axis=0: tuple(_along(x, axis, i) for i in range(x.shape[axis])))
    flip = staticmethod(
        lambda x, /, *, axis=None: ops.flip(
            x, tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        )
    )
    take = staticmethod(_take)
    take_along_axis = staticmethod(lambda x, indices, /, *, axis=-1: ops.gather_elements(x, axis, _asarray(indices)))
    sort = staticmethod(_sort)
    argsort = staticmethod(lambda x, /, *, axis=-1, descending=False, stable=True: ops.argsort(x, axis, descending))
    where = staticmethod(_where)
    vecdot = staticmethod(_vecdot)
    tensordot = staticmethod(_tensordot)
    linalg = _Linalg()
    finfo = staticmethod(lambda dtype, /: np.finfo(_numpy_dtype(dtype)))
    iinfo = staticmethod(lambda dtype, /: np.iinfo(_numpy_dtype(dtype)))

    def __getattr__(self, name: str) -> Any:
        value = getattr(ops, name)
        setattr(self, name, value)  # found once: later look-ups are plain attributes
        return value

    def __repr__(self) -> str:
        return "<anydiff's array-API namespace for MindSpore>"


#: the namespace `ad.namespace` returns for MindSpore's tensors
mindspore_namespace = MindSporeNamespace()
