"""CasADi: trace `f` onto scalar `SX` expressions, differentiate with CasADi's AD, compile.

`x` becomes an `SX` column of symbols and `f` runs on its elements (a `SymbolicArray`), so the
graph is CasADi's scalar expression graph, where `0 * x` vanishes as it is built: the sparsity
of every derivative is exact and structural. Derivatives use CasADi's own algorithms
(`gradient`, `jacobian`, `hessian`, and `jtimes` for forward and reverse directional
derivatives), and one `casadi.Function` per prep computes the value and the derivative. Calls
go through CasADi's buffer interface on NumPy memory registered once (no `DM` conversions):
about 1 µs of overhead where a plain `Function` call costs 12-20 µs.

CasADi computes in float64 only; float32 inputs give float32 results computed in float64.
`jacobian_sparsity` / `hessian_sparsity` give CasADi's structural patterns as SciPy arrays.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable
from typing import Any

import casadi as ca
import numpy as np
import scipy.sparse as sp

from ..symbolic.impl import ScalarLibrary, SymbolicImpl, SymbolicNamespace, bounds, elements, symbolic_array

__all__ = ["CasADiImpl"]


# fmt: off
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sin": ca.sin, "cos": ca.cos, "tan": ca.tan, "asin": ca.asin, "acos": ca.acos, "atan": ca.atan,
    "sinh": ca.sinh, "cosh": ca.cosh, "tanh": ca.tanh, "asinh": ca.asinh, "acosh": ca.acosh,
    "atanh": ca.atanh, "exp": ca.exp, "log": ca.log, "sqrt": ca.sqrt, "abs": ca.fabs,
    "sign": ca.sign, "floor": ca.floor, "ceil": ca.ceil, "atan2": ca.atan2, "erf": ca.erf,
    "expm1": ca.expm1, "log1p": ca.log1p, "log10": ca.log10, "hypot": ca.hypot,
    "maximum": ca.fmax, "minimum": ca.fmin,
    "logical_and": ca.logic_and, "logical_or": ca.logic_or, "logical_not": ca.logic_not,
}
# fmt: on
_LIBRARY = ScalarLibrary(
    label="AutoCasADi()",
    functions=_FUNCTIONS,
    where=ca.if_else,
    sum=lambda items: functools.reduce(operator.add, items),
)
_NAMESPACE = SymbolicNamespace(_LIBRARY)


def _column(items: list[Any]) -> ca.SX:
    if not items:
        return ca.SX(0, 1)
    return ca.vertcat(*(item if isinstance(item, ca.SX) else ca.SX(float(item)) for item in items))


def _rows(matrix: ca.SX) -> ca.SX:
    """A matrix's entries as one column, row after row (C order; CasADi stores by columns)."""
    return ca.vec(matrix.T)


def _pattern(sparsity: ca.Sparsity) -> sp.csr_array:
    rows, columns = sparsity.get_triplet()
    data = np.ones(len(rows), dtype=bool)
    return sp.csr_array((data, (rows, columns)), shape=(sparsity.size1(), sparsity.size2()))


class _Compiled:
    """A `casadi.Function` called through its buffer interface, on memory registered once.

    CasADi reads the inputs from, and writes the result to, NumPy arrays whose addresses it
    holds; each thread gets its own (made on its first call). A call copies the inputs in
    (casting to float64), evaluates, and copies the result out into a fresh array.
    """

    def __init__(self, inputs: list[ca.SX], outputs: list[ca.SX]) -> None:
        self.function = ca.Function("anydiff", inputs, [ca.densify(ca.vertcat(*outputs))])
        self.input_sizes = [int(i.numel()) for i in inputs]
        self.bounds = bounds([int(o.numel()) for o in outputs])
        self.local = threading.local()

    def _memory(self) -> tuple[Any, list[np.ndarray], np.ndarray]:
        buffer, evaluate = self.function.buffer()
        arguments = [np.empty(size) for size in self.input_sizes]
        result = np.empty(self.bounds[-1][1])
        for i, argument in enumerate(arguments):
            buffer.set_arg(i, memoryview(argument))  # type: ignore[call-arg, arg-type]  # (size: from the view)
        buffer.set_res(0, memoryview(result))  # type: ignore[call-arg, arg-type]
        return (buffer, evaluate), arguments, result  # the buffer must outlive the calls

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        try:
            (_, evaluate), arguments, result = self.local.memory
        except AttributeError:
            (_, evaluate), arguments, result = self.local.memory = self._memory()
        for argument, array in zip(arguments, arrays, strict=True):
            np.copyto(argument, array.reshape(-1))
        evaluate()
        out = result.copy()
        return [out[start:stop] for start, stop in self.bounds]


class CasADiImpl(SymbolicImpl):
    mutation = True  # `f(y, x)` writes into a symbolic array
    route = "casadi SX + Function"

    def variable(self, name: str, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
        column = ca.SX.sym(name, int(np.prod(shape)))
        return symbolic_array(ca.vertsplit(column), shape, dtype, _NAMESPACE), column

    def expression(self, y: Any) -> ca.SX:
        return _column(elements(y, "AutoCasADi()"))

    def symbolic_gradient(self, y: ca.SX, x: ca.SX) -> ca.SX:
        return ca.gradient(y, x)

    def symbolic_jacobian(self, y: ca.SX, x: ca.SX) -> ca.SX:
        return _rows(ca.jacobian(y, x))

    def symbolic_jvp(self, y: ca.SX, x: ca.SX, t: ca.SX) -> ca.SX:
        return ca.jtimes(y, x, t)

    def symbolic_vjp(self, y: ca.SX, x: ca.SX, u: ca.SX) -> ca.SX:
        return ca.jtimes(y, x, u, True)

    def symbolic_hessian(self, y: ca.SX, x: ca.SX, gradient: ca.SX) -> ca.SX:
        # what `casadi.hessian` does, on the gradient the prep computes anyway
        return _rows(ca.jacobian(gradient, x, {"symmetric": True}))

    def compile_function(self, inputs: list[ca.SX], outputs: list[ca.SX]) -> Callable[..., list[np.ndarray]]:
        return _Compiled(inputs, outputs)

    # -- CasADi's structural sparsity, for `ad.AutoSparse(ad.AutoCasADi())` --------------------------

    def sparsity_detector(self) -> CasADiImpl:
        """CasADi's structural patterns are exact and cheap: its own `jacobian_sparsity` below."""
        return self

    def jacobian_sparsity(self, f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> sp.csr_array:
        """`jacobian_sparsity(f, x, contexts) -> csr_array`: the pattern of `J`, `(y.size, x.size)`.

        Structural: it holds for every `x` and every value of the floating-point contexts
        (`contexts` are the unwrapped context values, as in the native routes).
        """
        trace = self.trace("jacobian", f, x, contexts)
        return _pattern(ca.jacobian_sparsity(trace.y, trace.x))

    def hessian_sparsity(self, f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> sp.csr_array:
        """`hessian_sparsity(f, x, contexts) -> csr_array`: the pattern of `H`, `(x.size, x.size)`."""
        trace = self.trace("hessian", f, x, contexts)
        return _pattern(ca.hessian(trace.y, trace.x)[0].sparsity())
