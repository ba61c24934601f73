"""Symbolic backends (SymPy, CasADi, PyTensor): trace `f` once, differentiate the graph, compile it.

At prepare time `f` runs once on symbolic arrays (what `ad.namespace` hands out for them), the
derivative expressions of the operator are formed, and one function computing the value and the
derivatives is compiled; every prepared call then runs that function on NumPy arrays. Two pieces
are shared by the three backends:

- `SymbolicImpl`: a native route for every operator, written against a few library hooks
  (`variable`, `expression`, `symbolic_gradient`, `symbolic_jacobian`, `symbolic_jvp`,
  `symbolic_vjp`, `symbolic_hessian`, `compile_function`). Floating-point
  context values (`Constant` arrays and floats) become extra symbolic inputs, so one prep serves
  every value of them; other context values (integers, strings, functions) are fixed into the
  graph at prepare time and checked on each call.
- `SymbolicArray`: an N-d array of scalar expressions (a NumPy object array) with an array-API
  namespace, parametrised by a `ScalarLibrary` (SymPy expressions, CasADi `SX`). NumPy does the
  structural work (indexing, reshapes, concatenation, broadcasting); the library supplies the
  scalar functions. PyTensor's variables are N-d arrays already: it only maps names.

Tracing cannot follow Python control flow on the values of `x` (`if x[0] > 0:`): `bool`, `float`
or `int` of a symbolic value raises `FunctionNotDifferentiableError` suggesting `xp.where` or a
numeric backend.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import array_api_compat.numpy as _NP  # array-API signatures over NumPy, also on object arrays
import numpy as np

from anydiff.extend import (
    DERIVATIVE,
    GRADIENT,
    HESSIAN,
    HVP,
    JACOBIAN,
    PULLBACK,
    PUSHFORWARD,
    SECOND_DERIVATIVE,
    AnyDiffError,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    OutputSpec,
    PreparationMismatchError,
    UnsupportedError,
    array_kind,
    register_namespace,
)

__all__ = [
    "ScalarLibrary",
    "SymbolicArray",
    "SymbolicImpl",
    "SymbolicNamespace",
    "bounds",
    "elements",
    "symbolic_array",
    "unsupported",
    "untraceable",
]

_NUMERIC_HINT = "or use a numeric backend such as `ad.AutoJAX()`, `ad.AutoTorch()` or `ad.AutoFiniteDiff()`"


class _Untraceable(FunctionNotDifferentiableError):
    """`f` needs the value of a symbolic array (the trace adds the operator to the message)."""


def untraceable(label: str, what: str) -> FunctionNotDifferentiableError:
    """The error for `f` needing the value of a symbolic array (data-dependent control flow)."""
    return _Untraceable(
        f"`f` needs the value of a symbolic array ({what}), but {label} runs `f` once, at prepare "
        "time, on symbols standing for `x` and for floating-point `Constant` values, so `f`'s "
        "Python control flow cannot depend on their values (`if x[0] > 0:`, `bool(...)`, "
        "`float(...)`, `int(...)`, NumPy functions that need numbers). Write branches as "
        f"`xp.where(condition, a, b)` with `xp = ad.namespace(x)`, {_NUMERIC_HINT}."
    )


class _UnsupportedOperation(UnsupportedError, AttributeError):
    """A namespace function symbolic arrays do not have (an `AttributeError`, so `hasattr` works)."""


def unsupported(label: str, what: str) -> UnsupportedError:
    """The error for an operation outside the namespace of a symbolic backend's arrays."""
    return _UnsupportedOperation(
        f"`{what}` is not supported on the symbolic arrays of {label}. Write `f` with the "
        "array-API functions of `xp = ad.namespace(x)` (elementwise math, reductions, indexing, "
        f"`concat`, `reshape`, `matmul`, `where`, ...), {_NUMERIC_HINT}."
    )


# --------------------------------------------------------------------------------------------
# The scalar-expression library behind a SymbolicArray.

# Array-API elementwise functions (and NumPy's aliases) by arity.
_UNARY = (
    "abs sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh exp expm1 log log1p log2 "
    "log10 sqrt square reciprocal negative positive sign floor ceil trunc logical_not erf"
).split()
_BINARY = (
    "add subtract multiply divide pow atan2 hypot maximum minimum logaddexp floor_divide "
    "remainder greater greater_equal less less_equal equal not_equal logical_and logical_or "
    "logical_xor"
).split()
_ALIASES = {
    "absolute": "abs", "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
    "arccosh": "acosh", "arctanh": "atanh", "arctan2": "atan2", "power": "pow",
    "true_divide": "divide", "fmax": "maximum", "fmin": "minimum",
}  # fmt: skip
_BOOLEAN = {
    "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not",
}  # fmt: skip
# Integer operands give integer results only for these (`sin(1)` is a float).
_INTEGER_PRESERVING = {
    "abs", "square", "negative", "positive", "sign", "add", "subtract", "multiply", "maximum",
    "minimum", "floor_divide", "remainder", "pow", "floor", "ceil", "trunc",
}  # fmt: skip
# Functions whose result depends on the values of their argument, not only on its expression.
_DATA_DEPENDENT = (
    "argmax argmin argsort sort nonzero searchsorted unique_all unique_counts unique_inverse "
    "unique_values isnan isinf isfinite any all count_nonzero"
).split()


@dataclass(frozen=True, slots=True)
class ScalarLibrary:
    """The scalar-expression library a `SymbolicArray` computes with.

    Attributes:
        label: the backend as shown in messages, e.g. `"AutoSymPy()"`.
        functions: elementwise functions of scalar expressions (and Python numbers) by array-API
            name. The library gives the ones it has natively (at least the trigonometric,
            hyperbolic, `exp`, `log`, `sqrt`, `abs`, `sign`, `floor`, `ceil` and the logical
            ones); the others are built from them.
        where: `where(condition, a, b)` for a symbolic `condition`.
        sum: the sum of a list of scalars (one n-ary sum is much cheaper than n-1 additions in
            SymPy).
    """

    label: str
    functions: Mapping[str, Callable[..., Any]]
    where: Callable[[Any, Any, Any], Any]
    sum: Callable[[list[Any]], Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.bool_))


def _elementwise_table(library: ScalarLibrary) -> dict[str, Callable[..., Any]]:
    """Every elementwise function by name: the library's own, the rest composed from them."""
    table = dict(library.functions)

    def where(condition: Any, a: Any, b: Any) -> Any:
        if isinstance(condition, (bool, np.bool_)):  # a constant condition (from constants)
            return a if condition else b
        return library.where(condition, a, b)

    def boolean(function: Callable[..., Any], python: Callable[..., bool]) -> Callable[..., Any]:
        def combine(*args: Any) -> Any:
            if all(isinstance(a, (bool, np.bool_)) for a in args):
                return python(*args)
            return function(*args)

        return combine

    log, exp, sqrt, floor, ceil = (table[n] for n in ("log", "exp", "sqrt", "floor", "ceil"))
    defaults: dict[str, Callable[..., Any]] = {
        "add": operator.add, "subtract": operator.sub, "multiply": operator.mul,
        "divide": operator.truediv, "pow": operator.pow, "negative": operator.neg,
        "positive": operator.pos, "greater": operator.gt, "greater_equal": operator.ge,
        "less": operator.lt, "less_equal": operator.le, "equal": operator.eq,
        "not_equal": operator.ne, "square": lambda a: a * a, "reciprocal": lambda a: 1.0 / a,
        "log2": lambda a: log(a) / math.log(2.0), "log10": lambda a: log(a) / math.log(10.0),
        "expm1": lambda a: exp(a) - 1.0, "log1p": lambda a: log(1.0 + a),
        "hypot": lambda a, b: sqrt(a * a + b * b),
        "maximum": lambda a, b: where(a >= b, a, b), "minimum": lambda a, b: where(a <= b, a, b),
        "trunc": lambda a: where(a >= 0, floor(a), ceil(a)),
        "floor_divide": lambda a, b: floor(a / b), "remainder": lambda a, b: a - b * floor(a / b),
    }  # fmt: skip
    for name, function in defaults.items():
        table.setdefault(name, function)
    maximum, log1p, absolute = table["maximum"], table["log1p"], table["abs"]
    table.setdefault("logaddexp", lambda a, b: maximum(a, b) + log1p(exp(-absolute(a - b))))
    table["logical_and"] = boolean(table["logical_and"], lambda a, b: bool(a and b))
    table["logical_or"] = boolean(table["logical_or"], lambda a, b: bool(a or b))
    table["logical_not"] = boolean(table["logical_not"], lambda a: not a)
    table.setdefault(
        "logical_xor",
        lambda a, b: table["logical_or"](
            table["logical_and"](a, table["logical_not"](b)), table["logical_and"](table["logical_not"](a), b)
        ),
    )
    table["where"] = where
    return table


# --------------------------------------------------------------------------------------------
# The symbolic array.


class SymbolicArray:
    """`SymbolicArray`: an array of scalar expressions, what `f` receives from symbolic backends.

    `ad.AutoSymPy()` and `ad.AutoCasADi()` call `f` once, at prepare time, on one of these in
    place of `x`; write `f` with the array API (`xp = ad.namespace(x)`) and it works unchanged.
    Python control flow on its values (`if x[0] > 0:`) cannot be traced: use `xp.where`.

    Attributes:
        data: NumPy object array holding one scalar expression (or Python number) per element.
        dtype: the NumPy dtype the array stands for.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> def f(x):
        ...     xp = ad.namespace(x)
        ...     return xp.sum(xp.where(x > 0, x**2, -x))
        >>> ad.gradient(f, ad.AutoSymPy(), np.array([-1.0, 3.0]))
        array([-1.,  6.])
    """

    __slots__ = ("data", "dtype", "_xp")
    # NumPy operators (`A @ x`, `c * x`) defer to this class's `__array_ufunc__`
    __array_priority__ = 1000

    def __init__(self, data: np.ndarray, dtype: Any, xp: SymbolicNamespace) -> None:
        self.data = data
        self.dtype = np.dtype(dtype)
        self._xp = xp

    shape = property(lambda self: self.data.shape, doc="The array's shape.")
    ndim = property(lambda self: self.data.ndim, doc="Number of axes.")
    size = property(lambda self: self.data.size, doc="Number of elements.")
    device = property(lambda self: "cpu", doc="Always `'cpu'`.")
    T = property(lambda self: self._xp.permute_dims(self, tuple(range(self.ndim))[::-1]))
    mT = property(lambda self: self._xp.matrix_transpose(self))

    def __repr__(self) -> str:
        return f"SymbolicArray(shape={self.shape}, dtype={self.dtype}, {self._xp.library.label})"

    def __array_namespace__(self, api_version: str | None = None) -> SymbolicNamespace:
        return self._xp

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self) -> Iterator[SymbolicArray]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, key: Any) -> SymbolicArray:
        return self._xp._wrap(self.data[self._xp._index(key)], self.dtype)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.data[self._xp._index(key)] = self._xp._data(value)

    def _concrete(self, *args: Any, **kwargs: Any) -> Any:
        raise untraceable(self._xp.library.label, "`bool`, `float`, `int` or a NumPy conversion of it")

    __bool__ = __float__ = __int__ = __index__ = __complex__ = _concrete
    item = tolist = __array__ = __dlpack__ = _concrete

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # NumPy ufuncs (`np.sin(x)`, and `A @ x` / `c * x` with NumPy operands) use the namespace
        name = _ALIASES.get(ufunc.__name__, ufunc.__name__)
        if method != "__call__" or kwargs or name not in self._xp._elementwise and name != "matmul":
            return self._xp._missing(f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
        return getattr(self._xp, name)(*inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        function = getattr(self._xp, func.__name__, None)  # an unsupported name is an AttributeError
        if function is None:
            return self._xp._missing(f"numpy.{func.__name__}")
        return function(*args, **kwargs)

    def astype(self, dtype: Any, /, *, copy: bool = True) -> SymbolicArray:
        """`x.astype(dtype)`: see the namespace's `astype`."""
        return self._xp.astype(self, dtype)

    def reshape(self, *shape: Any, **kwargs: Any) -> SymbolicArray:
        """`x.reshape(shape)` or `x.reshape(*shape)`, as in NumPy."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return self._xp.reshape(self, shape, **kwargs)

    def ravel(self) -> SymbolicArray:
        """`x.ravel()`: the elements as a 1-d array, in C order."""
        return self._xp.reshape(self, (-1,))

    flatten = ravel

    def copy(self) -> SymbolicArray:
        return self._xp._wrap(self.data.copy(), self.dtype)

    def to_device(self, device: Any, /, *, stream: Any = None) -> SymbolicArray:
        return self


def _forward(name: str) -> Callable[..., Any]:
    """A method calling the namespace function `name` with the array first."""

    def method(self: SymbolicArray, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._xp, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


def _reflected(name: str) -> Callable[..., Any]:
    """A reflected operator (`c - x`): the namespace function `name` with the array second."""

    def method(self: SymbolicArray, other: Any) -> Any:
        return getattr(self._xp, name)(other, self)

    method.__name__ = name
    return method


_BINARY_OPERATORS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "pow", "matmul": "matmul",
    "and": "logical_and", "or": "logical_or", "xor": "logical_xor",
}  # fmt: skip
for _dunder, _name in _BINARY_OPERATORS.items():
    setattr(SymbolicArray, f"__{_dunder}__", _forward(_name))
    setattr(SymbolicArray, f"__r{_dunder}__", _reflected(_name))
_OTHER_OPERATORS = {
    "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal", "eq": "equal",
    "ne": "not_equal", "neg": "negative", "pos": "positive", "abs": "abs", "invert": "logical_not",
}  # fmt: skip
for _dunder, _name in _OTHER_OPERATORS.items():
    setattr(SymbolicArray, f"__{_dunder}__", _forward(_name))
# NumPy/torch/JAX-style methods (`x.sum()`), so `f`s written that way trace too
for _name in ("sum", "prod", "mean", "max", "min", "std", "var"):
    setattr(SymbolicArray, _name, _forward(_name))
SymbolicArray.__hash__ = None  # type: ignore[assignment]  # `==` is elementwise


# --------------------------------------------------------------------------------------------
# Its array-API namespace.


def _normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(a % ndim if ndim else a for a in axes))


class _Linalg:
    """`xp.linalg` of symbolic arrays: the products and norms, no factorisations."""

    def __init__(self, xp: SymbolicNamespace) -> None:
        self._xp = xp
        for name in ("matmul", "matrix_transpose", "outer", "tensordot", "trace", "vecdot", "diagonal"):
            setattr(self, name, getattr(xp, name))

    def vector_norm(self, x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
        xp = self._xp
        if ord == 2:
            return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdims))
        if ord == math.inf:
            return xp.max(xp.abs(x), axis=axis, keepdims=keepdims)
        if ord == 1:
            return xp.sum(xp.abs(x), axis=axis, keepdims=keepdims)
        total: Any = xp.sum(xp.abs(x) ** ord, axis=axis, keepdims=keepdims)
        return total ** (1.0 / ord)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._xp._missing(f"xp.linalg.{name}")


class _TooBig(Exception):
    """The trace of `f` passed the `max_program_size` it was measured against."""


class _Budget:
    """Counts the elements of the arrays `f`'s operations produce, while measuring a trace."""

    __slots__ = ("limit", "measure", "spent")

    def __init__(self, limit: int, measure: Callable[[Any], int] | None) -> None:
        self.limit, self.measure, self.spent = limit, measure, 0

    def spend(self, data: np.ndarray) -> None:
        """Count one operation's result: its elements, or the largest `measure` of an element."""
        if self.measure is None:
            self.spent += data.size
        else:
            self.spent = max(self.spent, max((self.measure(e) for e in data.flat), default=0))
        if self.spent > self.limit:
            raise _TooBig


_BUDGET = threading.local()  # `.active`: the `_Budget` of a measurement in this thread


class SymbolicNamespace:
    """The array-API namespace of `SymbolicArray`s over one `ScalarLibrary`.

    Covers elementwise math and comparisons, arithmetic with numbers and NumPy arrays,
    broadcasting, reductions (`sum`, `prod`, `mean`, `max`, `min`, `var`, `std`,
    `cumulative_sum`), indexing and slicing, `concat`/`stack`, reshapes and transposes, `matmul`
    (with constants and between symbolic arrays), `where`, `clip`, `astype` and the creation
    functions. Any other name raises `ad.UnsupportedError` naming the function and the backend.
    """

    float32, float64, int32, int64 = np.float32, np.float64, np.int32, np.int64
    e, pi, inf, nan, newaxis = math.e, math.pi, math.inf, math.nan, None

    def __init__(self, library: ScalarLibrary) -> None:
        self.library = library
        self.__name__ = f"symbolic namespace of {library.label}"
        table = _elementwise_table(library)
        self._elementwise = {
            name: np.frompyfunc(table[name], 1 if name in _UNARY else 2, 1)
            for name in (*_UNARY, *_BINARY)
            if name in table
        }
        self._where = np.frompyfunc(table["where"], 3, 1)
        self._maximum, self._minimum = table["maximum"], table["minimum"]
        for name in self._elementwise:
            setattr(self, name, functools.partial(self._apply, name))
        for alias, name in _ALIASES.items():
            setattr(self, alias, getattr(self, name))
        for name in _DATA_DEPENDENT:
            setattr(self, name, functools.partial(self._data_dependent, name))
        self.linalg = _Linalg(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (copy, pickle, array_api_compat), not `f`
            raise AttributeError(name)
        return self._missing(f"xp.{name}")

    def __repr__(self) -> str:
        return f"<array namespace {self.__name__}>"

    def _missing(self, what: str) -> Any:
        raise unsupported(self.library.label, what)

    # -- conversions ---------------------------------------------------------------------------

    def _wrap(self, value: Any, dtype: Any) -> SymbolicArray:
        if not isinstance(value, np.ndarray):  # NumPy returns the element of a 0-d result
            box = np.empty((), dtype=object)
            box[()] = value
            value = box
        budget = getattr(_BUDGET, "active", None)
        if budget is not None:
            budget.spend(value)
        return SymbolicArray(value, dtype, self)

    def _data(self, value: Any) -> Any:
        """An operand as an object array (or a Python number) for NumPy to combine."""
        if isinstance(value, SymbolicArray):
            return value.data
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (np.ndarray, np.generic)):
            return np.asarray(value).astype(object)
        if isinstance(value, (list, tuple)):
            return self.asarray(value).data
        raise TypeError(
            f"{self.library.label}: cannot combine a symbolic array with a {type(value).__name__}; "
            "use NumPy arrays, Python numbers or arrays from `xp = ad.namespace(x)`."
        )

    @staticmethod
    def _dtype(value: Any) -> Any:
        if isinstance(value, (SymbolicArray, np.ndarray, np.generic)):
            return value.dtype
        if isinstance(value, (list, tuple)):
            return np.float64
        return value  # a Python number: weak, it takes the dtype of the arrays it meets

    def _index(self, key: Any) -> Any:
        """An indexing key with symbolic arrays of constants (from `xp.arange`) made numeric."""
        if isinstance(key, tuple):
            return tuple(self._index(k) for k in key)
        if isinstance(key, SymbolicArray):
            if not all(_is_number(e) for e in key.data.flat):
                raise untraceable(self.library.label, "it is used as an index or mask")
            return np.asarray(key.data.tolist(), dtype=key.dtype)
        return key

    # -- elementwise ---------------------------------------------------------------------------

    def _apply(self, name: str, *args: Any) -> SymbolicArray:
        dtype: np.dtype
        if name in _BOOLEAN:
            dtype = np.dtype(bool)
        else:
            dtype = np.result_type(*(self._dtype(a) for a in args))
            if name not in _INTEGER_PRESERVING and not np.issubdtype(dtype, np.inexact):
                dtype = np.dtype(np.float64)
        return self._wrap(self._elementwise[name](*(self._data(a) for a in args)), dtype)

    def where(self, condition: Any, x1: Any, x2: Any, /) -> SymbolicArray:
        dtype = np.result_type(self._dtype(x1), self._dtype(x2))
        return self._wrap(self._where(self._data(condition), self._data(x1), self._data(x2)), dtype)

    def clip(self, x: Any, /, min: Any = None, max: Any = None) -> SymbolicArray:
        if min is not None:
            x = self.maximum(x, min)
        if max is not None:
            x = self.minimum(x, max)
        return x

    def astype(self, x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> SymbolicArray:
        """Floating-point casts only relabel the dtype (expressions have no precision)."""
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.inexact):
            return SymbolicArray(self._data(x), dtype, self)
        if all(_is_number(e) for e in self._data(x).flat):
            return self.asarray(np.asarray(self._data(x).tolist()).astype(dtype))
        raise untraceable(self.library.label, f"it is cast to {dtype}")

    def _data_dependent(self, name: str, x: Any, /, *args: Any, **kwargs: Any) -> Any:
        data = self._data(x)
        if isinstance(data, np.ndarray) and not all(_is_number(e) for e in data.flat):
            raise untraceable(self.library.label, f"`xp.{name}` of it depends on its values")
        return self.asarray(
            getattr(_NP, name)(np.asarray(data.tolist() if isinstance(data, np.ndarray) else data), *args, **kwargs)
        )

    # -- creation ------------------------------------------------------------------------------

    def asarray(self, obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> SymbolicArray:
        if isinstance(obj, SymbolicArray):
            return obj if dtype is None else self.astype(obj, dtype)
        if isinstance(obj, (list, tuple)) and _contains_symbolic(obj):
            parts = [self.asarray(o) for o in obj]
            result = self.stack(parts) if parts else self.asarray(np.empty(0))
            return result if dtype is None else self.astype(result, dtype)
        values = np.asarray(obj, dtype=dtype)
        return SymbolicArray(values.astype(object), values.dtype, self)

    def _creation(
        self, function: Callable[..., np.ndarray], *args: Any, dtype: Any = None, **kwargs: Any
    ) -> SymbolicArray:
        kwargs.pop("device", None)
        return self.asarray(function(*args, dtype=dtype, **kwargs))

    def zeros(self, shape: Any, *, dtype: Any = None, device: Any = None) -> SymbolicArray:
        return self._creation(np.zeros, shape, dtype=dtype or np.float64)

    empty = zeros

    def ones(self, shape: Any, *, dtype: Any = None, device: Any = None) -> SymbolicArray:
        return self._creation(np.ones, shape, dtype=dtype or np.float64)

    def full(self, shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None) -> SymbolicArray:
        if isinstance(fill_value, SymbolicArray):
            return self.broadcast_to(fill_value, shape if isinstance(shape, tuple) else (shape,))
        return self._creation(np.full, shape, fill_value, dtype=dtype)

    def eye(
        self, n_rows: int, n_cols: int | None = None, /, *, k: int = 0, dtype: Any = None, device: Any = None
    ) -> SymbolicArray:
        return self._creation(np.eye, n_rows, n_cols, k=k, dtype=dtype or np.float64)

    def arange(
        self, start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None
    ) -> SymbolicArray:
        return self._creation(np.arange, start, stop, step, dtype=dtype)

    def linspace(
        self, start: Any, stop: Any, /, num: int, *, dtype: Any = None, device: Any = None, endpoint: bool = True
    ) -> SymbolicArray:
        return self._creation(np.linspace, start, stop, num, dtype=dtype, endpoint=endpoint)

    def zeros_like(self, x: Any, /, *, dtype: Any = None, device: Any = None) -> SymbolicArray:
        return self.zeros(x.shape, dtype=dtype or x.dtype)

    empty_like = zeros_like

    def ones_like(self, x: Any, /, *, dtype: Any = None, device: Any = None) -> SymbolicArray:
        return self.ones(x.shape, dtype=dtype or x.dtype)

    def full_like(self, x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> SymbolicArray:
        return self.full(x.shape, fill_value, dtype=dtype or x.dtype)

    # -- structure (NumPy on the object arrays) --------------------------------------------------

    def _structural(self, function: Callable[..., Any], x: Any, *args: Any, **kwargs: Any) -> SymbolicArray:
        return self._wrap(function(self._data(x), *args, **kwargs), self._dtype(x))

    def reshape(self, x: Any, /, shape: Any, *, copy: bool | None = None) -> SymbolicArray:
        return self._structural(np.reshape, x, shape)

    def permute_dims(self, x: Any, /, axes: Any) -> SymbolicArray:
        return self._structural(np.transpose, x, axes)

    def matrix_transpose(self, x: Any, /) -> SymbolicArray:
        return self._structural(np.swapaxes, x, -1, -2)

    def expand_dims(self, x: Any, /, axis: Any = 0) -> SymbolicArray:
        return self._structural(np.expand_dims, x, axis)

    def squeeze(self, x: Any, /, axis: Any = None) -> SymbolicArray:
        return self._structural(np.squeeze, x, axis)

    def flip(self, x: Any, /, *, axis: Any = None) -> SymbolicArray:
        return self._structural(np.flip, x, axis)

    def roll(self, x: Any, /, shift: Any, *, axis: Any = None) -> SymbolicArray:
        return self._structural(np.roll, x, shift, axis)

    def moveaxis(self, x: Any, source: Any, destination: Any, /) -> SymbolicArray:
        return self._structural(np.moveaxis, x, source, destination)

    def broadcast_to(self, x: Any, /, shape: Any) -> SymbolicArray:
        return self._structural(lambda d, s: np.broadcast_to(d, s).copy(), x, shape)

    def broadcast_arrays(self, *arrays: Any) -> list[SymbolicArray]:
        data = np.broadcast_arrays(*(np.asarray(self._data(a), dtype=object) for a in arrays))
        return [self._wrap(d.copy(), self._dtype(a)) for d, a in zip(data, arrays, strict=True)]

    def tile(self, x: Any, repetitions: Any, /) -> SymbolicArray:
        return self._structural(np.tile, x, repetitions)

    def repeat(self, x: Any, repeats: Any, /, *, axis: Any = None) -> SymbolicArray:
        return self._structural(np.repeat, x, self._index(repeats), axis)

    def take(self, x: Any, indices: Any, /, *, axis: Any = None) -> SymbolicArray:
        return self._structural(np.take, x, self._index(indices), axis)

    def tril(self, x: Any, /, *, k: int = 0) -> SymbolicArray:
        return self._structural(np.tril, x, k)

    def triu(self, x: Any, /, *, k: int = 0) -> SymbolicArray:
        return self._structural(np.triu, x, k)

    def diagonal(self, x: Any, /, *, offset: int = 0) -> SymbolicArray:
        return self._structural(lambda d: np.diagonal(d, offset, -2, -1).copy(), x)

    def unstack(self, x: Any, /, *, axis: int = 0) -> tuple[SymbolicArray, ...]:
        moved = self.moveaxis(x, axis, 0)
        return tuple(moved[i] for i in range(moved.shape[0]))

    def concat(self, arrays: Sequence[Any], /, *, axis: int | None = 0) -> SymbolicArray:
        data = [np.asarray(self._data(a), dtype=object) for a in arrays]
        if axis is None:
            data, axis = [d.reshape(-1) for d in data], 0
        return self._wrap(np.concatenate(data, axis=axis), self.result_type(*arrays))

    concatenate = concat

    def stack(self, arrays: Sequence[Any], /, *, axis: int = 0) -> SymbolicArray:
        data = [np.asarray(self._data(a), dtype=object) for a in arrays]
        return self._wrap(np.stack(data, axis=axis), self.result_type(*arrays))

    def meshgrid(self, *arrays: Any, indexing: str = "xy") -> list[SymbolicArray]:
        grids = np.meshgrid(*[np.asarray(self._data(a), dtype=object) for a in arrays], indexing=indexing)  # type: ignore[call-overload]
        return [self._wrap(g.copy(), self._dtype(a)) for g, a in zip(grids, arrays, strict=True)]

    # -- reductions ----------------------------------------------------------------------------

    def _reduce(
        self, x: Any, axis: Any, keepdims: bool, combine: Callable[[list[Any]], Any], dtype: Any = None
    ) -> SymbolicArray:
        data = np.asarray(self._data(x), dtype=object)
        axes = _normalize_axes(axis, data.ndim)
        kept = tuple(a for a in range(data.ndim) if a not in axes)
        grouped = np.transpose(data, kept + axes).reshape(*(data.shape[a] for a in kept), -1)
        out = np.empty(grouped.shape[:-1], dtype=object)
        for index in np.ndindex(out.shape):
            out[index] = combine(list(grouped[index]))
        if keepdims:
            out = out.reshape(tuple(1 if a in axes else n for a, n in enumerate(data.shape)))
        return self._wrap(out, dtype or self._dtype(x))

    def sum(self, x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> SymbolicArray:
        return self._reduce(x, axis, keepdims, self._sum, dtype)

    def _sum(self, items: list[Any]) -> Any:
        return self.library.sum(items) if items else 0.0

    def prod(self, x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> SymbolicArray:
        return self._reduce(x, axis, keepdims, lambda items: functools.reduce(operator.mul, items, 1.0), dtype)

    def max(self, x: Any, /, *, axis: Any = None, keepdims: bool = False) -> SymbolicArray:
        return self._reduce(x, axis, keepdims, lambda items: functools.reduce(self._maximum, items))

    def min(self, x: Any, /, *, axis: Any = None, keepdims: bool = False) -> SymbolicArray:
        return self._reduce(x, axis, keepdims, lambda items: functools.reduce(self._minimum, items))

    def mean(self, x: Any, /, *, axis: Any = None, keepdims: bool = False) -> SymbolicArray:
        return self._reduce(x, axis, keepdims, lambda items: self._sum(items) / len(items))

    def var(self, x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> SymbolicArray:
        shape = np.shape(self._data(x))
        count = math.prod(shape[a] for a in _normalize_axes(axis, len(shape)))
        deviation = x - self.mean(x, axis=axis, keepdims=True)
        return self.sum(deviation * deviation, axis=axis, keepdims=keepdims) / (count - correction)

    def std(self, x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> SymbolicArray:
        return self.sqrt(self.var(x, axis=axis, correction=correction, keepdims=keepdims))

    def cumulative_sum(
        self, x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False
    ) -> SymbolicArray:
        data = np.asarray(self._data(x), dtype=object)
        if axis is None:
            data, axis = data.reshape(-1), 0
        if include_initial:
            shape = list(data.shape)
            shape[axis] = 1
            data = np.concatenate([np.zeros(shape, dtype=object), data], axis=axis)
        return self._wrap(np.cumsum(data, axis=axis), dtype or self._dtype(x))

    # -- products ------------------------------------------------------------------------------

    def matmul(self, x1: Any, x2: Any, /) -> SymbolicArray:
        a, b = np.asarray(self._data(x1), dtype=object), np.asarray(self._data(x2), dtype=object)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: operands must have at least one axis; use `*` for scalars.")
        vector_a, vector_b = a.ndim == 1, b.ndim == 1
        a, b = (a[None, :] if vector_a else a), (b[:, None] if vector_b else b)
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {np.shape(self._data(x1))} and {np.shape(self._data(x2))} do not align.")
        terms = a[..., :, :, None] * b[..., None, :, :]  # (..., m, k, n)
        out = self._reduce(self._wrap(terms, np.float64), -2, False, self._sum).data
        if vector_b:
            out = out[..., 0]
        if vector_a:
            out = out[..., 0, :] if not vector_b else out[..., 0]
        return self._wrap(out, self.result_type(x1, x2))

    def tensordot(self, x1: Any, x2: Any, /, *, axes: Any = 2) -> SymbolicArray:
        a, b = np.asarray(self._data(x1), dtype=object), np.asarray(self._data(x2), dtype=object)
        if isinstance(axes, int):
            axes_a, axes_b = list(range(a.ndim - axes, a.ndim)), list(range(axes))
        else:
            axes_a, axes_b = [x % a.ndim for x in axes[0]], [x % b.ndim for x in axes[1]]
        free_a = [i for i in range(a.ndim) if i not in axes_a]
        free_b = [i for i in range(b.ndim) if i not in axes_b]
        k = math.prod(a.shape[i] for i in axes_a)
        left = np.transpose(a, free_a + axes_a).reshape(-1, k)
        right = np.transpose(b, axes_b + free_b).reshape(k, -1)
        product = self.matmul(self._wrap(left, self._dtype(x1)), self._wrap(right, self._dtype(x2)))
        shape = tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b)
        return self.reshape(product, shape)

    def vecdot(self, x1: Any, x2: Any, /, *, axis: int = -1) -> SymbolicArray:
        return self.sum(self.multiply(x1, x2), axis=axis)

    def outer(self, x1: Any, x2: Any, /) -> SymbolicArray:
        return self.multiply(self.expand_dims(self.asarray(x1), axis=-1), self.asarray(x2))

    def trace(self, x: Any, /, *, offset: int = 0, dtype: Any = None) -> SymbolicArray:
        return self.sum(self.diagonal(x, offset=offset), axis=-1, dtype=dtype)

    # -- dtypes --------------------------------------------------------------------------------

    def result_type(self, *arrays_and_dtypes: Any) -> Any:
        return np.result_type(*(self._dtype(a) for a in arrays_and_dtypes))

    def isdtype(self, dtype: Any, kind: Any) -> bool:
        return _NP.isdtype(np.dtype(dtype), kind)  # type: ignore[attr-defined]

    def finfo(self, type: Any, /) -> Any:
        return np.finfo(self._dtype(type))

    def iinfo(self, type: Any, /) -> Any:
        return np.iinfo(self._dtype(type))

    def can_cast(self, from_: Any, to: Any, /) -> bool:
        return bool(np.can_cast(self._dtype(from_), to))


def _contains_symbolic(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_contains_symbolic(v) for v in value)
    return isinstance(value, SymbolicArray)


SymbolicNamespace.bool = np.bool_  # type: ignore[attr-defined]  # (in the class, it would shadow `bool`)
register_namespace(SymbolicArray, lambda a: a._xp)


def symbolic_array(elements: Sequence[Any], shape: tuple[int, ...], dtype: Any, xp: SymbolicNamespace) -> SymbolicArray:
    """A `SymbolicArray` of `shape` holding the scalar `elements` in C order."""
    data = np.empty(len(elements), dtype=object)
    for i, element in enumerate(elements):  # one by one: NumPy would unpack sequence-like ones
        data[i] = element
    return SymbolicArray(data.reshape(shape), dtype, xp)


def bounds(sizes: list[int]) -> list[tuple[int, int]]:
    """`(start, stop)` of each of several outputs of these sizes in their concatenation."""
    stops = np.cumsum(sizes).tolist()
    return list(zip([0, *stops[:-1]], stops, strict=True))


def elements(y: Any, label: str) -> list[Any]:
    """The scalar expressions (or numbers) of `f`'s result, in C order."""
    if isinstance(y, SymbolicArray):
        return list(y.data.flat)
    if isinstance(y, (numbers.Number, np.ndarray, np.generic)):  # `f` does not depend on `x`
        return np.asarray(y, dtype=np.float64).reshape(-1).tolist()
    raise TypeError(f"{label}: `f` must return an array; it returned {type(y).__name__}.")


# --------------------------------------------------------------------------------------------
# Contexts: which values become symbolic inputs, and how each call passes them.


def _leaves(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, (tuple, list)):
        for v in value:
            _leaves(v, out)
    elif isinstance(value, Mapping):
        for v in value.values():
            _leaves(v, out)
    else:
        out.append(value)
    return out


def _rebuild(value: Any, replacements: Iterator[Any]) -> Any:
    if isinstance(value, (tuple, list)):
        return type(value)(_rebuild(v, replacements) for v in value)
    if isinstance(value, Mapping):
        return {k: _rebuild(v, replacements) for k, v in value.items()}
    return next(replacements)


def _is_floating(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return isinstance(value, (np.ndarray, np.floating)) and value.dtype.kind == "f"


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return type(a) is type(b) and a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # values that cannot be compared differ
        return False


class _ContextInputs:
    """The contexts of a prep: floating-point leaves are symbolic inputs, the others are fixed.

    Attributes:
        variables: the library variables of the floating-point leaves, in order.
        symbolic: the contexts as `f` receives them while being traced.
    """

    def __init__(self, contexts: tuple, variable: Callable[[str, tuple[int, ...], Any], tuple[Any, Any]]) -> None:
        leaves = _leaves(contexts, [])
        self.count = len(leaves)
        self.inputs: list[tuple[int, tuple[int, ...], np.dtype]] = []
        self.fixed: list[tuple[int, Any]] = []
        self.variables: list[Any] = []
        given = []
        for i, leaf in enumerate(leaves):
            if _is_floating(leaf):
                array = np.asarray(leaf)
                handed, var = variable(f"c{len(self.inputs)}", array.shape, array.dtype)
                self.inputs.append((i, array.shape, array.dtype))
                self.variables.append(var)
                given.append(handed)
            else:
                self.fixed.append((i, leaf))
                given.append(leaf)
        self.symbolic = _rebuild(contexts, iter(given))

    def values(self, operator: str, contexts: tuple) -> list[np.ndarray]:
        """The NumPy arrays the compiled function takes for these contexts (checked)."""
        leaves = _leaves(contexts, [])
        if len(leaves) != self.count:
            raise PreparationMismatchError(
                f"{operator}: the contexts hold {len(leaves)} values where the prep was built for "
                f"{self.count}. Prepare again with `ad.prepare_{operator}` for these contexts."
            )
        for i, value in self.fixed:
            if not _same(leaves[i], value):
                raise PreparationMismatchError(
                    f"{operator}: context value {i} ({type(value).__name__}) differs from the one "
                    "the prep was built with. Symbolic backends make floating-point context values "
                    "inputs of the compiled function and fix the others (integers, strings, "
                    f"functions, ...) at prepare time: prepare again with `ad.prepare_{operator}`, "
                    "or pass the value as a float."
                )
        arrays = []
        for i, shape, dtype in self.inputs:
            array = np.asarray(leaves[i], dtype=dtype)
            if array.shape != shape:
                raise PreparationMismatchError(
                    f"{operator}: context value {i} has shape {array.shape}; the prep was built "
                    f"for shape {shape}. Prepare again with `ad.prepare_{operator}` for these contexts."
                )
            arrays.append(array)
        return arrays


# --------------------------------------------------------------------------------------------
# The implementation every symbolic backend shares.


@dataclass(frozen=True, slots=True)
class _Trace:
    """`f` traced once: the library variable of `x`, the flat expression of `f(x)`, the contexts."""

    x: Any
    y: Any
    contexts: _ContextInputs


class SymbolicImpl(BackendImpl):
    """Trace `f` at prepare time, form each operator's derivative expressions, compile them.

    Subclasses give the library hooks (`variable`, `expression`, `symbolic_*`,
    `compile_function`). Expressions are the library's flat vectors in C order: `expression`
    turns `f`'s result into one, the derivative hooks return one (a Jacobian row after row), and
    `compile_function(inputs, outputs)` returns a function of NumPy arrays (one per input
    variable) returning one array per output, of the output's size.
    """

    kind = array_kind(np.zeros(()))
    prepares_per_call = True  # see `jvp` and `vjp` below
    #: how the backend compiles, shown in `prep.info`
    route: ClassVar[str] = ""
    #: compile `plain` kernels apart, without the value (worth it where compiling is cheap)
    separate_plain: ClassVar[bool] = True

    # -- library hooks ---------------------------------------------------------------------------

    def variable(self, name: str, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
        """`(what f receives, the library variable)` for a symbolic input of this shape."""
        raise NotImplementedError

    def expression(self, y: Any) -> Any:
        """The flat expression of what `f` returned (a symbolic array, or a constant)."""
        raise NotImplementedError

    def symbolic_gradient(self, y: Any, x: Any) -> Any:
        raise NotImplementedError

    def symbolic_jacobian(self, y: Any, x: Any) -> Any:
        raise NotImplementedError

    def symbolic_jvp(self, y: Any, x: Any, t: Any) -> Any:
        raise NotImplementedError

    def symbolic_vjp(self, y: Any, x: Any, u: Any) -> Any:
        raise NotImplementedError

    def symbolic_hessian(self, y: Any, x: Any, gradient: Any) -> Any:
        """The Hessian of the scalar `y`, given its `gradient`; default: the gradient's Jacobian."""
        return self.symbolic_jacobian(gradient, x)

    def compile_function(self, inputs: list[Any], outputs: list[Any]) -> Callable[..., list[np.ndarray]]:
        raise NotImplementedError

    def trace_error(self, exc: Exception) -> Exception | None:
        """An anydiff error for a library error raised while `f` runs on symbols, or `None`."""
        return None

    # -- the size guard ----------------------------------------------------------------------------

    program_unit = "symbolic operations (elements of the arrays `f`'s operations produce)"

    def expression_size(self) -> Callable[[Any], int] | None:
        """How `program_size` measures one scalar expression, for libraries whose expressions are
        trees rather than shared graphs; `None` (default): count the operations' elements."""
        return None

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        """Trace `f`, counting the scalar expressions its operations form; stop past `limit`.

        Expression swell is what makes an unrolled loop too big for symbolic differentiation, and
        the count stops it within a fraction of a second, before the expressions grow further.
        """
        budget = _Budget(limit, self.expression_size())
        _BUDGET.active = budget
        try:
            self.trace("program_size", f, x, contexts)
        except _TooBig:
            return budget.spent
        except Exception:  # `f` fails to trace: the derivative's preparation says why
            return None
        finally:
            _BUDGET.active = None
        return budget.spent

    # -- tracing ---------------------------------------------------------------------------------

    def trace(self, operator: str, f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> _Trace:
        """Run `f` once on symbols for `x` and the floating-point context values."""
        handed, x_var = self.variable("x", tuple(x.shape), x.dtype)
        inputs = _ContextInputs(contexts, self.variable)
        try:
            y = f(handed, *inputs.symbolic)
            return _Trace(x_var, self.expression(y), inputs)
        except _Untraceable as exc:
            raise FunctionNotDifferentiableError(f"{operator}: {exc}") from None
        except _UnsupportedOperation as exc:
            raise UnsupportedError(f"{operator}: {exc}") from None
        except AnyDiffError:
            raise
        except Exception as exc:
            better = self.trace_error(exc)
            if better is None:
                raise
            raise type(better)(f"{operator}: {better}") from exc

    def _kernels(
        self,
        operator: str,
        trace: _Trace,
        outputs: list[tuple[Any, tuple[int, ...]]],
        x: np.ndarray,
        spec: OutputSpec,
        tangent: _Tangent | None = None,
    ) -> Kernels:
        """Compile `outputs` (expression, shape) and wrap them as the operator's kernels.

        Without tangents, `with_value` returns every output and `plain` the last one. With a
        tangent, the last output is `tangent.derivative(t)` of a symbolic tangent `t`, computed
        once per tangent of the call; `with_value` returns `(first output, results)`.
        """
        inputs = [trace.x]
        if tangent is not None:
            t_var = self.variable("t", tangent.shape, tangent.dtype)[1]
            inputs.append(t_var)
            outputs = [*outputs, (tangent.derivative(t_var), tangent.result_shape)]
        inputs += trace.contexts.variables
        compiled = self.compile_function(inputs, [e for e, _ in outputs])
        # `plain` skips the other outputs where compiling twice is cheap
        last = self.compile_function(inputs, [outputs[-1][0]]) if self.separate_plain else compiled
        out_dtype = np.result_type(x.dtype, spec.dtype)
        finishers = [_finisher(shape, spec.dtype if e is trace.y else out_dtype) for e, shape in outputs]
        finish_last = finishers[-1]
        contexts = trace.contexts
        info = {"mode": "symbolic", "route": self.route}

        def finish(results: list[np.ndarray]) -> tuple[Any, ...]:
            return tuple(f(r) for f, r in zip(finishers, results, strict=True))

        if tangent is None:

            def with_value(x: np.ndarray, *context_values: Any) -> tuple[Any, ...]:
                if context_values:
                    return finish(compiled(x, *contexts.values(operator, context_values)))
                return finish(compiled(x))

            def plain(x: np.ndarray, *context_values: Any) -> Any:
                if context_values:
                    return finish_last(last(x, *contexts.values(operator, context_values))[-1])
                return finish_last(last(x)[-1])

            return Kernels(plain, with_value, info)

        t_dtype, finish_first = tangent.dtype, finishers[0]

        def with_value_batched(x: np.ndarray, tangents: tuple, *context_values: Any) -> tuple[Any, tuple]:
            arguments = contexts.values(operator, context_values) if context_values else ()
            results = [compiled(x, np.asarray(t, dtype=t_dtype), *arguments) for t in tangents]
            return finish_first(results[0][0]), tuple(finish_last(r[-1]) for r in results)

        def plain_batched(x: np.ndarray, tangents: tuple, *context_values: Any) -> tuple:
            arguments = contexts.values(operator, context_values) if context_values else ()
            return tuple(finish_last(last(x, np.asarray(t, dtype=t_dtype), *arguments)[-1]) for t in tangents)

        return Kernels(plain_batched, with_value_batched, info)

    # -- first-order operators ---------------------------------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("gradient", f, x, contexts)
        outputs = [(trace.y, ()), (self.symbolic_gradient(trace.y, trace.x), x.shape)]
        return self._kernels("gradient", trace, outputs, x, spec)

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("jacobian", f, x, contexts)
        outputs = [(trace.y, spec.shape), (self.symbolic_jacobian(trace.y, trace.x), (*spec.shape, *x.shape))]
        return self._kernels("jacobian", trace, outputs, x, spec)

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("derivative", f, x, contexts)
        outputs = [(trace.y, spec.shape), (self.symbolic_jacobian(trace.y, trace.x), spec.shape)]
        return self._kernels("derivative", trace, outputs, x, spec)

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("pushforward", f, x, contexts)
        tangent = _Tangent(x.shape, x.dtype, spec.shape, lambda t: self.symbolic_jvp(trace.y, trace.x, t))
        return self._kernels("pushforward", trace, [(trace.y, spec.shape)], x, spec, tangent)

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("pullback", f, x, contexts)
        tangent = _Tangent(spec.shape, spec.dtype, x.shape, lambda u: self.symbolic_vjp(trace.y, trace.x, u))
        return self._kernels("pullback", trace, [(trace.y, spec.shape)], x, spec, tangent)

    # -- second-order operators --------------------------------------------------------------------

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("second_derivative", f, x, contexts)
        dy = self.symbolic_jacobian(trace.y, trace.x)
        outputs = [(trace.y, spec.shape), (dy, spec.shape), (self.symbolic_jacobian(dy, trace.x), spec.shape)]
        return self._kernels("second_derivative", trace, outputs, x, spec)

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("hvp", f, x, contexts)
        gradient = self.symbolic_gradient(trace.y, trace.x)
        # forward over reverse: the directional derivative of the gradient
        tangent = _Tangent(x.shape, x.dtype, x.shape, lambda t: self.symbolic_jvp(gradient, trace.x, t))
        return self._kernels("hvp", trace, [(gradient, x.shape)], x, spec, tangent)

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        trace = self.trace("hessian", f, x, contexts)
        gradient = self.symbolic_gradient(trace.y, trace.x)
        hessian = self.symbolic_hessian(trace.y, trace.x, gradient)
        outputs = [(trace.y, ()), (gradient, x.shape), (hessian, (*x.shape, *x.shape))]
        return self._kernels("hessian", trace, outputs, x, spec)

    # -- primitives: prepare, then call (they cannot be traced by another library) -----------------

    def _numeric(self, operator: str, x: Any) -> None:
        if not isinstance(x, np.ndarray):
            raise UnsupportedError(
                f"{operator}: {self.backend!r} differentiates by tracing `f` and compiling the "
                f"result, which another backend cannot trace in turn (it received a "
                f"{type(x).__name__}). Pair it with itself or with `ad.AutoFiniteDiff()` in "
                "`ad.SecondOrder`."
            )

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        self._numeric("pushforward", x)
        kernels = self.kernels(PUSHFORWARD, f, x, (), contexts, self.output_spec(f, x, contexts))
        y, results = kernels.with_value(x, tuple(tangents), *contexts)
        return y, np.stack(results)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        self._numeric("pullback", x)
        spec = self.output_spec(f, x, contexts)
        kernels = self.kernels(PULLBACK, f, x, (), contexts, spec)

        def pullback(cotangents: Any) -> Any:
            return np.stack(kernels.plain(x, tuple(cotangents), *contexts))

        return np.asarray(f(x, *contexts), dtype=spec.dtype), pullback

    native = {
        GRADIENT: native_gradient,
        JACOBIAN: native_jacobian,
        DERIVATIVE: native_derivative,
        PUSHFORWARD: native_pushforward,
        PULLBACK: native_pullback,
        SECOND_DERIVATIVE: native_second_derivative,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }


def _finisher(shape: tuple[int, ...], dtype: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Give a flat result of the compiled function its shape and the operator's dtype."""
    dtype = np.dtype(dtype)

    def finish(result: np.ndarray) -> np.ndarray:
        return (result if result.dtype == dtype else result.astype(dtype)).reshape(shape)

    return finish


@dataclass(frozen=True, slots=True)
class _Tangent:
    """The tangent input of pushforward, pullback and hvp: its shape and dtype, the shape of the
    result, and the derivative expression for a symbolic tangent."""

    shape: tuple[int, ...]
    dtype: Any
    result_shape: tuple[int, ...]
    derivative: Callable[[Any], Any]
