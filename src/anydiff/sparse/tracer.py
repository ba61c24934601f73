"""Sparsity detection by tracing: `SparsityTracer`, its array-API namespace, `TracerSparsityDetector`.

`f` runs once on a `SparsityTracer`, an array that carries no values, only which inputs each of its
elements depends on. Those first-order dependencies are ONE sparse boolean matrix per array
(`array.size x n`, SciPy CSR, rows in C order), so every operation is a sparse-matrix operation:

- structural operations (indexing, slicing, reshapes, transposes, concatenation, `where` with a
  constant condition, padding, ...) copy rows: the operation is applied by NumPy to an array of
  1-based row numbers (0 meaning "a constant element"), and the result selects rows;
- elementwise operations take the union (boolean sum) of their operands' broadcast rows, dropping
  operands whose partial derivative is zero everywhere (`sign`, comparisons, integer results);
- reductions, cumulative sums, sorting and products with constant matrices are one sparse
  product `R @ deps`, where `R` says which input elements each output element combines.

For Hessian patterns the tracer also accumulates ONE global `n x n` boolean matrix of second-order
interactions, using what is known of each operation: linear operations (`+`, `-`, `sum`, indexing,
reshapes, products with constants) add nothing; a product `a * b` adds `S_a x S_b` (its cross
term only, so `x[0] * x[1]` has no diagonal); a nonlinear function `g(a)` adds `S_a x S_a`, with
`S` the dependency set of each element. Summed over the elements of an array these are the
patterns of `deps_aᵀ deps_b` and `deps_aᵀ deps_a`. Like SparseConnectivityTracer.jl's global
Hessian mode, the accumulation ignores where an intermediate flows; the result is then restricted
to the inputs the scalar output depends on, which keeps it sound: an entry `(i, j)` can only be
nonzero if the output depends on both `x_i` and `x_j`.

The pattern is global in `x` (valid for every value of `x`), which is why a Python branch on a
traced value cannot be followed. Constants (NumPy arrays, Python numbers, `Constant` contexts) are
known values: a zero in a constant factor or matrix removes the dependency it multiplies, so the
pattern holds for every `x` and the constants given.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat.numpy as _compat_numpy
import numpy as np
import scipy.sparse as sp

from anydiff._core.arrays import register_namespace
from anydiff._core.contexts import check_contexts
from anydiff._core.errors import FunctionNotDifferentiableError

__all__ = ["SparsityTracer", "TracerSparsityDetector", "tracer_namespace"]

_NP: Any = _compat_numpy  # the array-API view of NumPy: constants, dtypes, index maps

_DENSE_HINT = (
    "use `ad.DenseSparsityDetector(backend)` for a local pattern from one dense evaluation, or "
    "`ad.KnownSparsity(pattern)`"
)


# --------------------------------------------------------------------------------------------
# Sparse-matrix helpers. Dependency matrices are canonical boolean CSR arrays: sorted indices,
# no duplicates, no stored False.


def _empty(rows: int, n: int) -> sp.csr_array:
    return sp.csr_array((rows, n), dtype=bool)


def _take_rows(blocks: Sequence[sp.csr_array], rows: np.ndarray, n: int) -> sp.csr_array:
    """Rows of the stacked `[empty row; *blocks]` matrix: `rows` are 1-based, 0 selects no input."""
    indptr = np.concatenate(
        [np.zeros(2, np.int64)]
        + [block.indptr[1:] + start for block, start in zip(blocks, _starts(blocks), strict=True)]
    )
    indices = np.concatenate([block.indices for block in blocks])
    first = indptr[rows]
    lengths = indptr[rows + 1] - first
    out_indptr = np.zeros(rows.size + 1, np.int64)
    np.cumsum(lengths, out=out_indptr[1:])
    # position in `indices` of every entry of the result: a vectorised concatenation of slices
    source = np.repeat(first - out_indptr[:-1], lengths) + np.arange(out_indptr[-1])
    result = sp.csr_array((np.ones(source.size, bool), indices[source], out_indptr), shape=(rows.size, n))
    result.has_sorted_indices = all(block.has_sorted_indices for block in blocks)
    return result


def _starts(blocks: Sequence[sp.csr_array]) -> list[int]:
    """Offset of each block's entries in the concatenation of the blocks' `indices`."""
    return [0, *np.cumsum([block.nnz for block in blocks[:-1]], dtype=np.int64).tolist()]


def _canonical(matrix: sp.sparray) -> sp.csr_array:
    result = sp.csr_array(matrix, dtype=bool)
    result.sum_duplicates()
    result.eliminate_zeros()
    return result


def _union(matrices: Sequence[sp.csr_array]) -> sp.csr_array:
    # the boolean sum of SciPy sparse arrays is a logical or
    return functools.reduce(operator.add, matrices)


def _axis_operator(shape: tuple[int, ...], axis: int, block: np.ndarray) -> sp.csr_array:
    """`R` applying `block` (new length x old length) along `axis` of a C-ordered array."""
    before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1 :])
    inner = sp.kron(sp.csr_array(block), sp.eye_array(after, dtype=bool), format="csr")
    return _canonical(sp.kron(sp.eye_array(before, dtype=bool), inner, format="csr"))


# --------------------------------------------------------------------------------------------
# The trace: state shared by the tracers of one run of `f`.


class _Trace:
    """The input count `n` and, in Hessian mode, the global second-order interaction pattern."""

    __slots__ = ("n", "track_hessian", "_pieces")

    def __init__(self, n: int, track_hessian: bool) -> None:
        self.n = n
        self.track_hessian = track_hessian
        self._pieces: list[sp.csr_array] = []

    @property
    def operator(self) -> str:
        """The public function being run, for error messages."""
        return "hessian_sparsity" if self.track_hessian else "jacobian_sparsity"

    def add_interactions(self, left: sp.csr_array, right: sp.csr_array) -> None:
        """Record `S_left(k) x S_right(k)` for every element `k` (the pattern of `leftᵀ right`)."""
        if left.nnz and right.nnz:
            self._add(left.T @ right)

    def add_distinct_pairs(self, reduction: sp.csr_array, deps: sp.csr_array) -> None:
        """Record `S_k x S_l` for every pair of distinct elements `k != l` reduced together.

        With integer counts, `(R D)ᵀ(R D) - DᵀD` sums `s_k s_lᵀ` over the pairs `k != l` of each
        group, so its positive entries are exactly the cross terms of a product reduction.
        """
        counts = deps.astype(np.int64)
        grouped = reduction.astype(np.int64) @ counts
        self._add(_canonical((grouped.T @ grouped - counts.T @ counts) > 0))

    def _add(self, piece: sp.sparray) -> None:
        self._pieces.append(sp.csr_array(piece, dtype=bool))
        if len(self._pieces) > 32:  # bound memory on long computations
            self._pieces = [_union(self._pieces)]

    def hessian(self, output: sp.csr_array) -> sp.csr_array:
        """The symmetric pattern, restricted to the inputs `output` (one row) depends on."""
        n = self.n
        total = _union([_empty(n, n), *self._pieces])
        inputs = output.indices
        keep = sp.csr_array((np.ones(inputs.size, bool), (inputs, inputs)), shape=(n, n))
        return _canonical(keep @ (total + total.T) @ keep)


# --------------------------------------------------------------------------------------------
# The tracer array.

Operand = Any  # a SparsityTracer, a NumPy array or scalar, or a Python number


class SparsityTracer:
    """`SparsityTracer`: an array that records which inputs each element depends on, not values.

    `f` receives one from `TracerSparsityDetector`; write `f` with the array API
    (`xp = ad.namespace(x)`) and it works unchanged. Its namespace is `tracer_namespace`.

    Attributes:
        shape: the array's shape.
        dtype: the NumPy dtype the array would have.
        deps: `(size, n)` boolean CSR array; row `k` holds the inputs element `k` (C order)
            depends on.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.jacobian_sparsity(lambda x: x[1:] * x[:-1], np.ones(3)).toarray()
        array([[ True,  True, False],
               [False,  True,  True]])
    """

    __slots__ = ("shape", "dtype", "deps", "_trace")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, deps: sp.csr_array, trace: _Trace) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.deps = deps
        self._trace = trace

    ndim = property(lambda self: len(self.shape), doc="Number of axes.")
    size = property(lambda self: math.prod(self.shape), doc="Number of elements.")
    device = property(lambda self: "cpu", doc="Always `'cpu'`.")
    T = property(lambda self: tracer_namespace.permute_dims(self, tuple(range(self.ndim))[::-1]))
    mT = property(lambda self: tracer_namespace.matrix_transpose(self))

    def __repr__(self) -> str:
        return f"SparsityTracer(shape={self.shape}, dtype={self.dtype}, nnz={self.deps.nnz})"

    def __array_namespace__(self, api_version: str | None = None) -> _Namespace:
        return tracer_namespace

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self) -> Iterator[SparsityTracer]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key: Any) -> SparsityTracer:
        if _contains_tracer(key):
            raise FunctionNotDifferentiableError(
                f"{self._trace.operator}: the tracer cannot index with a traced index or mask, because "
                "which elements are selected depends on the values of `x` (data-dependent "
                f"indexing). Select with `xp.where(condition, a, b)` instead, or {_DENSE_HINT}."
            )
        return rearrange(lambda index: index[key], self)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise FunctionNotDifferentiableError(
            f"{self._trace.operator}: the tracer does not support in-place assignment `x[key] = value` "
            "(neither does JAX). Build the array functionally, e.g. with `xp.concat`, `xp.stack` "
            "or `xp.where(mask, value, x)`."
        )

    def _concrete(self, *args: Any, **kwargs: Any) -> Any:
        raise FunctionNotDifferentiableError(
            f"{self._trace.operator}: `f` needs the value of a traced array ({self!r}), but the tracer "
            "cannot follow data-dependent control flow: the pattern it finds holds for every `x`, "
            "so it has no values. This happens with `if x[0] > 0:`, `bool(t)`, `float(t)`, "
            "`t.item()`, or when a NumPy function receives the tracer. Write branches as "
            "`xp.where(condition, a, b)` and use `xp = ad.namespace(x)` functions, or "
            f"{_DENSE_HINT}."
        )

    __bool__ = __float__ = __int__ = __index__ = __complex__ = _concrete
    item = tolist = __array__ = __dlpack__ = _concrete

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # NumPy ufuncs (`np.sin(t)`, and `A @ t` / `c * t` with NumPy operands) use the namespace
        function = getattr(tracer_namespace, ufunc.__name__, None)
        if method != "__call__" or kwargs or function is None:
            raise FunctionNotDifferentiableError(
                f"{self._trace.operator}: `numpy.{ufunc.__name__}.{method}` cannot run on a tracer. "
                "Write `f` with `xp = ad.namespace(x)` functions."
            )
        return function(*inputs)

    def astype(self, dtype: Any, /, *, copy: bool = True) -> SparsityTracer:
        """`t.astype(dtype)`: the same array as `dtype` (see the namespace's `astype`)."""
        return tracer_namespace.astype(self, dtype)

    def reshape(self, *shape: Any, **kwargs: Any) -> SparsityTracer:
        """`t.reshape(shape)` or `t.reshape(*shape)`, as in NumPy."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return tracer_namespace.reshape(self, shape, **kwargs)

    def to_device(self, device: Any, /, *, stream: Any = None) -> SparsityTracer:
        return self


def _forward(name: str) -> Callable[..., Any]:
    """A method calling the namespace function `name` with the tracer first."""

    def method(self: SparsityTracer, *args: Any, **kwargs: Any) -> Any:
        return getattr(tracer_namespace, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


def _reflected(name: str) -> Callable[..., Any]:
    """A reflected operator (`c - t`): the namespace function `name` with the tracer second."""

    def method(self: SparsityTracer, other: Any) -> Any:
        return getattr(tracer_namespace, name)(other, self)

    method.__name__ = name
    return method


_BINARY_OPERATORS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "pow", "matmul": "matmul",
    "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
    "lshift": "bitwise_left_shift", "rshift": "bitwise_right_shift",
}  # fmt: skip
for _dunder, _name in _BINARY_OPERATORS.items():
    setattr(SparsityTracer, f"__{_dunder}__", _forward(_name))
    setattr(SparsityTracer, f"__r{_dunder}__", _reflected(_name))
_OTHER_OPERATORS = {
    "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal",
    "eq": "equal", "ne": "not_equal",
    "neg": "negative", "pos": "positive", "abs": "abs", "invert": "bitwise_invert",
}  # fmt: skip
for _dunder, _name in _OTHER_OPERATORS.items():
    setattr(SparsityTracer, f"__{_dunder}__", _forward(_name))
# NumPy/torch/JAX-style methods (`t.sum()`), so `f`s written that way trace too
for _name in ("sum", "prod", "mean", "max", "min", "std", "var", "cumsum", "ravel", "transpose"):
    setattr(SparsityTracer, _name, _forward(_name))
SparsityTracer.__hash__ = None  # type: ignore[assignment]  # `==` is elementwise


# --------------------------------------------------------------------------------------------
# Generic mechanisms: every namespace function is one of these.


def _is_tracer(value: Any) -> bool:
    return isinstance(value, SparsityTracer)


def _contains_tracer(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_contains_tracer(v) for v in value)
    return _is_tracer(value)


def _as_operand(value: Any) -> Operand:
    """A tracer or a Python number as is; anything else as a NumPy array."""
    if _is_tracer(value) or isinstance(value, (bool, int, float, complex, np.generic)):
        return value
    return np.asarray(value)


def _probe(value: Operand) -> Any:
    """A stand-in with the dtype of `value` (Python numbers stay weakly typed)."""
    if _is_tracer(value) or isinstance(value, np.ndarray):
        return np.ones((), value.dtype)
    return value


def trace_of(values: Sequence[Operand]) -> _Trace:
    return next(v._trace for v in values if _is_tracer(v))


def _result(shape: tuple[int, ...], dtype: Any, deps: sp.csr_array, trace: _Trace) -> SparsityTracer:
    """A tracer; an integer or boolean result has a zero derivative, so it depends on nothing."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.inexact):
        deps = _empty(math.prod(shape), trace.n)
    return SparsityTracer(shape, dtype, deps, trace)


def opaque(shape: tuple[int, ...], dtype: Any, trace: _Trace) -> SparsityTracer:
    """A traced value with a zero derivative whose value depends on `x` (`argmax`, `x > 0`)."""
    return SparsityTracer(shape, dtype, _empty(math.prod(shape), trace.n), trace)


def rearrange(function: Callable[..., Any], *operands: Any) -> Any:
    """Apply a structural operation: each output element copies one input element or a constant.

    `function` is the NumPy operation taking the operands positionally. It is applied to arrays of
    1-based row numbers (zeros for constants) and the rows it returns are selected, so the same
    code serves indexing, slicing, reshapes, transposes, flips, rolls, broadcasting, padding,
    concatenation, stacking and `where` with a constant condition.
    """
    operands = tuple(_as_operand(o) for o in operands)
    tracers = [o for o in operands if _is_tracer(o)]
    if not tracers:
        return function(*operands)
    trace = tracers[0]._trace
    rows, start = [], 1
    for operand in operands:
        if _is_tracer(operand):
            rows.append(np.arange(start, start + operand.size).reshape(operand.shape))
            start += operand.size
        else:
            rows.append(np.zeros(np.shape(operand), np.int64))
    index = np.asarray(function(*rows))
    dtype = _NP.result_type(*(o.dtype if _is_tracer(o) else o for o in operands))
    flat = index.reshape(-1)
    if len(tracers) == 1 and flat.size == start - 1 and np.array_equal(flat, rows[0].reshape(-1)):
        deps = tracers[0].deps  # a reshape or other identity: nothing moves
    else:
        deps = _take_rows([t.deps for t in tracers], flat, trace.n)
    return _result(index.shape, dtype, deps, trace)


def _broadcast_deps(value: SparsityTracer, shape: tuple[int, ...]) -> sp.csr_array:
    if value.shape == shape:
        return value.deps
    return rearrange(lambda rows: np.broadcast_to(rows, shape), value).deps


def _mask_rows(deps: sp.csr_array, mask: Any, shape: tuple[int, ...], n: int) -> sp.csr_array:
    """Keep the rows where `mask` (a bool, or bools broadcastable to `shape`) holds."""
    mask = np.asarray(mask, bool)
    if mask.ndim == 0:
        return deps if mask else _empty(deps.shape[0], n)
    if mask.all():
        return deps
    mask = np.broadcast_to(mask, shape).reshape(-1)
    return _take_rows([deps], np.where(mask, np.arange(1, mask.size + 1), 0), n)


@dataclass(frozen=True, slots=True)
class _Elementwise:
    """An elementwise function, described by which of its derivatives can be nonzero.

    Attributes:
        name: the array-API (or NumPy) name; NumPy's function of that name gives dtypes and
            computes all-constant calls.
        first: per argument, whether the partial derivative can be nonzero.
        second: per argument, whether the second partial derivative can be nonzero.
        cross: whether the mixed second derivative of a binary function can be nonzero.
        masks: optional refinement from constant arguments' values: returns per argument the
            elements where the first and the second derivative can be nonzero (`x * 0` is
            constant, `x ** 1` is linear).
    """

    name: str
    first: tuple[bool, ...]
    second: tuple[bool, ...]
    cross: bool = False
    masks: Callable[..., tuple[list[Any], list[Any]]] | None = None

    def __call__(self, *args: Any) -> Any:
        operands = [_as_operand(a) for a in args]
        numpy_function = getattr(_NP, self.name)
        if not any(_is_tracer(o) for o in operands):
            return numpy_function(*operands)
        trace = trace_of(operands)
        shape = np.broadcast_shapes(*(np.shape(o) for o in operands))
        with np.errstate(all="ignore"):
            dtype = np.asarray(numpy_function(*(_probe(o) for o in operands))).dtype
        first, second = self.masks(*operands) if self.masks else ([True] * len(args),) * 2
        parts = []
        for i, operand in enumerate(operands):
            if _is_tracer(operand) and self.first[i]:
                deps = _mask_rows(_broadcast_deps(operand, shape), first[i], shape, trace.n)
                parts.append((i, deps))
        if not parts:
            return opaque(shape, dtype, trace)
        if trace.track_hessian:
            for i, deps in parts:
                if self.second[i]:
                    own = _mask_rows(deps, second[i], shape, trace.n)
                    trace.add_interactions(own, own)
            if self.cross and len(parts) == 2:
                trace.add_interactions(parts[0][1], parts[1][1])
        return _result(shape, dtype, _union([deps for _, deps in parts]), trace)


def _constant_mask(value: Operand, nonzero_where: Callable[[Any], Any]) -> Any:
    """`nonzero_where(value)` for a constant, `True` (unknown, so possibly nonzero) for a tracer."""
    if _is_tracer(value):
        return True
    with np.errstate(invalid="ignore"):
        return nonzero_where(np.asarray(value))


def _multiply_masks(a: Operand, b: Operand) -> tuple[list[Any], list[Any]]:
    # a zero constant factor removes the dependency on the other factor where it is zero
    return [_constant_mask(b, lambda c: c != 0), _constant_mask(a, lambda c: c != 0)], [True, True]


def _power_masks(base: Operand, exponent: Operand) -> tuple[list[Any], list[Any]]:
    # x**0 is constant and x**1 linear; 0**y and 1**y are constant (almost everywhere)
    base_first = _constant_mask(exponent, lambda e: e != 0)
    base_second = _constant_mask(exponent, lambda e: (e != 0) & (e != 1))
    exponent_both = _constant_mask(base, lambda b: (b != 0) & (b != 1))
    return [base_first, exponent_both], [base_second, exponent_both]


def linear_map(x: SparsityTracer, matrix: sp.csr_array, shape: tuple[int, ...], dtype: Any = None) -> SparsityTracer:
    """The tracer `y` with `deps_y = matrix @ deps_x`: each output combines a set of inputs."""
    deps = matrix @ x.deps
    deps.sort_indices()
    return _result(shape, x.dtype if dtype is None else dtype, deps, x._trace)


# --------------------------------------------------------------------------------------------
# The namespace.


class _Namespace:
    """An array-API namespace: a fixed set of functions, and a clear error for any other name."""

    def __init__(self, label: str, functions: dict[str, Any]) -> None:
        self.__dict__.update(functions)
        self.__name__ = self._label = label

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (copy, pickle, array_api_compat), not `f`
            raise AttributeError(name)
        raise AttributeError(
            f"sparsity detection: `{self._label}.{name}` is not supported by the sparsity tracer. "
            f"Write `f` with supported array-API functions, or {_DENSE_HINT}."
        )

    def __repr__(self) -> str:
        return f"<array namespace {self._label}>"


_FUNCTIONS: dict[str, Any] = {}
_LINALG: dict[str, Any] = {}


def _export(*names: str, table: dict[str, Any] = _FUNCTIONS) -> Callable[[Any], Any]:
    def register(function: Any) -> Any:
        for name in names:
            table[name] = function
        return function

    return register


# Elementwise functions: (first derivative can be nonzero, second derivative can be nonzero).
_SMOOTH, _PIECEWISE_LINEAR, _PIECEWISE_CONSTANT = (True, True), (True, False), (False, False)
_UNARY = {
    _SMOOTH: "sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh arcsin arccos arctan "
    "arcsinh arccosh arctanh exp exp2 expm1 log log1p log2 log10 sqrt cbrt square reciprocal",
    _PIECEWISE_LINEAR: "abs absolute fabs negative positive conj conjugate real imag",
    _PIECEWISE_CONSTANT: "sign floor ceil trunc round rint isnan isinf isfinite signbit "
    "logical_not bitwise_invert invert",
}
for (_first, _second), _names in _UNARY.items():
    for _name in _names.split():
        _FUNCTIONS[_name] = _Elementwise(_name, (_first,), (_second,))

# Binary: (first derivatives, second derivatives, mixed second derivative)
_BINARY = {
    ((True, True), (False, False), False): "add subtract maximum minimum fmax fmin remainder fmod",
    ((True, True), (True, True), True): "atan2 arctan2 hypot logaddexp logaddexp2",
    ((True, False), (False, False), False): "copysign",
    ((False, False), (False, False), False): "floor_divide equal not_equal less less_equal greater "
    "greater_equal logical_and logical_or logical_xor bitwise_and bitwise_or bitwise_xor "
    "bitwise_left_shift bitwise_right_shift left_shift right_shift",
}
for (_firsts, _seconds, _cross), _names in _BINARY.items():
    for _name in _names.split():
        _FUNCTIONS[_name] = _Elementwise(_name, _firsts, _seconds, _cross)
_FUNCTIONS["multiply"] = _Elementwise("multiply", (True, True), (False, False), True, _multiply_masks)
_FUNCTIONS["divide"] = _FUNCTIONS["true_divide"] = _Elementwise("divide", (True, True), (False, True), True)
_FUNCTIONS["pow"] = _FUNCTIONS["power"] = _Elementwise("pow", (True, True), (True, True), True, _power_masks)
_WHERE = _Elementwise("where", (False, True, True), (False, False, False))

# Structural functions, applied by NumPy to row numbers (see `rearrange`).


def _structural(name: str) -> Callable[..., Any]:
    numpy_function = getattr(_NP, name)

    def function(x: Any, /, *args: Any, **kwargs: Any) -> Any:
        return rearrange(lambda rows: numpy_function(rows, *args, **kwargs), x)

    function.__name__ = name
    return function


def _joining(name: str) -> Callable[..., Any]:
    numpy_function = getattr(_NP, name)

    def function(arrays: Sequence[Any], /, *args: Any, **kwargs: Any) -> Any:
        return rearrange(lambda *rows: numpy_function(rows, *args, **kwargs), *arrays)

    function.__name__ = name
    return function


for _name in (
    "reshape permute_dims transpose matrix_transpose swapaxes moveaxis flip roll squeeze "
    "expand_dims broadcast_to tile repeat take take_along_axis diagonal tril triu pad ravel"
).split():
    _FUNCTIONS[_name] = _structural(_name)
for _name in ("concat", "concatenate", "stack"):
    _FUNCTIONS[_name] = _joining(_name)

# Constants and dtypes are NumPy's.
for _name in (
    "bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64 complex64 "
    "complex128 e pi inf nan newaxis finfo iinfo isdtype can_cast "
    "zeros ones empty eye arange linspace meshgrid"
).split():
    _FUNCTIONS[_name] = getattr(_NP, _name)


@_export("where")
def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    """`where(condition, x1, x2)`: selects exactly for a constant condition, else the union."""
    if _is_tracer(condition):
        return _WHERE(condition, x1, x2)
    condition = np.asarray(condition)
    return rearrange(lambda a, b: np.where(condition, a, b), x1, x2)


@_export("clip")
def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    """`clip(x, min, max)`: `minimum(maximum(x, min), max)`, each bound optional."""
    if min is not None:
        x = tracer_namespace.maximum(x, min)
    if max is not None:
        x = tracer_namespace.minimum(x, max)
    return x


@_export("astype")
def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    """`astype(x, dtype)`: the same dependencies, or none for an integer or boolean dtype."""
    if not _is_tracer(x):
        return _NP.astype(x, dtype)
    return _result(x.shape, dtype, x.deps, x._trace)


@_export("asarray")
def asarray(obj: Any, /, *, dtype: Any = None, copy: bool | None = None, device: Any = None) -> Any:
    """`asarray(obj)`: a tracer as is, nested sequences holding tracers stacked, else NumPy."""
    if isinstance(obj, (list, tuple)) and _contains_tracer(obj):
        obj = tracer_namespace.stack([asarray(item) for item in obj])
    if _is_tracer(obj):
        return obj if dtype is None else astype(obj, dtype)
    return _NP.asarray(obj, dtype=dtype)


def _like(name: str) -> Callable[..., Any]:
    numpy_function = getattr(_NP, name)

    def function(x: Any, /, *args: Any, dtype: Any = None, **kwargs: Any) -> Any:
        if _is_tracer(x):  # a constant shaped like the tracer
            dtype = x.dtype if dtype is None else dtype
            x = np.empty(x.shape, dtype)
        return numpy_function(x, *args, dtype=dtype, **kwargs)

    function.__name__ = name
    return function


for _name in ("zeros_like", "ones_like", "empty_like"):
    _FUNCTIONS[_name] = _like(_name)


@_export("full")
def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """`full(shape, fill_value)`: NumPy's, or the broadcast fill value when it is traced."""
    if _is_tracer(fill_value):
        return _broadcast_to_shape(asarray(fill_value, dtype=dtype), shape)
    return _NP.full(shape, fill_value, dtype=dtype)


@_export("full_like")
def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """`full_like(x, fill_value)`: `full(x.shape, fill_value)` with `x`'s dtype by default."""
    return full(np.shape(x), fill_value, dtype=x.dtype if dtype is None else dtype)


def _broadcast_to_shape(x: Any, shape: Any) -> Any:
    """`broadcast_to(x, shape)` with an int or any sequence as the shape."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return tracer_namespace.broadcast_to(x, shape)


@_export("broadcast_arrays")
def broadcast_arrays(*arrays: Any) -> list[Any]:
    """`broadcast_arrays(*arrays)`: each array broadcast to the common shape."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    return [_broadcast_to_shape(a, shape) for a in arrays]


@_export("unstack")
def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    """`unstack(x, axis=0)`: the slices of `x` along `axis`."""
    axis = axis % x.ndim
    return tuple(x[(slice(None),) * axis + (i,)] for i in range(x.shape[axis]))


@_export("result_type")
def result_type(*arrays_and_dtypes: Any) -> Any:
    """`result_type(*arrays_and_dtypes)`: NumPy's promotion, tracers counting by their dtype."""
    return _NP.result_type(*(a.dtype if _is_tracer(a) else a for a in arrays_and_dtypes))


# Reductions.


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim for a in axes))


def _reduction(name: str, product: bool = False) -> Callable[..., Any]:
    """A reduction: each output combines the inputs of its group, `R @ deps` with a 0/1 `R`.

    A sum, mean, max or min adds no second-order term (max and min are piecewise linear); a
    product adds the cross terms between distinct elements of a group.
    """
    numpy_function = getattr(_NP, name)

    def function(x: Any, /, *, axis: Any = None, keepdims: bool = False, **kwargs: Any) -> Any:
        if not _is_tracer(x):
            return numpy_function(x, axis=axis, keepdims=keepdims, **kwargs)
        axes = _axes(axis, x.ndim)
        kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        shape = kept if keepdims else tuple(s for i, s in enumerate(x.shape) if i not in axes)
        dtype = numpy_function(np.ones((1,) * x.ndim, x.dtype), axis=axis, **kwargs).dtype
        groups = math.prod(kept)
        group = np.broadcast_to(np.arange(groups).reshape(kept), x.shape).reshape(-1)
        matrix = sp.csr_array((np.ones(x.size, bool), (group, np.arange(x.size))), shape=(groups, x.size))
        if product and x._trace.track_hessian:
            x._trace.add_distinct_pairs(matrix, x.deps)
        return linear_map(x, matrix, shape, dtype)

    function.__name__ = name
    return function


for _name in ("sum", "mean", "max", "min", "amax", "amin", "nansum", "nanmax", "nanmin"):
    _FUNCTIONS[_name] = _reduction(_name)
_FUNCTIONS["prod"] = _reduction("prod", product=True)


def _zero_derivative(name: str) -> Callable[..., Any]:
    """A function of `x` whose derivative is zero (`argmax`, `any`, `argsort`): values unknown."""
    numpy_function = getattr(_NP, name)

    def function(x: Any, /, *args: Any, **kwargs: Any) -> Any:
        if not _is_tracer(x):
            return numpy_function(x, *args, **kwargs)
        like = numpy_function(np.zeros(x.shape, x.dtype), *args, **kwargs)
        return opaque(np.shape(like), np.asarray(like).dtype, x._trace)

    function.__name__ = name
    return function


for _name in ("argmax", "argmin", "argsort", "any", "all", "count_nonzero"):
    _FUNCTIONS[_name] = _zero_derivative(_name)


@_export("var")
def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """`var(x, axis)`: the mean squared deviation, traced as such (its pattern is the same)."""
    ns = tracer_namespace
    deviation = x - ns.mean(x, axis=axis, keepdims=True)
    return ns.mean(deviation * deviation, axis=axis, keepdims=keepdims)


@_export("std")
def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """`std(x, axis)`: `sqrt(var(x, axis))`."""
    return tracer_namespace.sqrt(var(x, axis=axis, keepdims=keepdims))


def _along_axis(x: SparsityTracer, axis: int, block: np.ndarray, new_length: int) -> SparsityTracer:
    """Apply a linear `block` (new length x old length) along one axis of `x`."""
    axis %= x.ndim
    shape = x.shape[:axis] + (new_length,) + x.shape[axis + 1 :]
    return linear_map(x, _axis_operator(x.shape, axis, block), shape)


@_export("cumulative_sum", "cumsum")
def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    """`cumulative_sum(x, axis)`: element `i` depends on elements `0..i` along `axis`.

    `axis=None` flattens `x` first, as NumPy's `cumsum` does.
    """
    if not _is_tracer(x):
        return _NP.cumulative_sum(
            _NP.reshape(x, (-1,)) if axis is None else x,
            axis=0 if axis is None else axis,
            dtype=dtype,
            include_initial=include_initial,
        )
    if axis is None:
        x, axis = tracer_namespace.reshape(x, (-1,)), 0
    length = x.shape[axis]
    block = np.tri(length + include_initial, length, -int(include_initial), dtype=bool)
    result = _along_axis(x, axis, block, length + include_initial)
    return result if dtype is None else astype(result, dtype)


@_export("sort")
def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """`sort(x, axis)`: every output along `axis` may be any input (piecewise linear)."""
    if not _is_tracer(x):
        return _NP.sort(x, axis=axis, descending=descending, stable=stable)
    length = x.shape[axis]
    return _along_axis(x, axis, np.ones((length, length), bool), length)


# Products.


def _matrix_pattern(constant: Any) -> sp.csr_array:
    return _canonical(sp.csr_array(np.asarray(constant) != 0))


def _matmul_shape(shape1: tuple[int, ...], shape2: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of `x1 @ x2`, without computing it (the array-API rules for 1-D operands)."""
    a = shape1 if len(shape1) > 1 else (1, *shape1)
    b = shape2 if len(shape2) > 1 else (*shape2, 1)
    if a[-1] != b[-2]:
        raise ValueError(f"matmul: shapes {shape1} and {shape2} do not align ({a[-1]} != {b[-2]})")
    rows = (a[-2],) if len(shape1) > 1 else ()
    columns = (b[-1],) if len(shape2) > 1 else ()
    return np.broadcast_shapes(a[:-2], b[:-2]) + rows + columns


@_export("matmul")
def matmul(x1: Any, x2: Any, /) -> Any:
    """`matmul(x1, x2)`: one sparse product for a 2-D constant factor, else multiply and sum.

    With a constant `C` the product is linear and its pattern is `C`'s: zeros of `C` drop
    dependencies. Between tracers each product contributes its cross terms to the Hessian.
    """
    x1, x2 = _as_operand(x1), _as_operand(x2)
    if not (_is_tracer(x1) or _is_tracer(x2)):
        return _NP.matmul(x1, x2)
    shape = _matmul_shape(x1.shape, x2.shape)
    with np.errstate(all="ignore"):
        dtype = np.matmul(np.ones((1, 1), x1.dtype), np.ones((1, 1), x2.dtype)).dtype
    identity = functools.partial(sp.eye_array, dtype=bool)
    if not _is_tracer(x1) and x1.ndim == 2:  # out[..., i, j] = sum_k C[i, k] X[..., k, j]
        columns = x2.shape[-1] if x2.ndim > 1 else 1
        batch = x2.size // (x1.shape[1] * columns)
        operator = sp.kron(identity(batch), sp.kron(_matrix_pattern(x1), identity(columns)))
        return linear_map(x2, _canonical(operator), shape, dtype)
    if not _is_tracer(x2) and x2.ndim <= 2:  # out[..., i, j] = sum_k X[..., i, k] C[k, j]
        rows = x1.size // x2.shape[0]
        pattern = _matrix_pattern(x2.reshape(x2.shape[0], -1)).T
        return linear_map(x1, _canonical(sp.kron(identity(rows), pattern)), shape, dtype)
    # both traced, or a batched constant: the definition, sum_k x1[..., i, k] * x2[..., k, j]
    ns = tracer_namespace
    a = ns.expand_dims(x1, axis=0) if x1.ndim == 1 else x1
    b = ns.expand_dims(x2, axis=-1) if x2.ndim == 1 else x2
    product = ns.sum(ns.expand_dims(a, axis=-1) * ns.expand_dims(b, axis=-3), axis=-2)
    return ns.reshape(product, shape)


@_export("tensordot")
def tensordot(x1: Any, x2: Any, /, *, axes: int | tuple[Sequence[int], Sequence[int]] = 2) -> Any:
    """`tensordot(x1, x2, axes)`: contracted axes moved together, then one `matmul`."""
    ns = tracer_namespace
    shape1, shape2 = np.shape(x1), np.shape(x2)
    if isinstance(axes, int):
        axes1, axes2 = list(range(len(shape1) - axes, len(shape1))), list(range(axes))
    else:
        axes1 = [a % len(shape1) for a in axes[0]]
        axes2 = [a % len(shape2) for a in axes[1]]
    free1 = [a for a in range(len(shape1)) if a not in axes1]
    free2 = [a for a in range(len(shape2)) if a not in axes2]
    contracted = math.prod(shape1[a] for a in axes1)
    left = ns.reshape(ns.permute_dims(x1, tuple(free1 + axes1)), (-1, contracted))
    right = ns.reshape(ns.permute_dims(x2, tuple(axes2 + free2)), (contracted, -1))
    shape = tuple(shape1[a] for a in free1) + tuple(shape2[a] for a in free2)
    return ns.reshape(ns.matmul(left, right), shape)


@_export("vecdot")
def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """`vecdot(x1, x2, axis)`: `sum(x1 * x2, axis)` (real inputs)."""
    return tracer_namespace.sum(tracer_namespace.multiply(x1, x2), axis=axis)


@_export("outer")
def outer(x1: Any, x2: Any, /) -> Any:
    """`outer(x1, x2)`: `x1[:, None] * x2[None, :]` for 1-D inputs."""
    ns = tracer_namespace
    return ns.multiply(ns.expand_dims(x1, axis=1), ns.expand_dims(x2, axis=0))


@_export("trace")
def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """`trace(x, offset)`: the sum of the diagonal of the last two axes."""
    ns = tracer_namespace
    return ns.sum(ns.diagonal(x, offset, axis1=-2, axis2=-1), axis=-1, dtype=dtype)


def vector_norm(
    x: Any,
    /,
    *,
    axis: Any = None,
    keepdims: bool = False,
    ord: float = 2,  # noqa: A002
) -> Any:
    """`linalg.vector_norm(x, axis, ord)`: `sum(abs(x) ** ord) ** (1 / ord)`, or max/min/count."""
    ns = tracer_namespace
    if ord == math.inf:
        return ns.max(ns.abs(x), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return ns.min(ns.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        return ns.count_nonzero(x, axis=axis, keepdims=keepdims)
    return ns.sum(ns.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1 / ord)


_LINALG.update(
    matmul=matmul, tensordot=tensordot, vecdot=vecdot, outer=outer, trace=trace,
    vector_norm=vector_norm, diagonal=_FUNCTIONS["diagonal"],
    matrix_transpose=_FUNCTIONS["matrix_transpose"],
)  # fmt: skip
_FUNCTIONS["linalg"] = _Namespace("tracer_namespace.linalg", _LINALG)
_FUNCTIONS["__array_api_version__"] = "2024.12"
tracer_namespace: _Namespace = _Namespace("tracer_namespace", _FUNCTIONS)
"""The array-API namespace of `SparsityTracer` (what `ad.namespace(tracer)` returns)."""

register_namespace(SparsityTracer, lambda _: tracer_namespace)


# --------------------------------------------------------------------------------------------
# The detector.


def _input_tracer(x: Any, trace: _Trace) -> SparsityTracer:
    """The tracer standing for `x`: element `k` depends on input `k` alone."""
    try:  # NumPy and JAX dtypes are NumPy's; torch's (`torch.float32`) are named like them
        dtype = np.dtype(getattr(x, "dtype", np.result_type(x)))
    except TypeError:
        dtype = np.dtype(str(x.dtype).rsplit(".", 1)[-1])
    if not np.issubdtype(dtype, np.inexact):  # derivatives are taken in floating point
        dtype = np.dtype(np.float64)
    return SparsityTracer(_shape(x), dtype, sp.eye_array(trace.n, format="csr", dtype=bool), trace)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _run(
    operator: str, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...], track_hessian: bool
) -> tuple[Any, _Trace]:
    check_contexts(operator, contexts)
    trace = _Trace(math.prod(_shape(x)), track_hessian)
    y = f(_input_tracer(x, trace), *(_context_value(c.value) for c in contexts))
    return y, trace


def _context_value(value: Any) -> Any:
    """A context's value with arrays of other libraries as NumPy arrays (the tracer's kind)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_context_value(v) for v in value)
    if isinstance(value, dict):
        return {k: _context_value(v) for k, v in value.items()}
    if hasattr(value, "__array__") and not isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    return value


def _output_deps(operator: str, y: Any, trace: _Trace) -> sp.csr_array:
    if _is_tracer(y):
        if y._trace is not trace:
            raise ValueError(
                f"{operator}: `f` returned a tracer from another call (kept from an earlier "
                "trace, e.g. in a global or a cache); return values computed from `x`."
            )
        return y.deps
    try:
        size = np.size(np.asarray(y))
    except Exception as error:
        raise TypeError(f"{operator}: `f` must return one array; it returned a {type(y).__name__}.") from error
    return _empty(size, trace.n)  # `f` does not depend on `x`


@dataclass(frozen=True, slots=True)
class TracerSparsityDetector:
    """`TracerSparsityDetector()`: global patterns from running `f` once on `SparsityTracer`s.

    The pattern holds for every value of `x` (for the constants and `Constant` contexts given),
    and is found without evaluating any derivative. `f` must be written with the array API
    (`xp = ad.namespace(x)`); Python branches on traced values are impossible (use `xp.where`).
    See the module docstring of `anydiff.sparse.tracer` for how dependencies are represented.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> def f(x):
        ...     xp = ad.namespace(x)
        ...     return xp.sum(x[1:] * x[:-1]) + xp.sum(xp.sin(x))
        >>> ad.hessian_sparsity(f, np.ones(3), detector=ad.TracerSparsityDetector()).toarray()
        array([[ True,  True, False],
               [ True,  True,  True],
               [False,  True,  True]])
    """

    def jacobian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`jacobian_sparsity(f, x, *contexts)`: the `(y.size, x.size)` boolean CSR pattern."""
        y, trace = _run("jacobian_sparsity", f, x, contexts, track_hessian=False)
        return _output_deps("jacobian_sparsity", y, trace)

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`hessian_sparsity(f, x, *contexts)`: the `(x.size, x.size)` symmetric boolean pattern.

        `f` must return a single element.
        """
        y, trace = _run("hessian_sparsity", f, x, contexts, track_hessian=True)
        deps = _output_deps("hessian_sparsity", y, trace)
        if deps.shape[0] != 1:
            raise ValueError(
                "hessian_sparsity: `f` must return a scalar (one element); it returned shape "
                f"{np.shape(y)}. Use `jacobian_sparsity` for vector outputs."
            )
        return trace.hessian(deps)
