"""Scenarios: functions with analytic derivatives, one per operator and input/output kind.

A `Scenario` is one call to test: an operator, a function, a point (and tangents, contexts, an
output buffer) and the results expected there, plus the same problem at a second point for
reusing a prep. `default_scenarios()`, `sparse_scenarios()` and `tree_scenarios()` build
families of them; the modifiers (`with_constant`, `with_cache`, `with_closure`,
`with_output_buffer`, `with_dtype`, `with_kind`) derive variants of any scenario.

The functions are written once with `xp = ad.namespace(x)`, so they run on every backend, and
they are instances of module-level classes, so they pickle (the command line sends scenarios to
one subprocess per backend). Expected results are computed in NumPy float64 from closed forms,
then cast to the dtype of `x`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .. import Args
from ..extend import Cache, Constant, array_kind, array_kinds, converter, namespace

__all__ = [
    "OPERATORS",
    "OperatorForms",
    "Scenario",
    "comparison_scenarios",
    "default_scenarios",
    "sparse_scenarios",
    "tree_scenarios",
    "with_cache",
    "with_closure",
    "with_constant",
    "with_dtype",
    "with_kind",
    "with_output_buffer",
]


@dataclass(frozen=True, slots=True)
class OperatorForms:
    """How an operator is called: its value form, what that returns, its tangents.

    Attributes:
        name: the operator (`"gradient"`); `ad.<name>` and `ad.prepare_<name>` exist.
        value_form: the function that also returns the value (`"value_and_gradient"`).
        outputs: what the value form returns, named after the `Scenario` fields holding the
            expected results: `"value"` (f(x)), `"first"` (the first-order derivative of a
            second-order operator) and `"result"` (what `ad.<name>` returns).
        tangents: `"x"` (shaped like x), `"y"` (shaped like f(x)) or `None`.
        order: 1 or 2.
        two_argument: whether `f(y, x)` functions (with `y=`) are allowed.
    """

    name: str
    value_form: str
    outputs: tuple[str, ...]
    tangents: Literal["x", "y"] | None
    order: int
    two_argument: bool


OPERATORS: dict[str, OperatorForms] = {
    forms.name: forms
    for forms in (
        OperatorForms("pushforward", "value_and_pushforward", ("value", "result"), "x", 1, True),
        OperatorForms("pullback", "value_and_pullback", ("value", "result"), "y", 1, True),
        OperatorForms("derivative", "value_and_derivative", ("value", "result"), None, 1, True),
        OperatorForms("gradient", "value_and_gradient", ("value", "result"), None, 1, False),
        OperatorForms("jacobian", "value_and_jacobian", ("value", "result"), None, 1, True),
        OperatorForms(
            "second_derivative",
            "value_derivative_and_second_derivative",
            ("value", "first", "result"),
            None,
            2,
            False,
        ),
        OperatorForms("hvp", "gradient_and_hvp", ("first", "result"), "x", 2, False),
        OperatorForms("hessian", "value_gradient_and_hessian", ("value", "first", "result"), None, 2, False),
    )
}


@dataclass(frozen=True, eq=False)
class Scenario:
    """`Scenario(operator, f, x, ...)`: one operator call with the results expected from it.

    Attributes:
        operator: the operator's name, a key of `OPERATORS` (`"gradient"`, `"hvp"`, ...).
        f: the function, `f(x, *contexts)` or, with `y`, `f(y, x, *contexts)` writing into `y`.
        x: the point (NumPy, JAX, torch array or Python float), or a tree of them (API.md
            §10: dicts, lists, tuples, `ad.Args`, static leaves).
        tangents: for pushforward, pullback and hvp: one array (tree) or a tuple of them (batched).
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed after `x`.
        y: the output buffer of a two-argument `f`.
        value: the expected `f(x)`, or `None` when unknown.
        first: the expected first-order derivative of a second-order operator (the derivative
            for `second_derivative`, the gradient for `hvp` and `hessian`), or `None`.
        result: the expected result of `ad.<operator>` (a tuple for a tuple of tangents), or
            `None`. Expected results are NumPy arrays, whatever kind `x` is, or trees of them
            shaped as anydiff returns them (`None` at static leaves).
        name: a short description of the family (`"vector-to-matrix-batched"`).
        second_point: the same scenario at another point (same function, kinds, shapes and
            dtypes; other values of `x`, tangents and contexts) where a prep built at `x` is
            reused. `None` lets `test_differentiation` derive one.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> from anydiff.testing import Scenario, test_differentiation
        >>> s = Scenario("gradient", lambda x: (x**2).sum(), np.array([1.0, 2.0]),
        ...              value=np.array(5.0), result=np.array([2.0, 4.0]), name="square")
        >>> [o.status for o in test_differentiation(ad.AutoFiniteDiff(), [s])]
        ['works']
    """

    operator: str
    f: Callable[..., Any]
    x: Any
    tangents: Any = None
    contexts: tuple[Any, ...] = ()
    y: Any = None
    value: Any = None
    first: Any = None
    result: Any = None
    name: str = ""
    second_point: Scenario | None = None

    def __post_init__(self) -> None:
        forms = OPERATORS.get(self.operator)
        if forms is None:
            raise ValueError(f"Scenario: `operator` must be one of {sorted(OPERATORS)}; got {self.operator!r}.")
        if (self.tangents is None) != (forms.tangents is None):
            needs = "needs `tangents`" if forms.tangents else "takes no `tangents`"
            raise ValueError(f"Scenario: {self.operator} {needs}; got tangents={self.tangents!r}.")
        if self.y is not None and not forms.two_argument:
            raise ValueError(
                f"Scenario: {self.operator} does not take two-argument functions `f(y, x)` "
                "(`y=`); only pushforward, pullback, derivative and jacobian do."
            )
        if not isinstance(self.contexts, tuple) or not all(isinstance(c, (Constant, Cache)) for c in self.contexts):
            raise TypeError(
                f"Scenario: `contexts` must be a tuple of `ad.Constant(...)` / `ad.Cache(...)`; got {self.contexts!r}."
            )

    @property
    def forms(self) -> OperatorForms:
        """How the scenario's operator is called."""
        return OPERATORS[self.operator]

    @property
    def label(self) -> str:
        """`"<operator>-<name>"`, as shown in tables and pytest ids."""
        return f"{self.operator}-{self.name}" if self.name else self.operator

    def __repr__(self) -> str:
        return f"Scenario({self.label})"

    def replace(self, **changes: Any) -> Scenario:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)


# -- the analytic problems ----------------------------------------------------------------------
#
# Each problem is a callable written on the array API plus its value, Jacobian (flattened to
# `(y.size, x.size)`) and, for scalar outputs, Hessian in NumPy. Constants inside `f` are built
# with `xp` in the dtype of `x` so that float32 stays float32 on every backend.


def _g(xp: Any, t: Any) -> Any:
    """The elementwise nonlinearity every default problem uses: sin(t) + t³/3."""
    return xp.sin(t) + t**3 / 3


def _dg(t: np.ndarray) -> np.ndarray:
    return np.cos(t) + t**2


def _d2g(t: np.ndarray) -> np.ndarray:
    return -np.sin(t) + 2 * t


def _pattern(xp: Any, size: int, dtype: Any, phase: float) -> Any:
    """A fixed vector of `size` values in [-1, 1] (no two alike), built with `xp`."""
    return xp.cos(xp.arange(size, dtype=dtype) * 0.7 + phase)


def _pattern_np(size: int, phase: float) -> np.ndarray:
    return np.cos(np.arange(size, dtype=np.float64) * 0.7 + phase)


@dataclass(frozen=True)
class Mixing:
    """`f(x) = L @ g(x)` reshaped to `shape`: an array output mixing every input.

    `g(t) = sin(t) + t³/3` elementwise and `L` a fixed dense `(y.size, x.size)` matrix, so the
    Jacobian `L diag(g'(x))` is dense and not square unless the shapes say so.
    """

    shape: tuple[int, ...]

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        m, n = math.prod(self.shape), math.prod(x.shape)
        mixing = xp.reshape(_pattern(xp, m * n, x.dtype, 0.3), (m, n))
        # `xp.matmul`, not `@`: TensorFlow's `@` refuses a matrix times a vector
        return xp.reshape(xp.matmul(mixing, xp.reshape(_g(xp, x), (n,))), self.shape)

    def _mixing(self, x: np.ndarray) -> np.ndarray:
        m, n = math.prod(self.shape), x.size
        return _pattern_np(m * n, 0.3).reshape(m, n)

    def value(self, x: np.ndarray) -> np.ndarray:
        return (self._mixing(x) @ _g(np, x).reshape(-1)).reshape(self.shape)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return self._mixing(x) * _dg(x).reshape(1, -1)

    def second_derivative(self, x: np.ndarray) -> np.ndarray:
        return (self._mixing(x) @ _d2g(x).reshape(-1)).reshape(self.shape)


@dataclass(frozen=True)
class Energy:
    """`f(x) = Σ w g(x) + (Σ v x)² / 2`: a scalar output with a dense Hessian.

    Gradient `w g'(x) + (v·x) v`, Hessian `diag(w g''(x)) + v vᵀ`.
    """

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        n = math.prod(x.shape)
        w = xp.reshape(_pattern(xp, n, x.dtype, 0.1) + 1.5, x.shape)
        v = xp.reshape(_pattern(xp, n, x.dtype, 1.2), x.shape)
        return xp.sum(w * _g(xp, x)) + xp.sum(v * x) ** 2 / 2

    @staticmethod
    def _weights(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _pattern_np(x.size, 0.1) + 1.5, _pattern_np(x.size, 1.2)

    def value(self, x: np.ndarray) -> np.ndarray:
        w, v = self._weights(x)
        return np.asarray(w @ _g(np, x.reshape(-1)) + (v @ x.reshape(-1)) ** 2 / 2)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        w, v = self._weights(x)
        flat = x.reshape(-1)
        return (w * _dg(flat) + (v @ flat) * v).reshape(1, -1)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        w, v = self._weights(x)
        return np.diag(w * _d2g(x.reshape(-1))) + np.outer(v, v)

    def second_derivative(self, x: np.ndarray) -> np.ndarray:
        return self.hessian(x).reshape(())


# -- sparse problems: banded, block, arrowhead and 2-D stencil structure ------------------------


def _pad(xp: Any, x: Any) -> Any:
    """`[0, x, 0]` for a vector `x` (no in-place writes, so it also runs under JAX)."""
    zero = xp.zeros((1,), dtype=x.dtype)
    return xp.concat([zero, x, zero])


def _pad_grid(xp: Any, u: Any) -> Any:
    """A 2-D array with a frame of zeros around it (Dirichlet boundary)."""
    r, c = u.shape
    rows = xp.zeros((1, c), dtype=u.dtype)
    u = xp.concat([rows, u, rows], axis=0)
    columns = xp.zeros((r + 2, 1), dtype=u.dtype)
    return xp.concat([columns, u, columns], axis=1)


def _grid_laplacian(shape: tuple[int, int]) -> np.ndarray:
    """The 5-point `4u - neighbours` operator with zero boundary, as a dense matrix."""
    r, c = shape
    n = r * c
    out = 4 * np.eye(n)
    for i in range(r):
        for j in range(c):
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= i + di < r and 0 <= j + dj < c:
                    out[i * c + j, (i + di) * c + j + dj] = -1
    return out


@dataclass(frozen=True)
class Banded:
    """`y_i = x_{i-1} x_i + sin(x_i) - x_{i+1}²`: a tridiagonal Jacobian."""

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        p = _pad(xp, x)
        return p[:-2] * x + xp.sin(x) - p[2:] ** 2

    def value(self, x: np.ndarray) -> np.ndarray:
        p = np.concatenate([[0.0], x, [0.0]])
        return p[:-2] * x + np.sin(x) - p[2:] ** 2

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        p = np.concatenate([[0.0], x, [0.0]])
        return np.diag(p[:-2] + np.cos(x)) + np.diag(x[1:], -1) + np.diag(-2 * x[1:], 1)


@dataclass(frozen=True)
class BlockDiagonal:
    """Blocks of `block` inputs mixed by one dense matrix `M`: `Y = sin(X) @ M` per block."""

    block: int = 3

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        b = self.block
        mixing = xp.reshape(_pattern(xp, b * b, x.dtype, 0.5) + 1.0, (b, b))
        return xp.reshape(xp.matmul(xp.sin(xp.reshape(x, (-1, b))), mixing), x.shape)

    def _mixing(self) -> np.ndarray:
        return (_pattern_np(self.block**2, 0.5) + 1.0).reshape(self.block, self.block)

    def value(self, x: np.ndarray) -> np.ndarray:
        return (np.sin(x.reshape(-1, self.block)) @ self._mixing()).reshape(x.shape)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        blocks = [self._mixing().T * np.cos(chunk).reshape(1, -1) for chunk in x.reshape(-1, self.block)]
        n = x.size
        out = np.zeros((n, n))
        for k, blk in enumerate(blocks):
            s = slice(k * self.block, (k + 1) * self.block)
            out[s, s] = blk
        return out


@dataclass(frozen=True)
class Arrowhead:
    """`y_0 = Σ sin(x)`, `y_i = x_i x_0 + x_i²`: a dense first row and column, and a diagonal."""

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        head = xp.reshape(xp.sum(xp.sin(x)), (1,))
        return xp.concat([head, x[1:] * x[0] + x[1:] ** 2])

    def value(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([[np.sum(np.sin(x))], x[1:] * x[0] + x[1:] ** 2])

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        out = np.diag(np.concatenate([[0.0], x[0] + 2 * x[1:]]))
        out[0, :] = np.cos(x)
        out[1:, 0] = x[1:]
        return out


@dataclass(frozen=True)
class Stencil:
    """`y = 4u - (up + down + left + right) + u³` on a 2-D grid `x` with a zero boundary."""

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        p = _pad_grid(xp, x)
        neighbours = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
        return 4 * x - neighbours + x**3

    def value(self, x: np.ndarray) -> np.ndarray:
        return (_grid_laplacian(x.shape) @ x.reshape(-1) + x.reshape(-1) ** 3).reshape(x.shape)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return _grid_laplacian(x.shape) + np.diag(3 * x.reshape(-1) ** 2)


@dataclass(frozen=True)
class BandedEnergy:
    """`f = Σ (x_{i+1} - x_i)⁴ / 4 + Σ cos(x)`: a tridiagonal Hessian."""

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        d = x[1:] - x[:-1]
        return xp.sum(d**4) / 4 + xp.sum(xp.cos(x))

    def value(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(np.sum(np.diff(x) ** 4) / 4 + np.sum(np.cos(x)))

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        d3 = np.concatenate([[0.0], np.diff(x) ** 3, [0.0]])
        return (d3[:-1] - d3[1:] - np.sin(x)).reshape(1, -1)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        d2 = 3 * np.diff(x) ** 2
        padded = np.concatenate([[0.0], d2, [0.0]])
        return np.diag(padded[:-1] + padded[1:] - np.cos(x)) - np.diag(d2, 1) - np.diag(d2, -1)


@dataclass(frozen=True)
class BlockEnergy:
    """`f = Σ_blocks (Σ_block x)² / 2 + Σ x⁴ / 12`: a block-diagonal Hessian."""

    block: int = 3

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        sums = xp.sum(xp.reshape(x, (-1, self.block)), axis=1)
        return xp.sum(sums**2) / 2 + xp.sum(x**4) / 12

    def value(self, x: np.ndarray) -> np.ndarray:
        sums = x.reshape(-1, self.block).sum(axis=1)
        return np.asarray(np.sum(sums**2) / 2 + np.sum(x**4) / 12)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        sums = np.repeat(x.reshape(-1, self.block).sum(axis=1), self.block)
        return (sums + x**3 / 3).reshape(1, -1)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        k = x.size // self.block
        return np.kron(np.eye(k), np.ones((self.block, self.block))) + np.diag(x**2)


@dataclass(frozen=True)
class ArrowheadEnergy:
    """`f = x_0 Σ_{i≥1} x_i² + Σ sin(x)`: an arrowhead Hessian."""

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        return x[0] * xp.sum(x[1:] ** 2) + xp.sum(xp.sin(x))

    def value(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x[0] * np.sum(x[1:] ** 2) + np.sum(np.sin(x)))

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        g = 2 * x[0] * x + np.cos(x)
        g[0] = np.sum(x[1:] ** 2) + np.cos(x[0])
        return g.reshape(1, -1)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        h = np.diag(2 * x[0] - np.sin(x))
        h[0, 0] = -np.sin(x[0])
        h[0, 1:] = h[1:, 0] = 2 * x[1:]
        return h


@dataclass(frozen=True)
class StencilEnergy:
    """`f = Σ_edges (u_a - u_b)² / 2 + Σ u⁴ / 4` on a 2-D grid: the 5-point stencil Hessian."""

    def __call__(self, x: Any) -> Any:
        xp = namespace(x)
        p = _pad_grid(xp, x)
        vertical = p[1:, 1:-1] - p[:-1, 1:-1]
        horizontal = p[1:-1, 1:] - p[1:-1, :-1]
        return (xp.sum(vertical**2) + xp.sum(horizontal**2)) / 2 + xp.sum(x**4) / 4

    def value(self, x: np.ndarray) -> np.ndarray:
        u = x.reshape(-1)
        return np.asarray(u @ _grid_laplacian(x.shape) @ u / 2 + np.sum(u**4) / 4)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        u = x.reshape(-1)
        return (_grid_laplacian(x.shape) @ u + u**3).reshape(1, -1)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return _grid_laplacian(x.shape) + np.diag(3 * x.reshape(-1) ** 2)


# -- tree problems: a dict with a static leaf, several arguments, a tree-valued output ----------
#
# Their `jacobian` and `hessian` are flat, in anydiff's leaf order (dict keys sorted); `point`
# gives the tree `x` at a phase.


@dataclass(frozen=True)
class Coupled:
    """`f = Σ_ij sin(W_ij) b_j + n Σ b² / 2 + (Σ W)² / 2`, a scalar of a tree.

    `x` is `{"w": W (2×3), "b": b (3,), "n": 3}` with `n` a static int, or with `args=True`,
    `ad.Args(b, W)` with `n = 2`; either way the leaf order is `b`, then `W`. Gradient
    `∂b_j = Σ_i sin(W_ij) + n b_j`, `∂W_ij = cos(W_ij) b_j + Σ W`; the Hessian couples `b_j` and
    `W_ij` through `cos(W_ij)`.
    """

    args: bool = False

    def __call__(self, *x: Any) -> Any:
        b, w, n = (x[0], x[1], 2) if self.args else (x[0]["b"], x[0]["w"], x[0]["n"])
        xp = namespace(w)
        return xp.sum(xp.sin(w) * b) + n * xp.sum(b**2) / 2 + xp.sum(w) ** 2 / 2

    def point(self, phase: float) -> Any:
        b, w = _values((3,), phase), _values((2, 3), phase + 0.4)
        return Args(b, w) if self.args else {"w": w, "b": b, "n": 3}

    def _parts(self, x: Any) -> tuple[np.ndarray, np.ndarray, int]:
        return (x[0], x[1], 2) if self.args else (x["b"], x["w"], x["n"])

    def value(self, x: Any) -> np.ndarray:
        b, w, n = self._parts(x)
        return np.asarray(np.sum(np.sin(w) * b) + n * np.sum(b**2) / 2 + np.sum(w) ** 2 / 2)

    def jacobian(self, x: Any) -> np.ndarray:
        b, w, n = self._parts(x)
        return np.concatenate([np.sin(w).sum(axis=0) + n * b, (np.cos(w) * b + w.sum()).reshape(-1)])[None, :]

    def hessian(self, x: Any) -> np.ndarray:
        b, w, n = self._parts(x)
        rows, cols = w.shape
        out = np.zeros((cols + w.size, cols + w.size))
        out[:cols, :cols] = n * np.eye(cols)
        for i in range(rows):
            for j in range(cols):
                k = cols + i * cols + j  # W_ij in the flat layout
                out[j, k] = out[k, j] = np.cos(w[i, j])
        out[cols:, cols:] = 1.0 + np.diag(-(np.sin(w) * b).reshape(-1))
        return out


@dataclass(frozen=True)
class Branches:
    """A tree-valued output: `{"r": (v₀v₁, u₀ + v₀²), "s": v₀ Σ u², "t": sin(u) v₁}`.

    `x` is `{"u": u (3,), "v": v (2,)}`, or with `vector=True` one array of 5, `u = x[:3]`,
    `v = x[3:]`; either way the flat layout is `u`, then `v`. The output's leaf order is
    `r[0]`, `r[1]`, `s`, `t`.
    """

    vector: bool = False

    def _split(self, x: Any) -> tuple[Any, Any]:
        return (x[:3], x[3:]) if self.vector else (x["u"], x["v"])

    def __call__(self, x: Any) -> Any:
        u, v = self._split(x)
        xp = namespace(u)
        return {"s": v[0] * xp.sum(u**2), "t": xp.sin(u) * v[1], "r": (v[0] * v[1], u[0] + v[0] ** 2)}

    def point(self, phase: float) -> Any:
        x = _values((5,), phase)
        return x if self.vector else {"u": x[:3], "v": x[3:]}

    def value(self, x: Any) -> Any:
        u, v = self._split(x)
        return {
            "s": np.asarray(v[0] * np.sum(u**2)),
            "t": np.sin(u) * v[1],
            "r": (np.asarray(v[0] * v[1]), np.asarray(u[0] + v[0] ** 2)),
        }

    def jacobian(self, x: Any) -> np.ndarray:
        u, v = self._split(x)
        jac = np.zeros((6, 5))
        jac[0, 3:] = v[1], v[0]  # r[0]
        jac[1, 0], jac[1, 3] = 1.0, 2 * v[0]  # r[1]
        jac[2, :3], jac[2, 3] = 2 * v[0] * u, np.sum(u**2)  # s
        jac[3:, :3] = np.diag(np.cos(u) * v[1])  # t
        jac[3:, 4] = np.sin(u)
        return jac


# -- building scenarios from problems -----------------------------------------------------------


def _values(shape: tuple[int, ...], phase: float) -> np.ndarray:
    """Deterministic, distinct values in about [-0.5, 1.1]."""
    n = math.prod(shape)
    return (0.3 + 0.8 * np.sin(np.arange(n) * 1.1 + phase)).reshape(shape)


def _point(shape: tuple[int, ...] | None, phase: float) -> Any:
    """A point: a Python float for `shape=None`, a float64 array otherwise."""
    return float(_values((), phase)) if shape is None else _values(shape, phase)


def _leaf_paths(tree: Any, path: tuple = ()) -> list[tuple]:
    """The paths (keys and indices from the root) of the differentiable leaves of a NumPy tree.

    In anydiff's leaf order, written out here as an independent reference: depth first, dict keys
    sorted; floating arrays and Python floats are differentiable, `None` and other leaves are not.
    A bare array is the one leaf at path `()`.
    """
    if isinstance(tree, dict):
        return [p for key in sorted(tree) for p in _leaf_paths(tree[key], (*path, key))]
    if isinstance(tree, (tuple, list, Args)):
        return [p for i, item in enumerate(tree) for p in _leaf_paths(item, (*path, i))]
    if isinstance(tree, float) or (isinstance(tree, np.ndarray) and tree.dtype.kind == "f"):
        return [path]
    return []


def _at(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _rebuild(template: Any, values: dict[tuple, Any], path: tuple = ()) -> Any:
    """`template`'s structure with `values[path]` at those paths and `None` at every other leaf
    (an `ad.Args` becomes a tuple, as in results)."""
    if path in values:
        return values[path]
    if isinstance(template, dict):
        return {key: _rebuild(item, values, (*path, key)) for key, item in template.items()}
    if isinstance(template, (tuple, list, Args)):
        items = [_rebuild(item, values, (*path, i)) for i, item in enumerate(template)]
        return items if isinstance(template, list) else tuple(items)
    return None


class _Leaves:
    """The flat layout of a NumPy tree (or array): its differentiable leaves one after the other,
    each in C order; what a closed-form flat Jacobian or Hessian is written in."""

    def __init__(self, template: Any) -> None:
        self.template = template
        self.paths = _leaf_paths(template)
        self.shapes = [np.shape(_at(template, p)) for p in self.paths]
        ends = np.cumsum([0] + [math.prod(shape) for shape in self.shapes]).tolist()
        self.slices = [slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)]

    def flat(self, tree: Any) -> np.ndarray:
        """The leaves of `tree` (shaped like the template) as one float64 vector."""
        return np.concatenate([np.asarray(_at(tree, p), dtype=np.float64).reshape(-1) for p in self.paths])

    def build(self, values: list) -> Any:
        """A result shaped like the template: `values` at its leaves, `None` at static ones."""
        return _rebuild(self.template, dict(zip(self.paths, values, strict=True)))

    def cut(self, v: np.ndarray) -> Any:
        """The flat vector `v` cut back into a result shaped like the template."""
        return self.build([v[s].reshape(shape) for s, shape in zip(self.slices, self.shapes, strict=True)])

    def blocks(self, m: np.ndarray, cols: _Leaves) -> Any:
        """A flat matrix as nested blocks `m[p][q]` (outer level this tree, inner level `cols`)."""
        return self.build(
            [
                cols.build([m[r, c].reshape(rs + cs) for c, cs in zip(cols.slices, cols.shapes, strict=True)])
                for r, rs in zip(self.slices, self.shapes, strict=True)
            ]
        )


def _expected(problem: Any, operator: str, x: Any, tangents: Any, batched: bool) -> dict[str, Any]:
    """The closed-form `value`, `first` and `result` of `operator` at `x`, as NumPy float64.

    `x` and `f`'s value may be trees (problems with a `point` method): the problem's Jacobian
    and Hessian are flat, in the leaf order of `_leaf_paths`, and are cut into trees here.
    """
    tree = hasattr(problem, "point")
    xa = x if tree else np.asarray(x, dtype=np.float64)
    value = problem.value(xa) if tree else np.asarray(problem.value(xa), dtype=np.float64)
    xs, ys = _Leaves(xa), _Leaves(value)
    jac = problem.jacobian(xa)

    def each(product: Callable[[Any], Any]) -> Any:
        return tuple(product(t) for t in tangents) if batched else product(tangents)

    gradient = xs.cut(jac[0]) if ys.shapes == [()] and ys.paths == [()] else None
    derivative = ys.cut(jac[:, 0]) if xs.shapes == [()] and xs.paths == [()] else None
    first = None
    if operator == "pushforward":
        result = each(lambda t: ys.cut(jac @ xs.flat(t)))
    elif operator == "pullback":
        result = each(lambda u: xs.cut(ys.flat(u) @ jac))
    elif operator == "derivative":
        result = derivative
    elif operator == "gradient":
        result = gradient
    elif operator == "jacobian":
        result = ys.blocks(jac, xs)
    elif operator == "second_derivative":
        first, result = derivative, np.asarray(problem.second_derivative(xa)).reshape(value.shape)
    else:
        hessian = problem.hessian(xa)
        first = gradient
        if operator == "hvp":
            result = each(lambda t: xs.cut(hessian @ xs.flat(t)))
        else:
            result = xs.blocks(hessian, xs)
    return {"value": value, "first": first, "result": result}


def _tangents(template: Any, phase: float, batch: int) -> Any:
    """One tangent shaped like `template` (`batch=0`; a Python float for a float), or a tuple of
    `batch` of them. At static leaves of a tree: `None`."""
    if batch:
        return tuple(_tangents(template, phase + 0.9 * i, 0) for i in range(batch))
    if type(template) is float:
        return _point(None, phase)
    leaves = _Leaves(template)
    return leaves.build([np.cos(_values(shape, phase + 0.37 * i) * 3.0) for i, shape in enumerate(leaves.shapes)])


def _make(
    operator: str,
    problem: Any,
    shape: tuple[int, ...] | None,
    name: str,
    batch: int = 0,
    phases: tuple[float, float] = (0.0, 2.0),
) -> Scenario:
    """A scenario at `x` whose `second_point` is the same problem at another point.

    `shape=None` means a Python float `x`, or for a tree problem the tree of `problem.point`.
    """
    forms = OPERATORS[operator]
    built = None
    for phase in reversed(phases):
        x = problem.point(phase) if hasattr(problem, "point") else _point(shape, phase)
        tangents = None
        if forms.tangents == "x":
            tangents = _tangents(x, phase + 0.5, batch)
        elif forms.tangents == "y":
            value = problem.value(x if hasattr(problem, "point") else np.asarray(x, dtype=np.float64))
            tangents = _tangents(value, phase + 0.5, batch)
        built = Scenario(
            operator,
            problem,
            x,
            tangents,
            name=name,
            second_point=built,
            **_expected(problem, operator, x, tangents, batch > 0),
        )
    assert built is not None
    return built


# -- modifiers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scaled:
    """`g(..., a) = a * f(...)`: the constant `a` is the last argument.

    Two-argument (`g(y, x, ..., a)`): `f` writes into `y`, which is then scaled in place.
    """

    f: Callable[..., Any]
    two_argument: bool = False

    def __call__(self, *args: Any) -> Any:
        *rest, a = args
        if self.two_argument:
            self.f(*rest)
            rest[0][...] = a * rest[0]
            return None
        return a * self.f(*rest)


@dataclass(frozen=True)
class Cached:
    """`g(x, ..., cache)`: copies `x` into the cache (the last argument) and evaluates `f` on it."""

    f: Callable[..., Any]
    two_argument: bool = False

    def __call__(self, *args: Any) -> Any:
        *rest, cache = args
        position = 1 if self.two_argument else 0  # where `x` is
        cache[...] = rest[position]
        rest[position] = cache
        return self.f(*rest)


@dataclass(frozen=True)
class Closure:
    """`g(*args) = f(*args, *values)`: `f` with its trailing arguments captured."""

    f: Callable[..., Any]
    values: tuple[Any, ...]

    def __call__(self, *args: Any) -> Any:
        return self.f(*args, *self.values)


@dataclass(frozen=True)
class Writer:
    """`g(y, x, *contexts)`: writes `f(x, *contexts)` into the buffer `y`."""

    f: Callable[..., Any]

    def __call__(self, y: Any, x: Any, *contexts: Any) -> None:
        y[...] = self.f(x, *contexts)


def _map_tree(fn: Callable[[Any], Any], value: Any) -> Any:
    """`fn` applied to every array and float of a point, tangent or result: through tuples (a
    batch of tangents, `ad.Args` results), lists, dicts and `ad.Args`; `None` and other leaves
    (a tree's static ints and strings) stay."""
    if isinstance(value, Args):
        return Args(*(_map_tree(fn, v) for v in value))
    if isinstance(value, list):
        return [_map_tree(fn, v) for v in value]
    if isinstance(value, tuple):
        return tuple(_map_tree(fn, v) for v in value)
    if isinstance(value, dict):
        return {key: _map_tree(fn, v) for key, v in value.items()}
    if isinstance(value, (float, np.generic)) or array_kind(value) is not None:
        return fn(value)
    return value


def _apply(scenario: Scenario, at: Callable[[Scenario, bool], Scenario]) -> Scenario:
    """`at(point, is_second)` applied to the scenario and to its second point."""
    second = scenario.second_point
    return at(scenario, False).replace(second_point=None if second is None else at(second, True))


def _scale(value: Any, a: Any) -> Any:
    return _map_tree(lambda v: np.asarray(np.asarray(v) * a, dtype=np.asarray(v).dtype), value)


def _scaled_results(s: Scenario, a: Any) -> dict[str, Any]:
    return {"value": _scale(s.value, a), "first": _scale(s.first, a), "result": _scale(s.result, a)}


def with_constant(scenario: Scenario, value: Any = 2.0, second_value: Any = None) -> Scenario:
    """`with_constant(scenario, value=2.0) -> Scenario`: `a * f` with `a` passed as `ad.Constant(a)`.

    The constant is the last context. At the second point it is `second_value` (by default
    `-0.75 * value`), which checks that a prep stays valid when a constant changes. A 0-d NumPy
    array in `x`'s dtype exercises the conversion of array contexts to the backend's arrays.

    Example:
        >>> from anydiff.testing import default_scenarios, with_constant
        >>> with_constant(default_scenarios()[0]).label
        'pushforward-scalar-to-scalar-constant'
    """
    if second_value is None:
        second_value = value * -0.75
    f = Scaled(scenario.f, two_argument=scenario.y is not None)

    def at(s: Scenario, second: bool) -> Scenario:
        a = second_value if second else value
        return s.replace(f=f, contexts=(*s.contexts, Constant(a)), name=f"{s.name}-constant", **_scaled_results(s, a))

    return _apply(scenario, at)


def with_closure(scenario: Scenario, value: float = 2.0) -> Scenario:
    """`with_closure(scenario, value=2.0) -> Scenario`: `a * f` with `a` captured in a closure.

    The constant does not change at the second point: a closure is part of the function, and a
    prep is tied to its function.
    """
    f = Closure(Scaled(scenario.f, two_argument=scenario.y is not None), (value,))

    def at(s: Scenario, second: bool) -> Scenario:
        return s.replace(f=f, name=f"{s.name}-closure", **_scaled_results(s, value))

    return _apply(scenario, at)


def _like_x(buffer: np.ndarray, x: Any) -> Any:
    """`buffer` converted to the array kind of `x` (NumPy for a Python float)."""
    kind = array_kind(x)
    numpy_kind = array_kind(buffer)
    if kind is None or kind is numpy_kind:
        return buffer
    return converter(numpy_kind, kind)(buffer)  # type: ignore[arg-type, misc]


def _dtype_of(x: Any) -> np.dtype:
    return np.dtype(str(np.asarray(x).dtype) if isinstance(x, float) else str(x.dtype).removeprefix("torch."))


def with_cache(scenario: Scenario) -> Scenario:
    """`with_cache(scenario) -> Scenario`: `f` copies `x` into an `ad.Cache` and reads it back.

    The cache is the last context. Only backends whose arrays can be written in place run these;
    `test_differentiation` reports the others (JAX) as unsupported.
    """
    f = Cached(scenario.f, two_argument=scenario.y is not None)

    def at(s: Scenario, second: bool) -> Scenario:
        buffer = _like_x(np.zeros(np.shape(s.x), dtype=_dtype_of(s.x)), s.x)
        return s.replace(f=f, contexts=(*s.contexts, Cache(buffer)), name=f"{s.name}-cache")

    return _apply(scenario, at)


def with_output_buffer(scenario: Scenario) -> Scenario:
    """`with_output_buffer(scenario) -> Scenario`: the two-argument form `f(y, x)`, passed with `y=`.

    For pushforward, pullback, derivative and jacobian; the buffer is shaped like the expected
    value (or like `f(x)` when no value is given) and of `x`'s kind and dtype.
    """
    if not scenario.forms.two_argument:
        raise ValueError(
            f"with_output_buffer: {scenario.operator} does not take two-argument functions; only "
            "pushforward, pullback, derivative and jacobian do."
        )
    if scenario.y is not None:
        raise ValueError(f"with_output_buffer: {scenario!r} already has an output buffer `y`.")
    f = Writer(scenario.f)

    def at(s: Scenario, second: bool) -> Scenario:
        if s.value is not None:
            shape = np.shape(s.value)
        else:
            shape = tuple(s.f(s.x, *(c.value for c in s.contexts)).shape)
        y = _like_x(np.zeros(shape, dtype=_dtype_of(s.x)), s.x)
        return s.replace(f=f, y=y, name=f"{s.name}-inplace")

    return _apply(scenario, at)


def with_dtype(scenario: Scenario, dtype: Any) -> Scenario:
    """`with_dtype(scenario, "float32") -> Scenario`: the scenario in another floating dtype.

    Converts `x`, tangents, the output buffer, floating NumPy arrays among the contexts and the
    expected results. For NumPy scenarios: apply it before `with_kind`.
    """
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"with_dtype: `dtype` must be float32 or float64; got {dt}.")

    def cast(v: Any) -> Any:
        if isinstance(v, float):
            return np.asarray(v, dtype=dt)
        if not isinstance(v, (np.ndarray, np.generic)):
            raise TypeError(
                f"with_dtype: scenarios must hold NumPy arrays; got {type(v).__name__}. Apply "
                "`with_dtype` before `with_kind`."
            )
        return np.asarray(v).astype(dt) if np.asarray(v).dtype.kind == "f" else v  # static leaves stay

    def cast_context(c: Any) -> Any:
        v = c.value
        if isinstance(v, (np.ndarray, np.generic)) and np.issubdtype(np.asarray(v).dtype, np.floating):
            return type(c)(np.asarray(v).astype(dt))
        return c

    def at(s: Scenario, second: bool) -> Scenario:
        return s.replace(
            x=_map_tree(cast, s.x),
            tangents=_map_tree(cast, s.tangents),
            y=_map_tree(cast, s.y),
            contexts=tuple(cast_context(c) for c in s.contexts),
            value=_map_tree(cast, s.value),
            first=_map_tree(cast, s.first),
            result=_map_tree(cast, s.result),
            name=f"{s.name}-{dt.name}",
        )

    return _apply(scenario, at)


def with_kind(scenario: Scenario, kind: str) -> Scenario:
    """`with_kind(scenario, "torch") -> Scenario`: `x`, tangents and buffer as another kind of array.

    Contexts stay NumPy (anydiff converts them) and expected results stay NumPy; the results
    must come back as the new kind. Imports the array library.
    """
    import importlib

    kinds = array_kinds()
    if kind not in kinds:
        raise ValueError(f"with_kind: `kind` must be one of {sorted(kinds)}; got {kind!r}.")
    importlib.import_module(kinds[kind].module)
    to_kind = converter(kinds["numpy"], kinds[kind]) or (lambda v: v)

    def convert(v: Any) -> Any:
        if not isinstance(v, (float, np.ndarray, np.generic)):
            raise TypeError(f"with_kind: scenarios must hold NumPy arrays; got {type(v).__name__}.")
        return to_kind(np.asarray(v))

    def at(s: Scenario, second: bool) -> Scenario:
        return s.replace(
            x=_map_tree(convert, s.x),
            tangents=_map_tree(convert, s.tangents),
            y=_map_tree(convert, s.y),
            name=f"{s.name}-{kind}",
        )

    return _apply(scenario, at)


# -- the families -------------------------------------------------------------------------------

_X_SHAPES = {"scalar": (), "vector": (5,), "matrix": (2, 3)}
_Y_SHAPES = {"scalar": (), "vector": (4,), "matrix": (3, 2)}
_KINDS3 = ("scalar", "vector", "matrix")


def _family(operator: str, x_kind: str, y_kind: str, batch: int = 0) -> Scenario:
    """The default problem of `operator` from an `x_kind` input to a `y_kind` output."""
    problem = Energy() if y_kind == "scalar" else Mixing(_Y_SHAPES[y_kind])
    if operator in ("derivative", "second_derivative"):
        shape, name = None, y_kind  # a Python float `x`, as users call `derivative`
    elif operator in ("gradient", "hvp", "hessian"):
        shape, name = _X_SHAPES[x_kind], x_kind
    else:
        shape, name = _X_SHAPES[x_kind], f"{x_kind}-to-{y_kind}"
    return _make(operator, problem, shape, name + ("-batched" if batch else ""), batch)


def default_scenarios() -> list[Scenario]:
    """`default_scenarios() -> list[Scenario]`: every operator on scalar, vector and matrix data.

    First order: pushforward and pullback for every input/output kind, derivative (of a Python
    float), gradient, jacobian; second order: second_derivative, hvp, hessian. Then variants:
    batched tangents (tuples of 3), two-argument functions `f(y, x)`, an `ad.Constant` (a 0-d
    NumPy array), an `ad.Cache`, a closure, and float32. All NumPy; `with_kind` gives the others.
    Vectors have 5 elements (outputs 4), matrices are 2×3 (outputs 3×2).

    Example:
        >>> from anydiff.testing import default_scenarios
        >>> scenarios = default_scenarios()
        >>> sorted({s.operator for s in scenarios})[:3]
        ['derivative', 'gradient', 'hessian']
        >>> next(s for s in scenarios if s.label == "gradient-vector").result.shape
        (5,)
    """
    base = [
        *(_family(op, x, y) for op in ("pushforward", "pullback") for x in _KINDS3 for y in _KINDS3),
        *(_family("derivative", "scalar", y) for y in _KINDS3),
        *(_family("gradient", x, "scalar") for x in _KINDS3),
        *(_family("jacobian", x, y) for x in ("vector", "matrix") for y in ("vector", "matrix")),
        *(_family("second_derivative", "scalar", y) for y in _KINDS3),
        *(_family("hvp", x, "scalar") for x in _KINDS3),
        *(_family("hessian", x, "scalar") for x in ("vector", "matrix")),
    ]
    batched = [
        _family("pushforward", "vector", "vector", 3),
        _family("pushforward", "scalar", "matrix", 3),
        _family("pushforward", "matrix", "scalar", 3),
        _family("pullback", "vector", "vector", 3),
        _family("pullback", "scalar", "matrix", 3),
        _family("pullback", "matrix", "vector", 3),
        _family("hvp", "vector", "scalar", 3),
        _family("hvp", "matrix", "scalar", 3),
    ]
    by_label = {s.label: s for s in base + batched}

    def pick(*labels: str) -> list[Scenario]:
        return [by_label[label] for label in labels]

    def constant(s: Scenario) -> Scenario:
        return with_constant(s, np.asarray(2.0, dtype=_dtype_of(s.x)))

    two_argument = [
        with_output_buffer(s)
        for s in pick(
            "pushforward-vector-to-vector",
            "pushforward-vector-to-vector-batched",
            "pullback-matrix-to-matrix",
            "derivative-matrix",
            "jacobian-vector-to-matrix",
            "jacobian-matrix-to-vector",
        )
    ]
    with_constants = [
        constant(s)
        for s in pick(
            "pushforward-matrix-to-scalar",
            "pullback-scalar-to-matrix-batched",
            "derivative-vector",
            "gradient-vector",
            "jacobian-vector-to-vector",
            "second_derivative-vector",
            "hvp-vector",
            "hessian-matrix",
        )
    ] + [constant(with_output_buffer(by_label["jacobian-vector-to-matrix"]))]
    with_caches = [
        with_cache(s)
        for s in pick(
            "pushforward-vector-to-vector",
            "pullback-scalar-to-vector",
            "gradient-matrix",
            "jacobian-matrix-to-matrix",
            "hessian-vector",
        )
    ] + [with_cache(with_output_buffer(by_label["pullback-matrix-to-matrix"]))]
    closures = [
        with_closure(s)
        for s in pick(
            "pushforward-vector-to-matrix", "gradient-vector", "jacobian-vector-to-vector", "hvp-vector-batched"
        )
    ]
    float32 = [
        with_dtype(s, "float32")
        for s in pick(
            "pullback-vector-to-vector-batched",
            "derivative-vector",
            "gradient-vector",
            "jacobian-matrix-to-vector",
            "hvp-vector",
            "hessian-matrix",
        )
    ]
    return base + batched + two_argument + with_constants + with_caches + closures + float32


def tree_scenarios() -> list[Scenario]:
    """`tree_scenarios() -> list[Scenario]`: trees of arrays as inputs and outputs (API.md §10).

    `x` a dict with a static int leaf (`{"w": 2×3, "b": 3, "n": 3}`: gradient, hvp, hessian,
    and the gradient in float32), `ad.Args` of two arrays (gradient, hvp with one and with a
    batch of tangents, hessian), and a dict-valued `f` (`{"r": (·, ·), "s": ·, "t": 3}`) of a
    dict `x` (jacobian, pushforward, pullback) and of a vector `x` (jacobian, pullback). The
    expected results are trees: `None` at static leaves, tuples for `ad.Args`, nested
    `J[p][q]` / `H[p][q]`. All NumPy; `with_kind` gives the others.

    Example:
        >>> from anydiff.testing import tree_scenarios
        >>> s = next(s for s in tree_scenarios() if s.label == "gradient-dict-static")
        >>> sorted(s.x), s.result["n"], s.result["w"].shape
        (['b', 'n', 'w'], None, (2, 3))
    """
    static, args = Coupled(), Coupled(args=True)
    return [
        _make("gradient", static, None, "dict-static"),
        _make("hvp", static, None, "dict-static"),
        _make("hessian", static, None, "dict-static"),
        with_dtype(_make("gradient", static, None, "dict-static"), "float32"),
        _make("gradient", args, None, "args"),
        _make("hvp", args, None, "args"),
        _make("hvp", args, None, "args-batched", 2),
        _make("hessian", args, None, "args"),
        _make("jacobian", Branches(), None, "dict-to-dict"),
        _make("pushforward", Branches(), None, "dict-to-dict"),
        _make("pullback", Branches(), None, "dict-to-dict"),
        _make("jacobian", Branches(vector=True), None, "vector-to-dict"),
        _make("pullback", Branches(vector=True), None, "vector-to-dict-batched", 2),
    ]


def comparison_scenarios(size: int = 10) -> list[Scenario]:
    """`comparison_scenarios(size=10) -> list[Scenario]`: one scenario per operator, vectors of `size`.

    What `anydiff compare` runs without a function of the user's. The functions cost O(size) so
    that times measure differentiation: a tridiagonal map for pushforward, pullback and jacobian,
    `Energy` (dense Hessian) for gradient, hvp and hessian, a scalar-to-vector map for the
    derivatives.
    """
    n = (size,)
    return [
        _make("pushforward", Banded(), n, "banded"),
        _make("pullback", Banded(), n, "banded"),
        _make("derivative", Mixing(n), None, "scalar-to-vector"),
        _make("gradient", Energy(), n, "energy"),
        _make("jacobian", Banded(), n, "banded"),
        _make("second_derivative", Mixing(n), None, "scalar-to-vector"),
        _make("hvp", Energy(), n, "energy"),
        _make("hessian", Energy(), n, "energy"),
    ]


def sparse_scenarios(size: int = 12) -> list[Scenario]:
    """`sparse_scenarios(size=12) -> list[Scenario]`: sparse Jacobians and Hessians, dense expected.

    Jacobians: tridiagonal (`Banded`), block diagonal with 3×3 blocks (`BlockDiagonal`),
    arrowhead (`Arrowhead`), 5-point stencil on a 2-D grid (`Stencil`, matrix `x`); Hessians:
    the same four structures (`BandedEnergy`, `BlockEnergy`, `ArrowheadEnergy`,
    `StencilEnergy`). `size` is the number of inputs (rounded down to a multiple of 3 for the
    blocks, to the nearest grid `r × c` for the stencils). With an `ad.AutoSparse` backend the
    results are sparse `(y.size, x.size)` matrices and are compared densified.

    Example:
        >>> from anydiff.testing import sparse_scenarios
        >>> [s.label for s in sparse_scenarios()][:2]
        ['jacobian-banded', 'jacobian-block']
    """
    if size < 6:
        raise ValueError(f"sparse_scenarios: `size` must be at least 6; got {size}.")
    rows = math.isqrt(size)
    grid, blocks = (rows, size // rows), (3 * (size // 3),)
    n = (size,)
    return [
        _make("jacobian", Banded(), n, "banded"),
        _make("jacobian", BlockDiagonal(), blocks, "block"),
        _make("jacobian", Arrowhead(), n, "arrowhead"),
        _make("jacobian", Stencil(), grid, "stencil"),
        _make("hessian", BandedEnergy(), n, "banded"),
        _make("hessian", BlockEnergy(), blocks, "block"),
        _make("hessian", ArrowheadEnergy(), n, "arrowhead"),
        _make("hessian", StencilEnergy(), grid, "stencil"),
    ]
