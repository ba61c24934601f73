"""The array-API namespace over PaddlePaddle: what `ad.namespace` hands `f` for `paddle.Tensor`s.

array-api-compat does not cover Paddle, whose functions are NumPy-like but spell some arguments
otherwise (`keepdim`, `unbiased`, `perm`, `dim`) and take no Python scalar where the array API
allows one. Names defined here translate; every other name is `paddle`'s function of that name
(`sin`, `exp`, `matmul`, `stack`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .load import load_paddle

paddle = load_paddle()

__all__ = ["PaddleNamespace", "paddle_namespace"]

_PYTHON_SCALARS = (bool, int, float)


def _dtype(dtype: Any) -> Any:
    """A dtype as Paddle takes it: its own, or a NumPy name (`"float64"`)."""
    if dtype is None or isinstance(dtype, paddle.dtype):
        return dtype
    return np.dtype(dtype).name


def _numpy_dtype(dtype: Any) -> np.dtype:
    return np.dtype(str(dtype).removeprefix("paddle."))


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    if isinstance(obj, paddle.Tensor):
        return obj if dtype is None or obj.dtype == dtype else paddle.cast(obj, _dtype(dtype))
    if isinstance(obj, (list, tuple)) and any(isinstance(o, (paddle.Tensor, list, tuple)) for o in obj):
        parts = [_asarray(o, dtype=dtype) for o in obj]
        common = np.result_type(*(_numpy_dtype(p.dtype) for p in parts))
        return paddle.stack([paddle.cast(p, common.name) for p in parts])
    # Through NumPy: Python numbers get NumPy's default dtypes (float64, int64), not Paddle's.
    return paddle.to_tensor(np.asarray(obj, dtype=None if dtype is None else _numpy_dtype(_dtype(dtype))))


def _operands(x1: Any, x2: Any) -> tuple[Any, Any]:
    """`x1, x2` as tensors; a Python scalar takes the other operand's dtype, as the array API says."""
    t1, t2 = isinstance(x1, paddle.Tensor), isinstance(x2, paddle.Tensor)
    if not t1:
        x1 = paddle.full([], x1, dtype=x2.dtype) if t2 and isinstance(x1, _PYTHON_SCALARS) else _asarray(x1)
    if not t2:
        x2 = paddle.full([], x2, dtype=x1.dtype) if isinstance(x2, _PYTHON_SCALARS) else _asarray(x2)
    if x1.dtype != x2.dtype:
        common = np.result_type(_numpy_dtype(x1.dtype), _numpy_dtype(x2.dtype)).name
        x1, x2 = paddle.cast(x1, common), paddle.cast(x2, common)
    return x1, x2


def _binary(name: str) -> Any:
    op = getattr(paddle, name)

    def apply(x1: Any, x2: Any, /) -> Any:
        return op(*_operands(x1, x2))

    apply.__name__ = name
    return staticmethod(apply)


def _axis(axis: int | Sequence[int] | None) -> Any:
    return list(axis) if isinstance(axis, tuple) else axis


def _reduction(name: str) -> Any:
    op = getattr(paddle, name)

    def apply(x: Any, /, *, axis: Any = None, keepdims: bool = False, **options: Any) -> Any:
        if "dtype" in options:
            options["dtype"] = _dtype(options["dtype"])
        return op(x, axis=_axis(axis), keepdim=keepdims, **options)

    apply.__name__ = name
    return staticmethod(apply)


def _moments(name: str) -> Any:
    op = getattr(paddle, name)

    def apply(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        if correction in (0, 1):
            return op(x, axis=_axis(axis), unbiased=bool(correction), keepdim=keepdims)
        mean = paddle.mean(x, axis=_axis(axis), keepdim=True)
        count = math.prod(x.shape) // max(math.prod(mean.shape), 1)
        var = paddle.sum((x - mean) ** 2, axis=_axis(axis), keepdim=keepdims) / (count - correction)
        return var if name == "var" else paddle.sqrt(var)

    apply.__name__ = name
    return staticmethod(apply)


def _along(x: Any, axis: int, index: Any) -> Any:
    return x[(slice(None),) * (axis % x.ndim) + (index,)]


def _cumulative(name: str, fill: float) -> Any:
    def apply(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
        axis = 0 if axis is None else axis % x.ndim
        x = x if dtype is None else paddle.cast(x, _dtype(dtype))
        out = paddle.cumsum(x, axis=axis) if name == "cumsum" else paddle.cumprod(x, dim=axis)
        if include_initial:
            out = paddle.concat([paddle.full_like(_along(x, axis, slice(0, 1)), fill), out], axis=axis)
        return out

    apply.__name__ = name
    return staticmethod(apply)


def _creation(name: str) -> Any:
    op = getattr(paddle, name)

    def apply(shape: Any, *args: Any, dtype: Any = None, device: Any = None) -> Any:
        shape = [shape] if isinstance(shape, int) else list(shape)
        return op(shape, *args, dtype=_dtype(dtype) or "float64")

    apply.__name__ = name
    return staticmethod(apply)


def _like(name: str) -> Any:
    op = getattr(paddle, name)

    def apply(x: Any, /, *args: Any, dtype: Any = None, device: Any = None) -> Any:
        return op(x, *args, dtype=_dtype(dtype))

    apply.__name__ = name
    return staticmethod(apply)


def _np_dtype(dtype: Any, default: Any = None) -> Any:
    """A dtype given to a creation function as NumPy's (`default` when `None`)."""
    return default if dtype is None else _numpy_dtype(_dtype(dtype))


def _arange(
    start: float, /, stop: float | None = None, step: float = 1, *, dtype: Any = None, device: Any = None
) -> Any:
    return paddle.to_tensor(np.arange(start, stop, step, dtype=_np_dtype(dtype)))


def _linspace(
    start: float, stop: float, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
) -> Any:
    return paddle.to_tensor(np.linspace(start, stop, num, endpoint=endpoint, dtype=_np_dtype(dtype, np.float64)))


def _eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> Any:
    return paddle.to_tensor(np.eye(n_rows, n_cols, k, dtype=_np_dtype(dtype, np.float64)))


def _matrix_transpose(x: Any, /) -> Any:
    perm = list(range(x.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return paddle.transpose(x, perm)


def _joinable(arrays: Sequence[Any]) -> list[Any]:
    """The parts of a `concat` or `stack`, constants made differentiable beside variables.

    Paddle 3.3 cannot take the second derivative of a concatenation of a variable with a
    constant ("Unable to fill empty grad inputs due to empty GradSlotMeta"): each constant part
    is replaced by a view of it that requires a gradient, which nothing ever asks for.
    """
    parts = [_asarray(a) for a in arrays]
    if all(p.stop_gradient for p in parts) or not any(p.stop_gradient for p in parts):
        return parts
    joined = []
    for part in parts:
        if part.stop_gradient:
            part = part.detach()
            part.stop_gradient = False
        joined.append(part)
    return joined


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return paddle.concat([paddle.reshape(a, [-1]) for a in _joinable(arrays)])
    return paddle.concat(_joinable(arrays), axis=axis)


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    if axis is None:
        x, axis = paddle.reshape(x, [-1]), 0
    return paddle.index_select(x, _asarray(indices), axis=axis)


def _where(condition: Any, x1: Any, x2: Any, /) -> Any:
    x1, x2 = _operands(x1, x2)
    return paddle.where(_asarray(condition), x1, x2)


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    return paddle.sum(x1 * x2, axis=axis)


def _pow(x1: Any, x2: Any, /) -> Any:
    # A Python float exponent would be rounded to float32 by Paddle (`x ** (1/3)` of a float64
    # tensor is 4e-8 off): as a tensor of `x1`'s dtype it is kept whole.
    return paddle.pow(*_operands(x1, x2))


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    a = paddle.abs(x)
    if ord == 2:
        return paddle.sqrt(paddle.sum(a * a, axis=_axis(axis), keepdim=keepdims))
    if ord == math.inf:
        return paddle.max(a, axis=_axis(axis), keepdim=keepdims)
    if ord == -math.inf:
        return paddle.min(a, axis=_axis(axis), keepdim=keepdims)
    return _pow(paddle.sum(_pow(a, float(ord)), axis=_axis(axis), keepdim=keepdims), 1.0 / ord)


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return paddle.diagonal(x, offset=offset, axis1=-2, axis2=-1)


class _Linalg:
    """The array API's `linalg` extension over `paddle.linalg`."""

    cholesky = staticmethod(lambda x, /, *, upper=False: paddle.linalg.cholesky(x, upper=upper))
    diagonal = staticmethod(_diagonal)
    matmul = staticmethod(paddle.matmul)
    matrix_transpose = staticmethod(_matrix_transpose)
    outer = staticmethod(lambda x1, x2, /: paddle.outer(x1, x2))
    # Paddle 3.3's `linalg.solve` has a wrong gradient with respect to the matrix (zero for a
    # vector right-hand side; a matrix one crashes its backward pass): solve through the inverse.
    solve = staticmethod(lambda x1, x2, /: paddle.linalg.inv(x1) @ x2)
    tensordot = staticmethod(lambda x1, x2, /, *, axes=2: paddle.tensordot(x1, x2, axes))
    trace = staticmethod(lambda x, /, *, offset=0, dtype=None: paddle.sum(_diagonal(x, offset=offset), axis=-1))
    vecdot = staticmethod(_vecdot)
    vector_norm = staticmethod(_vector_norm)

    def __getattr__(self, name: str) -> Any:
        return getattr(paddle.linalg, name)


class PaddleNamespace:
    """The array-API namespace (2023.12) over PaddlePaddle: what `ad.namespace(tensor)` returns.

    Every name not defined here is `paddle`'s function of the same name. Python scalars in
    binary functions take the tensor's dtype; `asarray` of Python numbers gives NumPy's default
    dtypes (float64), not Paddle's (float32). Paddle rounds a Python float exponent to float32
    (`x ** 0.5` of a float64 tensor is off by about 1e-8): `xp.pow(x, 0.5)` is exact. Paddle
    has second derivatives for most operations,
    but not for all: `cumulative_sum` (`cumsum_grad`) and `sort`, among others, have none, and a
    Hessian of a function using them raises `ad.FunctionNotDifferentiableError`.

    Example:
        >>> import paddle, anydiff as ad
        >>> x = paddle.to_tensor([1.0, 2.0], dtype="float64", stop_gradient=False)
        >>> xp = ad.namespace(x)
        >>> (g,) = paddle.grad(xp.sum(xp.cumulative_sum(x) ** 2), x)
        >>> g.numpy()
        array([8., 6.])
    """

    __array_api_version__ = "2023.12"

    bool = paddle.bool
    float32, float64 = paddle.float32, paddle.float64
    int32, int64 = paddle.int32, paddle.int64
    e, pi, inf, nan, newaxis = math.e, math.pi, math.inf, math.nan, None

    add = _binary("add")
    subtract = _binary("subtract")
    multiply = _binary("multiply")
    divide = _binary("divide")
    maximum = _binary("maximum")
    minimum = _binary("minimum")
    pow = staticmethod(_pow)
    atan2 = _binary("atan2")
    hypot = _binary("hypot")
    logaddexp = _binary("logaddexp")
    remainder = _binary("remainder")
    floor_divide = _binary("floor_divide")
    equal = _binary("equal")
    not_equal = _binary("not_equal")
    less = _binary("less_than")
    less_equal = _binary("less_equal")
    greater = _binary("greater_than")
    greater_equal = _binary("greater_equal")
    logical_and = _binary("logical_and")
    logical_or = _binary("logical_or")
    logical_xor = _binary("logical_xor")
    copysign = _binary("copysign")

    sum = _reduction("sum")
    prod = _reduction("prod")
    mean = _reduction("mean")
    max = _reduction("max")
    min = _reduction("min")
    all = _reduction("all")
    any = _reduction("any")
    std = _moments("std")
    var = _moments("var")
    cumulative_sum = _cumulative("cumsum", 0.0)
    cumulative_prod = _cumulative("cumprod", 1.0)

    zeros = _creation("zeros")
    ones = _creation("ones")
    empty = _creation("empty")
    full = _creation("full")
    zeros_like = _like("zeros_like")
    ones_like = _like("ones_like")
    empty_like = _like("empty_like")
    full_like = _like("full_like")
    arange = staticmethod(_arange)
    linspace = staticmethod(_linspace)
    eye = staticmethod(_eye)
    asarray = staticmethod(_asarray)

    negative = staticmethod(paddle.neg)
    positive = staticmethod(lambda x, /: x)
    acos, asin, atan = staticmethod(paddle.acos), staticmethod(paddle.asin), staticmethod(paddle.atan)
    acosh, asinh, atanh = staticmethod(paddle.acosh), staticmethod(paddle.asinh), staticmethod(paddle.atanh)
    astype = staticmethod(lambda x, dtype, /, *, copy=True, device=None: paddle.cast(x, _dtype(dtype)))
    clip = staticmethod(lambda x, /, min=None, max=None: paddle.clip(x, min, max))  # noqa: A006
    reshape = staticmethod(lambda x, /, shape, *, copy=None: paddle.reshape(x, list(shape)))
    expand_dims = staticmethod(lambda x, /, *, axis=0: paddle.unsqueeze(x, axis))
    squeeze = staticmethod(lambda x, /, axis: paddle.squeeze(x, _axis(axis)))
    permute_dims = staticmethod(lambda x, /, axes: paddle.transpose(x, list(axes)))
    matrix_transpose = staticmethod(_matrix_transpose)
    broadcast_to = staticmethod(lambda x, /, shape: paddle.broadcast_to(x, list(shape)))
    concat = staticmethod(_concat)
    stack = staticmethod(lambda arrays, /, *, axis=0: paddle.stack(_joinable(arrays), axis=axis))
    # By indexing: the gradient of `paddle.unstack` with an unused part crashes Paddle 3.3 (SIGSEGV).
    unstack = staticmethod(lambda x, /, *, axis=0: tuple(_along(x, axis, i) for i in range(x.shape[axis])))
    flip = staticmethod(lambda x, /, *, axis=None: paddle.flip(x, list(range(x.ndim)) if axis is None else axis))
    take = staticmethod(_take)
    take_along_axis = staticmethod(lambda x, indices, /, *, axis=-1: paddle.take_along_axis(x, indices, axis))
    sort = staticmethod(
        lambda x, /, *, axis=-1, descending=False, stable=True: paddle.sort(x, axis, descending, stable=stable)
    )
    argsort = staticmethod(
        lambda x, /, *, axis=-1, descending=False, stable=True: paddle.argsort(x, axis, descending, stable=stable)
    )
    where = staticmethod(_where)
    vecdot = staticmethod(_vecdot)
    linalg = _Linalg()
    finfo = staticmethod(lambda dtype, /: np.finfo(_numpy_dtype(dtype)))
    iinfo = staticmethod(lambda dtype, /: np.iinfo(_numpy_dtype(dtype)))

    def __getattr__(self, name: str) -> Any:
        value = getattr(paddle, name)
        setattr(self, name, value)  # found once: later look-ups are plain attributes
        return value

    def __repr__(self) -> str:
        return "<anydiff's array-API namespace for PaddlePaddle>"


#: the namespace `ad.namespace` returns for Paddle's tensors
paddle_namespace = PaddleNamespace()
