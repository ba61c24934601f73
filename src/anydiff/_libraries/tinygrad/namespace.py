"""tinygrad tensors to and from NumPy, and the array-API namespace `ad.namespace` hands `f` for them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from tinygrad import Device, Tensor, UOp, dtypes
from tinygrad.dtype import _from_np_dtype, _to_np_dtype

from anydiff.extend import cumulative

__all__ = ["TensorsInNumPyError", "from_numpy", "tinygrad_namespace", "to_numpy"]


# -- conversion ---------------------------------------------------------------------------------


def to_numpy(a: Any) -> np.ndarray:
    """A NumPy copy of a tinygrad tensor (evaluating it first if it is lazy)."""
    uop = a.uop
    if a.device == "CPU" and uop.is_realized and uop.has_buffer_identity():
        # A whole realized buffer: read its memory directly (`Tensor.numpy` reschedules, ~0.2 ms).
        view = uop.buffer.as_memoryview(allow_zero_copy=True)
        return np.frombuffer(view, dtype=_to_np_dtype(a.dtype)).reshape(a.shape).copy()
    return a.numpy()


def from_numpy(a: np.ndarray) -> Any:
    """A tinygrad tensor on the default device holding `a`'s values (shared on the CPU)."""
    if Device.DEFAULT != "CPU":
        return Tensor(a)
    shape, a = a.shape, np.ascontiguousarray(a)  # (which makes 0-d arrays 1-d)
    # A CPU buffer borrowing the array's memory, as `Tensor.from_blob` makes, built from its
    # parts: every tinygrad call costs ~0.1 ms of Python (`from_blob` 0.3 ms, this 0.1 ms;
    # `Tensor(a)` defers a 0.6 ms copy kernel to the first use). The buffer holds the array,
    # so that the memory lives as long as the tensor.
    buffer = UOp.new_buffer("CPU", a.size, _from_np_dtype(a.dtype))
    buffer.buffer.allocate(external_ptr=a.ctypes.data)
    buffer.buffer.anydiff_owner = a
    return Tensor(buffer if len(shape) == 1 else buffer.reshape(shape))


# -- the array-API namespace -------------------------------------------------------------------


class TensorsInNumPyError(TypeError):
    """A NumPy array of tinygrad tensors reached the namespace.

    NumPy makes one when it computes an operator whose first operand is a NumPy array
    (`data - x`): it takes the tensor apart element by element.
    """


def _tensor(a: Any, like: Any) -> Any:
    """`a` as a tensor on `like`'s device, in `like`'s dtype when `a` is a Python number."""
    if isinstance(a, Tensor):
        return a
    if isinstance(a, np.ndarray):
        if a.dtype == object:
            raise TensorsInNumPyError(
                "an `xp.` function received a NumPy array of tinygrad tensors, which NumPy makes "
                "for an operator whose first operand is a NumPy array (`data - x`)"
            )
        return from_numpy(a)
    return Tensor(a, dtype=like.dtype if isinstance(like, Tensor) else None, device=getattr(like, "device", None))


def _operand(a: Any) -> Any:
    """A NumPy operand as a tensor (tinygrad's methods take numbers and tensors, not NumPy arrays)."""
    return _tensor(a, None) if isinstance(a, np.ndarray) else a


def _on(t: Any, device: Any) -> Any:
    """`t` on `device` (tinygrad's `arange` and `linspace` make tensors on the default one)."""
    return t if device is None or device == t.device else t.to(device)


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


def _creation(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A tinygrad constructor `fn(*shape, dtype=, device=)` with the array API's signature."""

    def create(shape: int | Sequence[int], *, dtype: Any = None, device: Any = None) -> Any:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        # `contiguous` gives a real buffer: constants cannot be written into (`y[...] = v`).
        return fn(*shape, dtype=dtype or dtypes.default_float, device=device).contiguous()

    create.__name__ = fn.__name__
    return create


def _like(create: Callable[..., Any]) -> Callable[..., Any]:
    def like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
        return create(x.shape, dtype=dtype or x.dtype, device=device or x.device)

    return like


def _unary(method: str) -> Callable[[Any], Any]:
    def unary(x: Any, /) -> Any:
        return getattr(_operand(x), method)()

    unary.__name__ = method
    return unary


def _binary(method: str) -> Callable[[Any, Any], Any]:
    def binary(x1: Any, x2: Any, /) -> Any:
        return getattr(_tensor(x1, x2), method)(_operand(x2))

    binary.__name__ = method
    return binary


def _reduction(method: str) -> Callable[..., Any]:
    def reduce(x: Any, /, *, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:
        result = getattr(_operand(x), method)(axis=axis, keepdim=keepdims)
        return result if dtype is None else result.cast(dtype)

    reduce.__name__ = method
    return reduce


def _statistic(method: str) -> Callable[..., Any]:
    def statistic(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        return getattr(_operand(x), method)(axis=axis, keepdim=keepdims, correction=correction)

    statistic.__name__ = method
    return statistic


_UNARY = {
    name: name
    for name in (
        "abs sqrt square exp log log2 sin cos tan sinh cosh tanh asinh acosh atanh "
        "floor ceil round trunc sign isnan isinf isfinite logical_not"
    ).split()
} | {"negative": "neg", "exp2": "exp2"}
_BINARY = {
    "add": "add",
    "subtract": "sub",
    "multiply": "mul",
    "divide": "div",
    "pow": "pow",
    "maximum": "maximum",
    "minimum": "minimum",
    "copysign": "copysign",
    "logaddexp": "logaddexp",
    "equal": "eq",
    "not_equal": "ne",
    "less": "__lt__",
    "less_equal": "__le__",
    "greater": "__gt__",
    "greater_equal": "__ge__",
    "logical_and": "logical_and",
    "logical_or": "logical_or",
    "remainder": "mod",
    "floor_divide": "__floordiv__",
}


class _TinygradLinalg:
    """The array-API `linalg` names the scenario problems and typical functions use."""

    @staticmethod
    def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
        if ord == 2:
            return (x * x).sum(axis=axis, keepdim=keepdims).sqrt()
        if ord == float("inf"):
            return x.abs().max(axis=axis, keepdim=keepdims)
        if ord == -float("inf"):
            return x.abs().min(axis=axis, keepdim=keepdims)
        return x.abs().pow(ord).sum(axis=axis, keepdim=keepdims).pow(1.0 / ord)

    @staticmethod
    def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
        if ord != "fro":
            raise NotImplementedError(f"linalg.matrix_norm: only ord='fro' on tinygrad tensors; got {ord!r}.")
        return (x * x).sum(axis=(-2, -1), keepdim=keepdims).sqrt()

    @staticmethod
    def matmul(x1: Any, x2: Any, /) -> Any:
        return x1 @ x2

    @staticmethod
    def matrix_transpose(x: Any, /) -> Any:
        return x.transpose(-1, -2)

    @staticmethod
    def outer(x1: Any, x2: Any, /) -> Any:
        return x1[:, None] * x2[None, :]

    @staticmethod
    def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
        return (x1 * x2).sum(axis=axis)

    @staticmethod
    def diagonal(x: Any, /, *, offset: int = 0) -> Any:
        n = min(x.shape[-2], x.shape[-1] - offset) if offset >= 0 else min(x.shape[-2] + offset, x.shape[-1])
        rows = Tensor.arange(max(n, 0)) + max(-offset, 0)
        return x[..., rows, rows + offset]

    @staticmethod
    def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
        result = _TinygradLinalg.diagonal(x, offset=offset).sum(axis=-1)
        return result if dtype is None else result.cast(dtype)


class _TinygradNamespace:
    """An array-API namespace over tinygrad tensors; what `ad.namespace` returns for them.

    Covers the elementwise functions, reductions, shape manipulation, creation functions,
    `matmul`/`tensordot`/`vecdot` and `linalg.vector_norm`/`matrix_norm`/`outer`/`trace`. Python
    numbers mixed with tensors take the tensor's dtype. `nonzero` and `unique_values` have
    data-dependent shapes: they evaluate their argument.
    """

    __array_api_version__ = "2023.12"
    e, pi, inf, nan, newaxis = math.e, math.pi, math.inf, math.nan, None
    int32, int64, float32, float64 = dtypes.int32, dtypes.int64, dtypes.float32, dtypes.float64
    linalg = _TinygradLinalg()
    matmul = staticmethod(_TinygradLinalg.matmul)
    matrix_transpose = staticmethod(_TinygradLinalg.matrix_transpose)
    vecdot = staticmethod(_TinygradLinalg.vecdot)

    zeros = staticmethod(_creation(Tensor.zeros))
    ones = staticmethod(_creation(Tensor.ones))
    empty = staticmethod(_creation(Tensor.zeros))
    zeros_like = staticmethod(_like(zeros))
    ones_like = staticmethod(_like(ones))
    empty_like = staticmethod(_like(zeros))
    sum, prod, max, min, mean = (staticmethod(_reduction(m)) for m in ("sum", "prod", "max", "min", "mean"))
    all, any = (staticmethod(_reduction(m)) for m in ("all", "any"))
    std, var = (staticmethod(_statistic(m)) for m in ("std", "var"))

    @staticmethod
    def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
        if isinstance(obj, Tensor):
            return obj if dtype is None or dtype == obj.dtype else obj.cast(dtype)
        if isinstance(obj, (np.ndarray, np.generic)):
            t = from_numpy(np.asarray(obj))
            return t if dtype is None else t.cast(dtype)
        return Tensor(obj, dtype=dtype, device=device)

    @staticmethod
    def full(shape: int | Sequence[int], fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return Tensor.full(shape, fill_value, dtype=dtype or dtypes.default_float, device=device).contiguous()

    @staticmethod
    def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
        return _TinygradNamespace.full(x.shape, fill_value, dtype=dtype or x.dtype, device=device or x.device)

    @staticmethod
    def eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> Any:
        n_cols = n_rows if n_cols is None else n_cols
        rows, cols = Tensor.arange(n_rows)[:, None], Tensor.arange(n_cols)[None, :]
        return _on((cols - rows == k).cast(dtype or dtypes.default_float), device)

    @staticmethod
    def arange(
        start: float, /, stop: float | None = None, step: float = 1, *, dtype: Any = None, device: Any = None
    ) -> Any:
        return _on(Tensor.arange(start, stop, step, dtype=dtype), device)

    @staticmethod
    def linspace(
        start: float, stop: float, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
    ) -> Any:
        dtype = dtype or dtypes.default_float
        if endpoint:
            return _on(Tensor.linspace(start, stop, num, dtype=dtype), device)
        return _on(Tensor.arange(num, dtype=dtype) * ((stop - start) / num) + start, device)

    @staticmethod
    def tril(x: Any, /, *, k: int = 0) -> Any:
        return x.tril(k)

    @staticmethod
    def triu(x: Any, /, *, k: int = 0) -> Any:
        return x.triu(k)

    @staticmethod
    def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
        return x.cast(dtype)

    @staticmethod
    def finfo(dtype: Any, /) -> Any:
        return np.finfo(_to_np_dtype(dtype.dtype if isinstance(dtype, Tensor) else dtype))

    @staticmethod
    def isdtype(dtype: Any, kind: Any) -> bool:
        if isinstance(kind, tuple):
            return any(_TinygradNamespace.isdtype(dtype, k) for k in kind)
        if kind == "real floating":
            return dtypes.is_float(dtype)
        if kind == "integral":
            return dtypes.is_int(dtype)
        if kind == "bool":
            return dtype == dtypes.bool
        return dtype == kind

    @staticmethod
    def reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
        return x.reshape(tuple(shape))

    @staticmethod
    def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
        return Tensor.stack(*arrays, dim=axis)

    @staticmethod
    def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
        if axis is None:
            arrays, axis = [a.reshape(-1) for a in arrays], 0
        return arrays[0].cat(*arrays[1:], dim=axis)

    @staticmethod
    def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
        return tuple(x.split(1, dim=axis)[i].squeeze(axis) for i in range(x.shape[axis]))

    @staticmethod
    def expand_dims(x: Any, /, *, axis: int = 0) -> Any:
        return x.unsqueeze(axis)

    @staticmethod
    def squeeze(x: Any, /, axis: int | tuple[int, ...]) -> Any:
        for a in sorted((a % x.ndim for a in _axes(axis, x.ndim)), reverse=True):
            x = x.squeeze(a)
        return x

    @staticmethod
    def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
        return x.permute(tuple(axes))

    @staticmethod
    def moveaxis(x: Any, source: int, destination: int, /) -> Any:
        order = [a for a in range(x.ndim) if a != source % x.ndim]
        order.insert(destination % x.ndim, source % x.ndim)
        return x.permute(tuple(order))

    @staticmethod
    def flip(x: Any, /, *, axis: Any = None) -> Any:
        return x.flip(_axes(axis, x.ndim))

    @staticmethod
    def roll(x: Any, /, shift: int | tuple[int, ...], *, axis: Any = None) -> Any:
        if axis is None:
            return x.reshape(-1).roll(shift, 0).reshape(x.shape)
        return x.roll(shift, axis)

    @staticmethod
    def broadcast_to(x: Any, /, shape: Sequence[int]) -> Any:
        return x.expand(tuple(shape))

    @staticmethod
    def broadcast_arrays(*arrays: Any) -> list[Any]:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        return [a.expand(shape) for a in arrays]

    @staticmethod
    def tile(x: Any, repetitions: Sequence[int], /) -> Any:
        return x.repeat(tuple(repetitions))

    @staticmethod
    def repeat(x: Any, repeats: int, /, *, axis: int | None = None) -> Any:
        return x.reshape(-1).repeat_interleave(repeats) if axis is None else x.repeat_interleave(repeats, axis)

    @staticmethod
    def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
        if axis is None:
            x, axis = x.reshape(-1), 0
        index = (slice(None),) * (axis % x.ndim) + (_tensor(indices, None),)
        return x[index]

    @staticmethod
    def where(condition: Any, x1: Any, x2: Any, /) -> Any:
        like = x1 if isinstance(x1, Tensor) else x2
        return _tensor(condition, None).where(_tensor(x1, like), _tensor(x2, like))

    @staticmethod
    def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
        return x if min is None and max is None else x.clip(min, max)

    # tinygrad's asin, acos and atan have a zero derivative at exactly 0 (their approximations
    # multiply by `sign(x)`); there the first-order Taylor term gives value and slope exactly.
    @staticmethod
    def asin(x: Any, /) -> Any:
        return (x == 0).where(x, x.asin())

    @staticmethod
    def acos(x: Any, /) -> Any:
        return (x == 0).where(math.pi / 2 - x, x.acos())

    @staticmethod
    def atan(x: Any, /) -> Any:
        return (x == 0).where(x, x.atan())

    @staticmethod
    def atan2(x1: Any, x2: Any, /) -> Any:
        y, x = _tensor(x1, x2), _tensor(x2, x1)
        quadrant = (x < 0).where((y < 0).where(-math.pi, math.pi), 0.0)
        ratio = y / (x == 0).where(1.0, x)
        on_axis = (y > 0).where(math.pi / 2, (y < 0).where(-math.pi / 2, 0.0))
        return (x == 0).where(on_axis, _TinygradNamespace.atan(ratio) + quadrant)

    @staticmethod
    def hypot(x1: Any, x2: Any, /) -> Any:
        a, b = _tensor(x1, x2).abs(), _tensor(x2, x1).abs()
        big, small = a.maximum(b), a.minimum(b)
        ratio = (big == 0).where(0.0, small / (big == 0).where(1.0, big))
        return big * (1 + ratio * ratio).sqrt()

    @staticmethod
    def signbit(x: Any, /) -> Any:
        return (x < 0) | ((x == 0) & (x.reciprocal() < 0))

    @staticmethod
    def expm1(x: Any, /) -> Any:
        # exp(x) - 1 loses every digit as x -> 0; the series' first terms are exact enough there.
        return (x.abs() < 1e-5).where(x * (1 + x / 2), x.exp() - 1)

    @staticmethod
    def log1p(x: Any, /) -> Any:
        return (x.abs() < 1e-5).where(x * (1 - x / 2), (1 + x).log())

    @staticmethod
    def log10(x: Any, /) -> Any:
        return x.log2() * math.log10(2)

    @staticmethod
    def positive(x: Any, /) -> Any:
        return x

    def cumulative_sum(self, x: Any, /, *, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        return cumulative(self, Tensor.cumsum, x, axis, dtype, include_initial, 0.0)

    def cumulative_prod(self, x: Any, /, *, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        return cumulative(self, Tensor.cumprod, x, axis, dtype, include_initial, 1.0)

    @staticmethod
    def argmax(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
        return x.argmax(axis=axis, keepdim=keepdims)

    @staticmethod
    def argmin(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
        return x.argmin(axis=axis, keepdim=keepdims)

    @staticmethod
    def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        return x.sort(dim=axis, descending=descending)[0]

    @staticmethod
    def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        return x.sort(dim=axis, descending=descending)[1]

    @staticmethod
    def tensordot(x1: Any, x2: Any, /, *, axes: int | tuple[Sequence[int], Sequence[int]] = 2) -> Any:
        if isinstance(axes, int):
            axes = (tuple(range(x1.ndim - axes, x1.ndim)), tuple(range(axes)))
        a_axes, b_axes = [a % x1.ndim for a in axes[0]], [b % x2.ndim for b in axes[1]]
        a_free = [a for a in range(x1.ndim) if a not in a_axes]
        b_free = [b for b in range(x2.ndim) if b not in b_axes]
        k = math.prod(x1.shape[a] for a in a_axes)
        a = x1.permute((*a_free, *a_axes)).reshape(-1, k)
        b = x2.permute((*b_axes, *b_free)).reshape(k, -1)
        return (a @ b).reshape(*(x1.shape[i] for i in a_free), *(x2.shape[i] for i in b_free))

    @staticmethod
    def nonzero(x: Any, /) -> tuple[Any, ...]:
        return tuple(Tensor(i) for i in np.nonzero(to_numpy(x)))

    @staticmethod
    def unique_values(x: Any, /) -> Any:
        return from_numpy(np.unique(to_numpy(x)))

    def __repr__(self) -> str:
        return "<anydiff array-API namespace for tinygrad>"


_TinygradNamespace.bool = dtypes.bool  # type: ignore[attr-defined]  # (in the class, it would shadow `bool`)
for _name, _method in _UNARY.items():
    setattr(_TinygradNamespace, _name, staticmethod(_unary(_method)))
for _name, _method in _BINARY.items():
    setattr(_TinygradNamespace, _name, staticmethod(_binary(_method)))

tinygrad_namespace = _TinygradNamespace()
