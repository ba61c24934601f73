"""SymPy: trace `f` on arrays of real symbols, differentiate exactly, compile with `lambdify`.

Derivatives are exact expressions, simplified only by SymPy's automatic evaluation (`simplify`
costs seconds where the whole preparation otherwise takes milliseconds). They are formed by
forward and reverse sweeps over the expression graph (`_Differentiator`), with SymPy's own rule
for each function, rather than by `sympy.diff` per pair of output and input element, which is
10-100 times slower on anything but tiny expressions.

`lambdify` with structural common-subexpression elimination compiles them to straight-line
Python on the `math` module, called with the elements of `x` as Python floats: for a few dozen
inputs that is the cheapest call of any backend (no array dispatch at all), and the cost grows
with the number of scalar operations, so SymPy suits small problems. Where a value is outside a
function's domain (`log(-1)`, `1/0`, overflow), which `math` reports with an exception, the call
is repeated with NumPy scalars, which give `nan`/`inf` (with NumPy's warning) like the other
backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy
from sympy.codegen import cfunctions
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter
from sympy.simplify.cse_main import tree_cse

from ..symbolic.impl import ScalarLibrary, SymbolicImpl, SymbolicNamespace, bounds, elements, symbolic_array

__all__ = ["SymPyImpl"]


def _where(condition: Any, a: Any, b: Any) -> Any:
    return sympy.Piecewise((a, condition), (b, True))


# fmt: off
_FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "asin": sympy.asin, "acos": sympy.acos,
    "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
    "asinh": sympy.asinh, "acosh": sympy.acosh, "atanh": sympy.atanh, "exp": sympy.exp,
    "log": sympy.log, "sqrt": sympy.sqrt, "abs": sympy.Abs, "sign": sympy.sign,
    "floor": sympy.floor, "ceil": sympy.ceiling, "atan2": sympy.atan2, "erf": sympy.erf,
    "expm1": cfunctions.expm1, "log1p": cfunctions.log1p, "log2": cfunctions.log2,
    "log10": cfunctions.log10, "hypot": cfunctions.hypot,
    # n-ary and flattening; `max` as repeated `where` nests `Piecewise` conditions, which take
    # seconds to build for six elements
    "maximum": sympy.Max, "minimum": sympy.Min,
    # `==` on SymPy expressions is structural equality: the relational is `Eq`
    "equal": sympy.Eq, "not_equal": sympy.Ne,
    "logical_and": sympy.And, "logical_or": sympy.Or, "logical_not": sympy.Not, "logical_xor": sympy.Xor,
}
# fmt: on
_LIBRARY = ScalarLibrary(label="AutoSymPy()", functions=_FUNCTIONS, where=_where, sum=lambda items: sympy.Add(*items))
_NAMESPACE = SymbolicNamespace(_LIBRARY)


_ZERO, _ONE = sympy.S.Zero, sympy.S.One
# Derivatives of piecewise-constant functions: `sign' = 2 DiracDelta`, `floor'` stays an
# unevaluated `Derivative`. Numeric AD gives 0, which is right almost everywhere.
_SINGULAR = (sympy.DiracDelta, sympy.Derivative)


def _local_partials(node: sympy.Basic) -> list[tuple[sympy.Expr, sympy.Expr]]:
    """`(argument, d node / d argument)` for the arguments of `node` with a nonzero partial."""
    if node.is_Atom or isinstance(node, sympy.logic.boolalg.Boolean):  # also relationals
        return []
    args = node.args
    if node.is_Add:
        pairs = [(a, _ONE) for a in args]
    elif node.is_Mul:
        pairs = [(a, sympy.Mul(*args[:i], *args[i + 1 :])) for i, a in enumerate(args)]
    elif node.is_Pow:
        base, exponent = args
        pairs = [(base, exponent * base ** (exponent - 1)), (exponent, node * sympy.log(base))]
    elif isinstance(node, sympy.Piecewise):
        # the partial with respect to branch i is the indicator of branch i being selected
        conditions = [pair.cond for pair in args]
        pairs = [
            (pair.expr, sympy.Piecewise(*((_ONE if j == i else _ZERO, c) for j, c in enumerate(conditions))))
            for i, pair in enumerate(args)
        ]
    elif isinstance(node, (sympy.Function, sympy.Max, sympy.Min)):
        # numeric arguments (`Heaviside(x, 1/2)`'s value at 0) have no partial, and no `fdiff`
        pairs = [(a, node.fdiff(i + 1)) for i, a in enumerate(args) if not a.is_Number]
    else:  # any other expression type: SymPy's own rule, through a placeholder argument
        pairs = []
        for i, a in enumerate(args):
            placeholder = sympy.Dummy(real=True)
            moved = node.func(*args[:i], placeholder, *args[i + 1 :])
            pairs.append((a, sympy.diff(moved, placeholder).xreplace({placeholder: a})))
    return [(a, d) for a, d in pairs if not a.is_Number and d != 0 and not d.has(*_SINGULAR)]


class _Differentiator:
    """Forward and reverse sweeps over SymPy expression graphs, shared subexpressions visited once.

    `sympy.diff` walks the whole expression again for every (output, input) pair, consulting
    SymPy's assumptions at each step: the 10 x 10 Hessian of a small network took seconds. A
    sweep walks the graph once and builds each local partial derivative once (kept for the later
    sweeps), so a gradient costs about as much as the function and a Jacobian min(m, n) sweeps;
    `lambdify`'s common-subexpression elimination then recovers the sharing in the code.
    """

    def __init__(self) -> None:
        self._partials: dict[sympy.Basic, list[tuple[sympy.Expr, sympy.Expr]]] = {}

    def partials(self, node: sympy.Basic) -> list[tuple[sympy.Expr, sympy.Expr]]:
        found = self._partials.get(node)
        if found is None:
            found = self._partials[node] = _local_partials(node)
        return found

    def order(self, outputs: list[sympy.Expr]) -> list[sympy.Expr]:
        """Every node the outputs depend on, arguments before the expressions using them."""
        order, seen = [], set()
        for output in outputs:
            stack = [(output, False)]
            while stack:
                node, expanded = stack.pop()
                if expanded:
                    order.append(node)
                elif node not in seen:
                    seen.add(node)
                    stack.append((node, True))
                    stack.extend((a, False) for a, _ in self.partials(node) if a not in seen)
        return order

    def forward(self, outputs: list[sympy.Expr], seeds: dict[sympy.Symbol, Any]) -> list[sympy.Expr]:
        """The directional derivatives of `outputs` for the input tangents `seeds`."""
        tangents: dict[sympy.Expr, sympy.Expr] = {}
        for node in self.order(outputs):
            if node in seeds:
                tangents[node] = seeds[node]
                continue
            terms = [tangents[a] * d for a, d in self.partials(node) if a in tangents]
            if terms:
                tangents[node] = sympy.Add(*terms)
        return [tangents.get(o, _ZERO) for o in outputs]

    def reverse(self, outputs: list[sympy.Expr], seeds: list[Any], inputs: list[sympy.Symbol]) -> list[sympy.Expr]:
        """`sum_i seeds[i] * d outputs[i] / d input` for each input."""
        terms: dict[sympy.Expr, list[sympy.Expr]] = {}
        for output, seed in zip(outputs, seeds, strict=True):
            if seed != 0:
                terms.setdefault(output, []).append(seed)
        wanted, adjoints = set(inputs), {}
        for node in reversed(self.order(outputs)):
            parts = terms.pop(node, None)
            if not parts:
                continue
            adjoint = sympy.Add(*parts)
            if node in wanted:
                adjoints[node] = adjoint
            for a, d in self.partials(node):
                terms.setdefault(a, []).append(adjoint * d)
        return [adjoints.get(x, _ZERO) for x in inputs]

    def jacobian(self, outputs: list[sympy.Expr], inputs: list[sympy.Symbol]) -> list[sympy.Expr]:
        """The Jacobian, row after row: one forward sweep per input or one reverse per output."""
        m, n = len(outputs), len(inputs)
        if n <= m:
            columns = [self.forward(outputs, {x: _ONE}) for x in inputs]
            return [columns[j][i] for i in range(m) for j in range(n)]
        rows = [self.reverse(outputs, [_ONE if k == i else _ZERO for k in range(m)], inputs) for i in range(m)]
        return [d for row in rows for d in row]


class _FloatsInFull:
    """Print floats with every digit (SymPy's default keeps 15, which loses float64 precision)."""

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))


class _MathPrinter(_FloatsInFull, PythonCodePrinter):
    pass


class _NumPyPrinter(_FloatsInFull, NumPyPrinter):
    pass


def _shared_subexpressions(exprs: list[sympy.Expr]) -> tuple[list, list]:
    """Common-subexpression elimination by structure only (`tree_cse`), in linear time.

    `sympy.cse` also searches for common subsets of the arguments of sums and products, which
    is quadratic: 23 s instead of 2 s for the gradient of a 50-unit network.
    """
    return tree_cse(exprs, sympy.numbered_symbols("_s"), order="none")


def _heaviside(x: float, at_zero: float = 0.5) -> float:
    return 1.0 if x > 0 else 0.0 if x < 0 else at_zero


# `Heaviside` (the derivative of `Max` and `Min`) as a function, not printed as a `Piecewise`:
# rewriting it expands the `Max` inside into nested conditions, seconds for a few elements
_STEP = {"math": _heaviside, "numpy": np.heaviside}


def _lambdify(
    symbols: list[list[sympy.Symbol]], flat: list[sympy.Expr], module: str, printer: type
) -> Callable[..., Any]:
    # the settings `lambdify` gives the printers it makes itself (function names unqualified),
    # and terms printed as they are: ordering them is a good part of the printing time
    settings = {
        "fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True, "order": "none",
        "user_functions": {"Heaviside": "_step"},
    }  # fmt: skip
    return sympy.lambdify(
        symbols,
        flat,
        modules=[{"_step": _STEP[module]}, module],
        printer=printer(settings),
        cse=_shared_subexpressions,
        docstring_limit=0,
    )


class _Compiled:
    """A `lambdify`d function of flat lists of floats, with its NumPy-scalar twin for edge cases."""

    def __init__(self, symbols: list[list[sympy.Symbol]], outputs: list[list[sympy.Expr]]) -> None:
        self.symbols = symbols
        self.flat = [e for output in outputs for e in output]
        self.bounds = bounds([len(output) for output in outputs])
        self.fast = _lambdify(symbols, self.flat, "math", _MathPrinter)
        self._numpy: Callable[..., Any] | None = None

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        try:
            values = np.array(self.fast(*(a.ravel().tolist() for a in arrays)), dtype=np.float64)
        except (ArithmeticError, ValueError, TypeError):  # a math domain error, or a complex power
            if self._numpy is None:
                self._numpy = _lambdify(self.symbols, self.flat, "numpy", _NumPyPrinter)
            values = np.array(self._numpy(*(list(a.astype(np.float64).ravel()) for a in arrays)), dtype=np.float64)
        return [values[start:stop] for start, stop in self.bounds]


class SymPyImpl(SymbolicImpl):
    mutation = True  # `f(y, x)` writes into a symbolic array
    route = "sympy expression graph + lambdify"
    program_unit = "expression-tree nodes (of the largest element `f` forms)"

    def expression_size(self) -> Callable[[Any], int]:
        """The tree size of an expression: what swells, and what SymPy's `diff` and `lambdify` pay.

        Memoised over subexpressions, so measuring a whole trace costs about its graph's size even
        when the trees it stands for are exponentially larger (each RK4 step multiplies them).
        """
        sizes: dict[Any, int] = {}

        def size(e: Any) -> int:
            known = sizes.get(e)
            if known is None:
                args = getattr(e, "args", ())
                known = sizes[e] = 1 + sum(size(a) for a in args)
            return known

        return size

    def variable(self, name: str, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
        symbols = [sympy.Symbol(f"{name}_{i}", real=True) for i in range(int(np.prod(shape)))]
        return symbolic_array(symbols, shape, dtype, _NAMESPACE), symbols

    def expression(self, y: Any) -> list[sympy.Expr]:
        return [sympy.sympify(e) for e in elements(y, "AutoSymPy()")]

    def symbolic_gradient(self, y: list, x: list) -> list:
        return _Differentiator().reverse(y, [_ONE], x)

    def symbolic_jacobian(self, y: list, x: list) -> list:
        return _Differentiator().jacobian(y, x)

    def symbolic_jvp(self, y: list, x: list, t: list) -> list:
        return _Differentiator().forward(y, dict(zip(x, t, strict=True)))

    def symbolic_vjp(self, y: list, x: list, u: list) -> list:
        return _Differentiator().reverse(y, u, x)

    def compile_function(self, inputs: list[list], outputs: list[list]) -> Callable[..., list[np.ndarray]]:
        return _Compiled(inputs, outputs)
