"""PyTensor: trace `f` onto PyTensor tensor variables, differentiate the graph, compile it.

Unlike SymPy and CasADi, PyTensor's graphs are made of N-d tensor operations, so `f` receives a
PyTensor `TensorVariable` for `x` itself (a vectorised graph, however large `x` is) and
`ad.namespace` maps the array-API names onto `pytensor.tensor`. Derivatives are PyTensor's
(`grad`, `pullback`, `pushforward`, vectorised `jacobian`), compiled with `pytensor.function` at
prepare time and called without input validation (`trust_input`): anydiff has checked the
inputs already. PyTensor's default linker, Numba, compiles a new graph in 1-15 s on its first
call; anydiff makes that call while preparing, so preparation is slow and prepared calls fast.
Numba keeps the compiled graph on disk (in PyTensor's `base_compiledir`): preparing the same
graph again, in any process, takes well under a second.

PyTensor variables are immutable: `f` cannot write into arrays in place (two-argument functions
`f(y, x)`, `Cache` buffers); write `f` functionally, or use `ad.AutoSymPy()` / `ad.AutoCasADi()`.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytensor
import pytensor.gradient
import pytensor.tensor as pt
from numba.core.errors import NumbaWarning
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.basic import GraphRewriter
from pytensor.tensor.variable import TensorConstant, TensorVariable

from anydiff.extend import FunctionNotDifferentiableError, register_namespace

from ..symbolic.impl import SymbolicImpl, unsupported, untraceable

__all__ = ["PyTensorImpl", "pytensor_namespace"]

_LABEL = "AutoPyTensor()"

# array-API name -> `pytensor.tensor` name, where they differ
_RENAMED = {
    "asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh", "acosh": "arccosh",
    "atanh": "arctanh", "atan2": "arctan2", "negative": "neg", "subtract": "sub",
    "multiply": "mul", "divide": "true_div", "floor_divide": "floor_div", "remainder": "mod",
    "greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le", "equal": "eq",
    "not_equal": "neq", "logical_and": "and_", "logical_or": "or_", "logical_not": "invert",
    "logical_xor": "xor", "permute_dims": "transpose", "concat": "concatenate",
    "cumulative_sum": "cumsum", "cumulative_prod": "cumprod",
}  # fmt: skip
# names shared by the array API (or NumPy) and `pytensor.tensor`
_SAME = (
    "abs sin cos tan sinh cosh tanh exp expm1 log log1p log2 log10 sqrt square reciprocal sign "
    "floor ceil trunc round erf add pow maximum minimum logaddexp where clip reshape "
    "expand_dims squeeze flip roll moveaxis broadcast_to broadcast_arrays tile repeat take tril "
    "triu stack sum prod mean max min matmul tensordot outer trace zeros ones full eye arange "
    "linspace zeros_like ones_like full_like argmax argmin sort argsort isnan isinf any all "
    "arcsin arccos arctan arcsinh arccosh arctanh arctan2 power concatenate transpose cumsum"
).split()


class _Linalg:
    def vector_norm(self, x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
        return pt.linalg.norm(x if axis is not None else x.flatten(), ord=ord, axis=axis, keepdims=keepdims)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise unsupported(_LABEL, f"xp.linalg.{name}")


class _Namespace:
    """The array-API namespace of PyTensor variables: `pytensor.tensor` under array-API names."""

    float32, float64, int32, int64 = np.float32, np.float64, np.int32, np.int64
    # mypy (without its cache) misreads this class attribute as a read of a deleted `e`
    e, pi, inf, nan, newaxis = np.e, np.pi, np.inf, np.nan, None  # type: ignore[misc]
    linalg = _Linalg()

    def __init__(self) -> None:
        self.__name__ = f"array namespace of {_LABEL}"
        for name in _SAME:
            setattr(self, name, getattr(pt, name))
        for name, target in _RENAMED.items():
            setattr(self, name, getattr(pt, target))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (copy, pickle, array_api_compat), not `f`
            raise AttributeError(name)
        raise unsupported(_LABEL, f"xp.{name}")

    def __repr__(self) -> str:
        return f"<{self.__name__}>"

    @staticmethod
    def positive(x: Any, /) -> Any:
        return pt.as_tensor_variable(x)

    @staticmethod
    def hypot(x1: Any, x2: Any, /) -> Any:
        return pt.sqrt(pt.sqr(x1) + pt.sqr(x2))

    @staticmethod
    def matrix_transpose(x: Any, /) -> Any:
        return pt.swapaxes(x, -1, -2)

    @staticmethod
    def diagonal(x: Any, /, *, offset: int = 0) -> Any:
        return pt.diagonal(x, offset, -2, -1)

    @staticmethod
    def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
        return pt.sum(x1 * x2, axis=axis)

    @staticmethod
    def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
        moved = pt.moveaxis(x, axis, 0)
        return tuple(moved[i] for i in range(moved.type.shape[0]))

    @staticmethod
    def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        return pt.var(x, axis=axis, ddof=correction, keepdims=keepdims)

    @staticmethod
    def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
        return pt.std(x, axis=axis, ddof=correction, keepdims=keepdims)

    @staticmethod
    def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
        return pt.cast(x, np.dtype(dtype).name)

    @staticmethod
    def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
        variable = pt.as_tensor_variable(obj)
        return variable if dtype is None else pt.cast(variable, np.dtype(dtype).name)

    @staticmethod
    def empty(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
        return pt.zeros(shape, dtype=None if dtype is None else np.dtype(dtype).name)

    @staticmethod
    def empty_like(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
        return pt.zeros_like(x, dtype=None if dtype is None else np.dtype(dtype).name)

    @staticmethod
    def result_type(*arrays_and_dtypes: Any) -> Any:
        return np.result_type(*(getattr(a, "dtype", a) for a in arrays_and_dtypes))

    @staticmethod
    def isdtype(dtype: Any, kind: Any) -> bool:
        import array_api_compat.numpy as np_api

        return np_api.isdtype(np.dtype(dtype), kind)  # type: ignore[attr-defined]

    @staticmethod
    def finfo(type: Any, /) -> Any:
        return np.finfo(getattr(type, "dtype", type))


_Namespace.bool = np.bool_  # type: ignore[attr-defined]  # (in the class, it would shadow `bool`)
pytensor_namespace = _Namespace()
for _type in (TensorVariable, TensorConstant):
    register_namespace(_type, lambda a: pytensor_namespace)

# Substrings of PyTensor's errors when `f` needs a value, or writes in place.
_CONCRETE = ("cannot be converted to Python",)
_IN_PLACE = ("does not support item assignment",)


def _flat(variable: Any) -> Any:
    """A derivative graph as the flat vector `SymbolicImpl` works with (C order)."""
    return variable.flatten()


# `x.shape` of a PyTensor variable is a symbolic vector, even where the shape is known, so
# ordinary code fails on it (`int(round(x.shape[0] ** 0.5))`, `range(x.shape[0])`). anydiff
# traces `f` for one shape: while it does, in the tracing thread only, `shape` gives the known
# shape as Python ints, as the array API asks. Elsewhere, and for shapes with unknown dimensions,
# it is PyTensor's own.
_TRACING = threading.local()
_SYMBOLIC_SHAPE = inspect.getattr_static(TensorVariable, "shape")  # the property itself


def _shape(variable: Any) -> Any:
    if getattr(_TRACING, "active", False):
        known = variable.type.shape
        if None not in known:
            return tuple(int(d) for d in known)
    return _SYMBOLIC_SHAPE.fget(variable)


setattr(TensorVariable, "shape", property(_shape, doc=_SYMBOLIC_SHAPE.__doc__))  # noqa: B010


class _ContiguousConstants(GraphRewriter):
    """Make the graph's array constants contiguous, so that Numba can keep the graph on disk.

    Constant folding leaves slices of constants (in the Hessian, columns of the identity that
    seeds the vectorised Jacobian) as strided views. Numba embeds a strided constant by its
    address ("dynamic globals"), which keeps the whole compiled graph out of its disk cache: each
    process compiled the Rosenbrock Hessian (n = 5) again, 2-5 s, instead of loading it, 0.2 s.
    """

    def apply(self, fgraph: Any) -> None:
        for variable in list(fgraph.variables):
            data = variable.data if isinstance(variable, Constant) else None
            if isinstance(data, np.ndarray) and not (data.flags.c_contiguous or data.flags.f_contiguous):
                fgraph.replace(variable, type(variable)(variable.type, np.ascontiguousarray(data)))


class PyTensorImpl(SymbolicImpl):
    route = "pytensor.grad/pushforward/pullback + pytensor.function"
    separate_plain = False  # compiling takes ~0.5 s; computing the value too costs little

    def variable(self, name: str, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
        variable = pt.tensor(name=name, shape=shape, dtype=np.dtype(dtype).name)
        return variable, variable

    def trace(self, operator: str, f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> Any:
        outer, _TRACING.active = getattr(_TRACING, "active", False), True
        try:
            return super().trace(operator, f, x, contexts)
        finally:
            _TRACING.active = outer

    program_unit = "graph nodes (PyTensor `Apply` nodes)"

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        # Building the graph is cheap (one node per operation, shared): differentiating, rewriting
        # and compiling a large one is not, so the graph is traced whole, then counted.
        try:
            trace = self.trace("program_size", f, x, contexts)
        except Exception:  # `f` fails to trace: the derivative's preparation says why
            return None
        try:
            from pytensor.graph import traversal
        except ImportError:  # PyTensor before 2.32
            from pytensor.graph import basic as traversal  # type: ignore[no-redef]
        inputs = [trace.x, *trace.contexts.variables]
        return len(traversal.io_toposort(inputs, [trace.y]))

    def expression(self, y: Any) -> Any:
        try:
            return pt.as_tensor_variable(y).flatten()
        except TypeError:
            raise TypeError(f"{_LABEL}: `f` must return an array; it returned {type(y).__name__}.") from None

    def symbolic_gradient(self, y: Any, x: Any) -> Any:
        return _flat(pytensor.grad(y[0], x, disconnected_inputs="ignore"))

    def symbolic_jacobian(self, y: Any, x: Any) -> Any:
        return _flat(pytensor.gradient.jacobian(y, x, disconnected_inputs="ignore", vectorize=True))

    def symbolic_jvp(self, y: Any, x: Any, t: Any) -> Any:
        try:
            return _flat(pytensor.gradient.pushforward(y, x, t, disconnected_outputs="ignore"))
        except pytensor.gradient.NullTypeGradError:
            # PyTensor pushes forward by pulling back twice, which needs the second derivatives
            # of every op; `prod` has none. The Jacobian needs first derivatives only.
            jacobian = pytensor.gradient.jacobian(y, x, disconnected_inputs="ignore", vectorize=True)
            return _flat(pt.tensordot(jacobian, t, axes=x.type.ndim))

    def symbolic_vjp(self, y: Any, x: Any, u: Any) -> Any:
        return _flat(pytensor.gradient.pullback(y, x, u.flatten(), disconnected_inputs="ignore"))

    def compile_function(self, inputs: list[Any], outputs: list[Any]) -> Callable[..., list[np.ndarray]]:
        with warnings.catch_warnings():
            # Numba cannot keep a graph with a constant over 1 MB on disk; it says so.
            warnings.simplefilter("ignore", NumbaWarning)
            # Without the greedy distributor: on nested divisions (Newton iterations in `f`) its
            # rewriting grows exponentially, past two minutes for a Jacobian of eight iterations.
            mode = pytensor.compile.mode.get_default_mode().excluding("local_greedy_distributor")
            # after every rewrite (the last ones are at position 100), before linking
            mode = mode.register((_ContiguousConstants(), 101))
            function = pytensor.function(inputs, outputs, mode=mode, trust_input=True, on_unused_input="ignore")
            # PyTensor's default linker, Numba, compiles on the first call (seconds): make that
            # call now, so that it is part of the preparation
            with np.errstate(all="ignore"):
                zeros = [np.zeros(v.type.shape, dtype=v.type.dtype) for v in inputs]
                function(*zeros)
                # Read-only arrays (JAX's, through `DifferentiateWith`) are another Numba type, which
                # would compile again, and warn, at the first such call: compile that now too.
                for z in zeros:
                    z.setflags(write=False)
                function(*zeros)
        return function

    def trace_error(self, exc: Exception) -> Exception | None:
        message = str(exc)
        if isinstance(exc, TypeError) and any(s in message for s in _CONCRETE):
            return untraceable(_LABEL, message.split(".")[0])
        if isinstance(exc, TypeError) and any(s in message for s in _IN_PLACE):
            return FunctionNotDifferentiableError(
                f"`f` writes into an array in place ({message}), which PyTensor graphs cannot "
                "express: build the result functionally (`xp.concat`, `xp.stack`, `xp.where`), or "
                "use `ad.AutoSymPy()` / `ad.AutoCasADi()`, whose symbolic arrays can be written."
            )
        return None
