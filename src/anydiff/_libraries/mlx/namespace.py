"""The array-API namespace over mlx: what `ad.namespace` hands `f` for its arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from anydiff.extend import (
    cumulative,
)

# -- the array-API namespace -------------------------------------------------------------------

__all__ = ["mlx_namespace"]


def _without_device(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` accepting (and ignoring) the array API's `device=`: MLX arrays live in unified memory."""

    def call(*args: Any, device: Any = None, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    call.__name__ = fn.__name__
    return call


def _signbit(x: Any) -> Any:
    # -0.0 has its sign bit set without being negative: 1 / -0.0 is -inf.
    return mx.logical_or(x < 0, mx.logical_and(x == 0, mx.reciprocal(x) < 0))


def _cast(result: Any, dtype: Any) -> Any:
    return result if dtype is None else result.astype(dtype)


class _MLXLinalg:
    """`mlx.core.linalg` plus the array-API linear-algebra names it lacks."""

    @staticmethod
    def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
        if axis is None:
            x, axis = mx.reshape(x, (-1,)), 0
        if ord == 2:
            return mx.sqrt(mx.sum(x * x, axis=axis, keepdims=keepdims))
        if ord == float("inf"):
            return mx.max(mx.abs(x), axis=axis, keepdims=keepdims)
        if ord == -float("inf"):
            return mx.min(mx.abs(x), axis=axis, keepdims=keepdims)
        if ord == 0:
            return mx.sum((x != 0).astype(x.dtype), axis=axis, keepdims=keepdims)
        return mx.power(mx.sum(mx.power(mx.abs(x), ord), axis=axis, keepdims=keepdims), 1.0 / ord)

    @staticmethod
    def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
        return mx.linalg.norm(x, ord=ord, axis=[-2, -1], keepdims=keepdims)

    @staticmethod
    def outer(a: Any, b: Any, /) -> Any:
        return mx.outer(a, b)

    @staticmethod
    def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
        return _cast(mx.trace(x, offset=offset, axis1=-2, axis2=-1), dtype)

    @staticmethod
    def diagonal(x: Any, /, *, offset: int = 0) -> Any:
        return mx.diagonal(x, offset=offset, axis1=-2, axis2=-1)

    matmul = staticmethod(mx.matmul)
    matrix_transpose = staticmethod(mx.matrix_transpose)
    tensordot = staticmethod(mx.tensordot)
    vecdot = staticmethod(mx.vecdot)

    def __getattr__(self, name: str) -> Any:
        return getattr(mx.linalg, name)


class _MLXNamespace:
    """`mlx.core` with the array-API names and signatures it lacks; what `ad.namespace` returns.

    Fills in `hypot`, `copysign`, `signbit`, `nonzero`, `unique_values`, `bool`, the array API's
    `cumulative_sum(include_initial=)`, `std`/`var(correction=)`, `sum`/`prod(dtype=)`,
    `clip(min=, max=)`, `sort(descending=)`, `asarray` keeping float64, the `device=` argument of the
    creation functions, and `linalg.vector_norm` and friends; every other name is `mlx.core`'s.
    `nonzero` and `unique_values` have data-dependent shapes: they work on concrete arrays only,
    not inside `mx.compile` or `mx.vmap`.
    """

    __array_api_version__ = "2023.12"
    linalg = _MLXLinalg()

    zeros = staticmethod(_without_device(mx.zeros))
    ones = staticmethod(_without_device(mx.ones))
    empty = staticmethod(_without_device(mx.zeros))
    full = staticmethod(_without_device(mx.full))
    zeros_like = staticmethod(_without_device(mx.zeros_like))
    ones_like = staticmethod(_without_device(mx.ones_like))
    empty_like = staticmethod(_without_device(mx.zeros_like))
    full_like = staticmethod(_without_device(mx.full_like))
    eye = staticmethod(_without_device(mx.eye))
    arange = staticmethod(_without_device(mx.arange))
    linspace = staticmethod(_without_device(mx.linspace))

    @staticmethod
    def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
        if dtype is None and isinstance(obj, (np.ndarray, np.generic)) and obj.dtype == np.float64:
            dtype = mx.float64  # MLX would make it float32
        if isinstance(obj, mx.array) and dtype in (None, obj.dtype) and not copy:
            return obj
        return mx.array(obj, dtype=dtype) if dtype is not None else mx.array(obj)

    @staticmethod
    def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
        return x.astype(dtype)

    @staticmethod
    def reshape(x: Any, /, shape: Sequence[int], *, copy: bool | None = None) -> Any:
        return mx.reshape(x, shape)

    @staticmethod
    def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
        return mx.sum(_cast(x, dtype), axis=axis, keepdims=keepdims)

    @staticmethod
    def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
        return mx.prod(_cast(x, dtype), axis=axis, keepdims=keepdims)

    @staticmethod
    def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        return mx.std(x, axis=axis, keepdims=keepdims, ddof=int(correction))

    @staticmethod
    def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        return mx.var(x, axis=axis, keepdims=keepdims, ddof=int(correction))

    def cumulative_sum(self, x: Any, /, *, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        return cumulative(self, lambda x, a: mx.cumsum(x, axis=a), x, axis, dtype, include_initial, 0.0)

    def cumulative_prod(self, x: Any, /, *, axis: Any = None, dtype: Any = None, include_initial: bool = False) -> Any:
        return cumulative(self, lambda x, a: mx.cumprod(x, axis=a), x, axis, dtype, include_initial, 1.0)

    @staticmethod
    def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
        return x if min is None and max is None else mx.clip(x, min, max)

    @staticmethod
    def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        result = mx.sort(x, axis=axis)
        return mx.flip(result, axis=axis) if descending else result

    @staticmethod
    def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
        if descending:  # stable descending order: sort the negated values
            return mx.argsort(-x, axis=axis)
        return mx.argsort(x, axis=axis)

    @staticmethod
    def hypot(x1: Any, x2: Any, /) -> Any:
        # Scaled by the larger magnitude so that squaring neither overflows nor underflows.
        a, b = mx.abs(x1), mx.abs(x2)
        big, small = mx.maximum(a, b), mx.minimum(a, b)
        ratio = mx.where(big == 0, 0.0, small / mx.where(big == 0, 1.0, big))
        return big * mx.sqrt(1 + ratio * ratio)

    signbit = staticmethod(_signbit)

    @staticmethod
    def copysign(x1: Any, x2: Any, /) -> Any:
        magnitude = mx.abs(x1)
        return mx.where(_signbit(mx.array(x2) if not isinstance(x2, mx.array) else x2), -magnitude, magnitude)

    @staticmethod
    def nonzero(x: Any, /) -> tuple[Any, ...]:
        return tuple(mx.array(i) for i in np.nonzero(np.asarray(x)))

    @staticmethod
    def unique_values(x: Any, /) -> Any:
        return mx.array(np.unique(np.asarray(x)))

    def __getattr__(self, name: str) -> Any:
        value = getattr(mx, name)
        setattr(self, name, value)  # found once, then an ordinary attribute
        return value

    def __repr__(self) -> str:
        return "<anydiff array-API namespace for mlx.core>"


_MLXNamespace.bool = mx.bool_  # type: ignore[attr-defined]  # (in the class, it would shadow `bool`)
mlx_namespace = _MLXNamespace()
