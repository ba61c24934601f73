"""The array-API namespace over tensorflow: what `ad.namespace` hands `f` for its arrays."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from anydiff.extend import (
    register_namespace,
)

_PYTHON_SCALARS = (bool, int, float, complex)

__all__ = ["TensorFlowNamespace", "tensorflow_namespace"]


# -- the array-API namespace over TensorFlow -----------------------------------------------------


def _numpy_dtype(dtype: Any) -> np.dtype:
    if isinstance(dtype, tf.Tensor):
        dtype = dtype.dtype
    return np.dtype(tf.as_dtype(dtype).as_numpy_dtype)


def _promote(*tensors: Any) -> list[Any]:
    """Tensors cast to their common dtype under NumPy's rules (TensorFlow never promotes)."""
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) == 1:
        return list(tensors)
    common = tf.as_dtype(np.result_type(*(_numpy_dtype(d) for d in dtypes)))
    return [tf.cast(t, common) for t in tensors]


def _operands(x1: Any, x2: Any) -> list[Any]:
    """`x1, x2` as tensors of one dtype; a Python scalar takes the other operand's dtype."""
    t1, t2 = isinstance(x1, tf.Tensor), isinstance(x2, tf.Tensor)
    if t1 and t2 and x1.dtype == x2.dtype:
        return [x1, x2]
    if not t1:
        x1 = tf.constant(x1, x2.dtype) if t2 and isinstance(x1, _PYTHON_SCALARS) else _asarray(x1)
    if not t2:
        x2 = tf.constant(x2, x1.dtype) if isinstance(x2, _PYTHON_SCALARS) else _asarray(x2)
    return _promote(x1, x2)


def _binary(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(x1: Any, x2: Any, /) -> Any:
        return op(*_operands(x1, x2))

    apply.__name__ = getattr(op, "__name__", "binary")
    return apply


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    if isinstance(obj, tf.Tensor):
        return obj if dtype is None or obj.dtype == dtype else tf.cast(obj, dtype)
    if isinstance(obj, (list, tuple)) and any(isinstance(o, (tf.Tensor, list, tuple)) for o in obj):
        return tf.stack(_promote(*(_asarray(o, dtype=dtype) for o in obj)))
    # Through NumPy: Python numbers get NumPy's default dtypes (float64, int64), not TensorFlow's.
    return tf.constant(np.asarray(obj), dtype)


def _axes(x: Any, axis: int | Sequence[int] | None) -> list[int]:
    """`axis` as a list of non-negative axes of `x` (`None`: all of them)."""
    ndim = len(x.shape)
    if axis is None:
        return list(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return [a % ndim for a in axis]


def _along(x: Any, axis: int, index: Any) -> Any:
    """`x[..., index, ...]` with `index` (a slice) at position `axis`."""
    key = [slice(None)] * len(x.shape)
    key[axis] = index
    return x[tuple(key)]


def _flat(x: Any) -> Any:
    return tf.reshape(x, [-1])


def _triangle(x: Any, k: int, lower: bool) -> Any:
    rows = tf.range(tf.shape(x)[-2])[:, None]
    cols = tf.range(tf.shape(x)[-1])[None, :]
    keep = cols - rows <= k if lower else cols - rows >= k
    return tf.where(keep, x, tf.zeros_like(x))


def _signbit(x: Any) -> Any:
    # -0.0 is negative too: its reciprocal is -inf.
    return tf.math.logical_or(x < 0, tf.math.logical_and(tf.equal(x, 0), tf.math.reciprocal(x) < 0))


def _cumulative(op: Callable[..., Any], neutral: int) -> Callable[..., Any]:
    def cumulative(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
        axis = 0 if axis is None else axis % len(x.shape)
        x = x if dtype is None else tf.cast(x, dtype)
        out = op(x, axis=axis)
        if include_initial:
            initial = tf.fill(tf.tensor_scatter_nd_update(tf.shape(x), [[axis]], [1]), tf.constant(neutral, x.dtype))
            out = tf.concat([initial, out], axis)
        return out

    return cumulative


def _reduction(op: Callable[..., Any]) -> Callable[..., Any]:
    def reduce(x: Any, /, *, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:
        return op(x if dtype is None else tf.cast(x, dtype), axis=axis, keepdims=keepdims)

    reduce.__name__ = op.__name__
    return reduce


def _var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    mean = tf.reduce_mean(x, axis=axis, keepdims=True)
    count = tf.cast(tf.size(x) // tf.size(mean), x.dtype)
    return tf.reduce_sum(tf.square(tf.abs(x - mean)), axis=axis, keepdims=keepdims) / (count - correction)


def _arg_reduction(op: Callable[..., Any]) -> Callable[..., Any]:
    def arg(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
        if axis is None:
            out = op(_flat(x), axis=0)
            return tf.reshape(out, [1] * len(x.shape)) if keepdims else out
        out = op(x, axis=axis)
        return tf.expand_dims(out, axis) if keepdims else out

    return arg


def _matmul(x1: Any, x2: Any, /) -> Any:
    x1, x2 = _operands(x1, x2)
    if len(x1.shape) == 1 and len(x2.shape) == 1:
        return tf.reduce_sum(x1 * x2)
    if len(x2.shape) == 1:
        return tf.linalg.matvec(x1, x2)
    if len(x1.shape) == 1:
        return tf.linalg.matvec(x2, x1, transpose_a=True)
    return tf.linalg.matmul(x1, x2)


def _tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return tf.tensordot(*_operands(x1, x2), axes=axes)


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = _operands(x1, x2)
    return tf.reduce_sum(tf.math.conj(x1) * x2, axis=axis)


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    a = tf.abs(x)
    if ord == 2:
        return tf.sqrt(tf.reduce_sum(a * a, axis=axis, keepdims=keepdims))
    if ord == math.inf:
        return tf.reduce_max(a, axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return tf.reduce_min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return tf.reduce_sum(tf.cast(tf.not_equal(a, 0), a.dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return tf.reduce_sum(a, axis=axis, keepdims=keepdims)
    return tf.reduce_sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    if ord == "fro":
        out = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(x)), axis=[-2, -1]))
    elif ord in ("nuc", 2, -2):
        s = tf.linalg.svd(x, compute_uv=False)
        out = {"nuc": tf.reduce_sum, 2: tf.reduce_max, -2: tf.reduce_min}[ord](s, axis=-1)
    else:  # 1, -1 (column sums), inf, -inf (row sums)
        sums = tf.reduce_sum(tf.abs(x), axis=-2 if ord in (1, -1) else -1)
        out = tf.reduce_max(sums, axis=-1) if ord > 0 else tf.reduce_min(sums, axis=-1)
    return out[..., None, None] if keepdims else out


def _matrix_power(x: Any, n: int, /) -> Any:
    if n < 0:
        x, n = tf.linalg.inv(x), -n
    result = tf.eye(x.shape[-1], batch_shape=x.shape[:-2], dtype=x.dtype)
    while n:  # square-and-multiply
        if n & 1:
            result = tf.linalg.matmul(result, x)
        x, n = tf.linalg.matmul(x, x), n >> 1
    return result


def _cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    x1, x2 = _operands(_moveaxis(x1, axis, -1), _moveaxis(x2, axis, -1))
    return _moveaxis(tf.linalg.cross(x1, x2), -1, axis)


def _matrix_rank(x: Any, /, *, rtol: float | None = None) -> Any:
    s = tf.linalg.svd(x, compute_uv=False)
    if rtol is None:
        rtol = max(x.shape[-2:]) * float(np.finfo(_numpy_dtype(x.dtype)).eps)
    return tf.math.count_nonzero(s > tf.reduce_max(s, axis=-1, keepdims=True) * rtol, axis=-1)


def _solve(x1: Any, x2: Any, /) -> Any:
    x1, x2 = _operands(x1, x2)
    if len(x2.shape) == 1:
        return tf.linalg.solve(x1, x2[:, None])[:, 0]
    return tf.linalg.solve(x1, x2)


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


class UniqueCountsResult(NamedTuple):
    values: Any
    counts: Any


class UniqueInverseResult(NamedTuple):
    values: Any
    inverse_indices: Any


def _svd(x: Any, /, *, full_matrices: bool = True) -> SVDResult:
    s, u, v = tf.linalg.svd(x, full_matrices=full_matrices)
    return SVDResult(u, s, tf.linalg.adjoint(v))


class _Linalg:
    """The array API's `linalg` extension over TensorFlow."""

    cholesky = staticmethod(
        lambda x, /, *, upper=False: tf.linalg.adjoint(tf.linalg.cholesky(x)) if upper else tf.linalg.cholesky(x)
    )
    cross = staticmethod(_cross)
    det = staticmethod(tf.linalg.det)
    diagonal = staticmethod(lambda x, /, *, offset=0: tf.linalg.diag_part(x, k=offset))
    eigh = staticmethod(lambda x, /: EighResult(*tf.linalg.eigh(x)))
    eigvalsh = staticmethod(tf.linalg.eigvalsh)
    inv = staticmethod(tf.linalg.inv)
    matmul = staticmethod(_matmul)
    matrix_norm = staticmethod(_matrix_norm)
    matrix_power = staticmethod(_matrix_power)
    matrix_rank = staticmethod(_matrix_rank)
    matrix_transpose = staticmethod(tf.linalg.matrix_transpose)
    outer = staticmethod(lambda x1, x2, /: tf.tensordot(*_operands(x1, x2), axes=0))
    pinv = staticmethod(lambda x, /, *, rtol=None: tf.linalg.pinv(x, rcond=rtol))
    qr = staticmethod(lambda x, /, *, mode="reduced": QRResult(*tf.linalg.qr(x, full_matrices=mode == "complete")))
    slogdet = staticmethod(lambda x, /: SlogdetResult(*tf.linalg.slogdet(x)))
    solve = staticmethod(_solve)
    svd = staticmethod(_svd)
    svdvals = staticmethod(lambda x, /: tf.linalg.svd(x, compute_uv=False))
    tensordot = staticmethod(_tensordot)
    trace = staticmethod(
        lambda x, /, *, offset=0, dtype=None: tf.reduce_sum(
            tf.linalg.diag_part(x if dtype is None else tf.cast(x, dtype), k=offset), axis=-1
        )
    )
    vecdot = staticmethod(_vecdot)
    vector_norm = staticmethod(_vector_norm)


def _isdtype(dtype: Any, kind: Any) -> bool:
    dtype = tf.as_dtype(dtype)
    if isinstance(kind, tuple):
        return any(_isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        checks = {
            "bool": dtype.is_bool,
            "signed integer": dtype.is_integer and not dtype.is_unsigned,
            "unsigned integer": dtype.is_integer and dtype.is_unsigned,
            "integral": dtype.is_integer,
            "real floating": dtype.is_floating,
            "complex floating": dtype.is_complex,
            "numeric": dtype.is_integer or dtype.is_floating or dtype.is_complex,
        }
        return checks[kind]
    return dtype == tf.as_dtype(kind)


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return tf.concat(_promote(*(_flat(a) for a in arrays)), 0)
    return tf.concat(_promote(*arrays), axis)


def _moveaxis(x: Any, source: Any, destination: Any, /) -> Any:
    source, destination = _axes(x, source), _axes(x, destination)
    order = [a for a in range(len(x.shape)) if a not in source]
    for dst, src in sorted(zip(destination, source, strict=True)):
        order.insert(dst, src)
    return tf.transpose(x, order)


def _tile(x: Any, repetitions: Sequence[int], /) -> Any:
    extra = len(repetitions) - len(x.shape)
    if extra > 0:
        x = tf.reshape(x, [1] * extra + x.shape.as_list())
    return tf.tile(x, [1] * -extra + list(repetitions))


def _roll(x: Any, /, shift: Any, *, axis: Any = None) -> Any:
    if axis is None:
        return tf.reshape(tf.roll(_flat(x), shift, 0), tf.shape(x))
    return tf.roll(x, shift, axis)


def _diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    axis %= len(x.shape)
    if prepend is not None or append is not None:
        parts = [p for p in (prepend, x, append) if p is not None]
        x = tf.concat(_promote(*(_asarray(p) for p in parts)), axis)
    for _ in range(n):
        x = _along(x, axis, slice(1, None)) - _along(x, axis, slice(None, -1))
    return x


def _searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> Any:
    if sorter is not None:
        x1 = tf.gather(x1, sorter)
    x1, x2 = _operands(x1, x2)
    out = tf.searchsorted(x1, _flat(x2), side=side, out_type=tf.int64)
    return tf.reshape(out, tf.shape(x2))


def _take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    return tf.experimental.numpy.take_along_axis(x, indices, axis)


def _where(condition: Any, x1: Any, x2: Any, /) -> Any:
    return tf.where(condition, *_operands(x1, x2))


def _clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002 (array-API names)
    if min is not None:
        x = tf.maximum(*_operands(x, min))
    if max is not None:
        x = tf.minimum(*_operands(x, max))
    return x


def _sort_direction(descending: bool) -> str:
    return "DESCENDING" if descending else "ASCENDING"


def _unique_inverse(x: Any, /) -> UniqueInverseResult:
    values, inverse = tf.unique(_flat(x), out_idx=tf.int64)
    return UniqueInverseResult(values, tf.reshape(inverse, tf.shape(x)))


def _unique_counts(x: Any, /) -> UniqueCountsResult:
    values, _, counts = tf.unique_with_counts(_flat(x), out_idx=tf.int64)
    return UniqueCountsResult(values, counts)


def _eye(n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None) -> Any:
    dtype = dtype or tf.float64
    if k == 0:
        return tf.eye(n_rows, n_cols, dtype=dtype)
    n_cols = n_rows if n_cols is None else n_cols
    return tf.cast(tf.range(n_cols)[None, :] - tf.range(n_rows)[:, None] == k, dtype)


def _arange(start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None) -> Any:
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        dtype = tf.int64 if all(isinstance(v, int) for v in (start, stop, step)) else tf.float64
    return tf.range(start, stop, step, dtype=dtype)


def _linspace(
    start: Any, stop: Any, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
) -> Any:
    dtype = dtype or tf.float64
    out = tf.linspace(tf.constant(start, dtype), tf.constant(stop, dtype), num + (not endpoint))
    return out if endpoint else out[:-1]


def _full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return tf.fill(shape, _asarray(fill_value, dtype=dtype))


def _broadcast_arrays(*arrays: Any) -> list[Any]:
    shape = functools.reduce(tf.broadcast_static_shape, (a.shape for a in arrays))
    return [tf.broadcast_to(a, shape) for a in arrays]


def _unary(op: Callable[..., Any]) -> Any:
    return staticmethod(lambda x, /: op(x))


class TensorFlowNamespace:
    """The array-API namespace (2023.12) over TensorFlow tensors: what `ad.namespace(tensor)` returns.

    Every function is a TensorFlow op (or a few), so it runs eagerly, inside `tf.function` and
    under `GradientTape` / `ForwardAccumulator`. Where the array API and TensorFlow differ, the
    array API wins: binary functions promote dtypes as NumPy does and let a Python scalar take
    the other operand's dtype; creation functions default to float64 and int64, as NumPy does.
    The arithmetic *operators* of tensors (`x * c`, `A @ x`) remain TensorFlow's own: they do not
    promote, and `@` needs two matrices, so write `xp.matmul(A, x)` for a matrix-vector product.

    Example:
        >>> import tensorflow as tf, anydiff as ad
        >>> x = tf.constant([0.0, 1.0], dtype=tf.float64)
        >>> xp = ad.namespace(x)
        >>> float(xp.sum(xp.cumulative_sum(x) * 2.0))
        2.0
    """

    __array_api_version__ = "2023.12"

    # constants and dtypes
    e, inf, nan, pi, newaxis = math.e, math.inf, math.nan, math.pi, None
    bool = tf.bool
    int8, int16, int32, int64 = tf.int8, tf.int16, tf.int32, tf.int64
    uint8, uint16, uint32, uint64 = tf.uint8, tf.uint16, tf.uint32, tf.uint64
    float32, float64, complex64, complex128 = tf.float32, tf.float64, tf.complex64, tf.complex128

    # creation
    arange = staticmethod(_arange)
    asarray = staticmethod(_asarray)
    empty = staticmethod(lambda shape, *, dtype=None, device=None: tf.zeros(shape, dtype or tf.float64))
    empty_like = staticmethod(lambda x, /, *, dtype=None, device=None: tf.zeros_like(x, dtype=dtype))
    eye = staticmethod(_eye)
    from_dlpack = staticmethod(lambda x, /: tf.experimental.dlpack.from_dlpack(x.__dlpack__()))
    full = staticmethod(_full)
    full_like = staticmethod(
        lambda x, /, fill_value, *, dtype=None, device=None: _full(tf.shape(x), fill_value, dtype=dtype or x.dtype)
    )
    linspace = staticmethod(_linspace)
    meshgrid = staticmethod(lambda *arrays, indexing="xy": tf.meshgrid(*arrays, indexing=indexing))
    ones = staticmethod(lambda shape, *, dtype=None, device=None: tf.ones(shape, dtype or tf.float64))
    ones_like = staticmethod(lambda x, /, *, dtype=None, device=None: tf.ones_like(x, dtype=dtype))
    tril = staticmethod(lambda x, /, *, k=0: _triangle(x, k, lower=True))
    triu = staticmethod(lambda x, /, *, k=0: _triangle(x, k, lower=False))
    zeros = staticmethod(lambda shape, *, dtype=None, device=None: tf.zeros(shape, dtype or tf.float64))
    zeros_like = staticmethod(lambda x, /, *, dtype=None, device=None: tf.zeros_like(x, dtype=dtype))

    # data types
    astype = staticmethod(lambda x, dtype, /, *, copy=True, device=None: tf.cast(x, dtype))
    can_cast = staticmethod(lambda from_, to, /: bool(np.can_cast(_numpy_dtype(from_), _numpy_dtype(to))))
    finfo = staticmethod(lambda type, /: np.finfo(_numpy_dtype(type)))
    iinfo = staticmethod(lambda type, /: np.iinfo(_numpy_dtype(type)))
    isdtype = staticmethod(_isdtype)
    result_type = staticmethod(
        lambda *arrays_and_dtypes: tf.as_dtype(np.result_type(*map(_numpy_dtype, arrays_and_dtypes)))
    )

    # element-wise, one argument
    abs = _unary(tf.math.abs)
    acos = _unary(tf.math.acos)
    acosh = _unary(tf.math.acosh)
    asin = _unary(tf.math.asin)
    asinh = _unary(tf.math.asinh)
    atan = _unary(tf.math.atan)
    atanh = _unary(tf.math.atanh)
    bitwise_invert = _unary(tf.bitwise.invert)
    ceil = _unary(tf.math.ceil)
    conj = _unary(tf.math.conj)
    cos = _unary(tf.math.cos)
    cosh = _unary(tf.math.cosh)
    exp = _unary(tf.math.exp)
    expm1 = _unary(tf.math.expm1)
    floor = _unary(tf.math.floor)
    imag = _unary(tf.math.imag)
    isfinite = _unary(tf.math.is_finite)
    isinf = _unary(tf.math.is_inf)
    isnan = _unary(tf.math.is_nan)
    log = _unary(tf.math.log)
    log1p = _unary(tf.math.log1p)
    log2 = staticmethod(lambda x, /: tf.math.log(x) * (1 / math.log(2)))
    log10 = staticmethod(lambda x, /: tf.math.log(x) * (1 / math.log(10)))
    logical_not = _unary(tf.math.logical_not)
    negative = _unary(tf.math.negative)
    positive = _unary(tf.identity)
    real = _unary(tf.math.real)
    reciprocal = _unary(tf.math.reciprocal)
    round = _unary(tf.math.round)  # halves to even, as the array API asks
    sign = _unary(tf.math.sign)
    signbit = staticmethod(_signbit)
    sin = _unary(tf.math.sin)
    sinh = _unary(tf.math.sinh)
    sqrt = _unary(tf.math.sqrt)
    square = _unary(tf.math.square)
    tan = _unary(tf.math.tan)
    tanh = _unary(tf.math.tanh)
    trunc = staticmethod(lambda x, /: tf.where(x < 0, tf.math.ceil(x), tf.math.floor(x)))

    # element-wise, two arguments
    add = staticmethod(_binary(tf.math.add))
    atan2 = staticmethod(_binary(tf.math.atan2))
    bitwise_and = staticmethod(_binary(tf.bitwise.bitwise_and))
    bitwise_left_shift = staticmethod(_binary(tf.bitwise.left_shift))
    bitwise_or = staticmethod(_binary(tf.bitwise.bitwise_or))
    bitwise_right_shift = staticmethod(_binary(tf.bitwise.right_shift))
    bitwise_xor = staticmethod(_binary(tf.bitwise.bitwise_xor))
    clip = staticmethod(_clip)
    copysign = staticmethod(_binary(lambda x1, x2: tf.where(_signbit(x2), -tf.abs(x1), tf.abs(x1))))
    divide = staticmethod(_binary(tf.math.divide))
    equal = staticmethod(_binary(tf.math.equal))
    floor_divide = staticmethod(_binary(tf.math.floordiv))
    greater = staticmethod(_binary(tf.math.greater))
    greater_equal = staticmethod(_binary(tf.math.greater_equal))
    hypot = staticmethod(_binary(lambda x1, x2: tf.sqrt(tf.square(x1) + tf.square(x2))))
    less = staticmethod(_binary(tf.math.less))
    less_equal = staticmethod(_binary(tf.math.less_equal))
    logaddexp = staticmethod(_binary(lambda x1, x2: tf.maximum(x1, x2) + tf.math.log1p(tf.exp(-tf.abs(x1 - x2)))))
    logical_and = staticmethod(_binary(tf.math.logical_and))
    logical_or = staticmethod(_binary(tf.math.logical_or))
    logical_xor = staticmethod(_binary(tf.math.logical_xor))
    maximum = staticmethod(_binary(tf.math.maximum))
    minimum = staticmethod(_binary(tf.math.minimum))
    multiply = staticmethod(_binary(tf.math.multiply))
    nextafter = staticmethod(_binary(tf.math.nextafter))
    not_equal = staticmethod(_binary(tf.math.not_equal))
    pow = staticmethod(_binary(tf.math.pow))
    remainder = staticmethod(_binary(tf.math.floormod))  # the sign of the divisor, as in Python
    subtract = staticmethod(_binary(tf.math.subtract))

    # indexing
    take = staticmethod(lambda x, indices, /, *, axis=None: tf.gather(x, indices, axis=axis or 0))
    take_along_axis = staticmethod(_take_along_axis)

    # linear algebra
    linalg = _Linalg()
    matmul = staticmethod(_matmul)
    matrix_transpose = staticmethod(tf.linalg.matrix_transpose)
    tensordot = staticmethod(_tensordot)
    vecdot = staticmethod(_vecdot)

    # manipulation
    broadcast_arrays = staticmethod(_broadcast_arrays)
    broadcast_to = staticmethod(lambda x, /, shape: tf.broadcast_to(x, shape))
    concat = staticmethod(_concat)
    expand_dims = staticmethod(lambda x, /, *, axis=0: tf.expand_dims(x, axis))
    flip = staticmethod(lambda x, /, *, axis=None: tf.reverse(x, _axes(x, axis)))
    moveaxis = staticmethod(_moveaxis)
    permute_dims = staticmethod(lambda x, /, axes: tf.transpose(x, axes))
    repeat = staticmethod(lambda x, repeats, /, *, axis=None: tf.repeat(x, repeats, axis=axis))
    reshape = staticmethod(lambda x, /, shape, *, copy=None: tf.reshape(x, shape))
    roll = staticmethod(_roll)
    squeeze = staticmethod(lambda x, /, axis: tf.squeeze(x, axis))
    stack = staticmethod(lambda arrays, /, *, axis=0: tf.stack(_promote(*arrays), axis))
    tile = staticmethod(_tile)
    unstack = staticmethod(lambda x, /, *, axis=0: tuple(tf.unstack(x, axis=axis)))

    # searching
    argmax = staticmethod(_arg_reduction(tf.math.argmax))
    argmin = staticmethod(_arg_reduction(tf.math.argmin))
    count_nonzero = staticmethod(lambda x, /, *, axis=None, keepdims=False: tf.math.count_nonzero(x, axis, keepdims))
    nonzero = staticmethod(lambda x, /: tuple(tf.unstack(tf.where(tf.not_equal(x, 0)), num=len(x.shape), axis=1)))
    searchsorted = staticmethod(_searchsorted)
    where = staticmethod(_where)

    # sets
    unique_counts = staticmethod(_unique_counts)
    unique_inverse = staticmethod(_unique_inverse)
    unique_values = staticmethod(lambda x, /: tf.unique(_flat(x)).y)

    # sorting
    argsort = staticmethod(
        lambda x, /, *, axis=-1, descending=False, stable=True: tf.cast(
            tf.argsort(x, axis, _sort_direction(descending), stable=stable), tf.int64
        )
    )
    sort = staticmethod(
        lambda x, /, *, axis=-1, descending=False, stable=True: tf.sort(x, axis, _sort_direction(descending))
    )

    # statistics
    cumulative_prod = staticmethod(_cumulative(tf.math.cumprod, 1))
    cumulative_sum = staticmethod(_cumulative(tf.math.cumsum, 0))
    max = staticmethod(_reduction(tf.math.reduce_max))
    mean = staticmethod(_reduction(tf.math.reduce_mean))
    min = staticmethod(_reduction(tf.math.reduce_min))
    prod = staticmethod(_reduction(tf.math.reduce_prod))
    std = staticmethod(
        lambda x, /, *, axis=None, correction=0.0, keepdims=False: tf.sqrt(
            _var(x, axis=axis, correction=correction, keepdims=keepdims)
        )
    )
    sum = staticmethod(_reduction(tf.math.reduce_sum))
    var = staticmethod(_var)

    # utilities
    all = staticmethod(lambda x, /, *, axis=None, keepdims=False: tf.reduce_all(tf.cast(x, tf.bool), axis, keepdims))
    any = staticmethod(lambda x, /, *, axis=None, keepdims=False: tf.reduce_any(tf.cast(x, tf.bool), axis, keepdims))
    diff = staticmethod(_diff)

    def __repr__(self) -> str:
        return "<anydiff's array-API namespace for TensorFlow>"


#: the namespace `ad.namespace` returns for TensorFlow tensors
tensorflow_namespace = TensorFlowNamespace()


def _symbolic_tensor_type() -> type:
    with tf.Graph().as_default():
        return type(tf.constant(0.0))


for _tensor_type in (type(tf.constant(0.0)), _symbolic_tensor_type()):
    register_namespace(_tensor_type, lambda a: tensorflow_namespace)
