"""SciPy integration: the callables `scipy.optimize` wants, and Krylov-ready linear operators.

Everything here takes and returns writable NumPy float64 arrays, whatever backend does the work
(JAX results are not float32, read-only or JAX arrays: the dtype trouble of jax#2031 cannot
happen, and solvers may update results in place), and prepares each operator once, on first use,
for the shape of `x0`.

A tree `x0` (a dict of parameters, `ad.Args(a, b)`; API.md section 10) is raveled: SciPy sees the
flat vector of its differentiable leaves, `f` the tree. `Objective.unravel` / `Residuals.unravel`
turn a flat solution back into the tree, and `minimize`'s result has it as `x_tree`.

Example:
    >>> import numpy as np, scipy.optimize, anydiff as ad
    >>> from anydiff.scipy import Objective
    >>> def rosenbrock(x):
    ...     return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()
    >>> objective = Objective(rosenbrock, ad.AutoFiniteDiff(), np.zeros(3))
    >>> result = scipy.optimize.minimize(objective.fun_and_jac, np.zeros(3), jac=True, method="BFGS")
    >>> np.round(result.x, 3)
    array([1., 1., 1.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._core.arrays import ArrayLike, array_kind
from ._core.prepare import evaluate
from ._core.trees import Unravel, flat_problem
from .first_order.gradient import prepare_gradient, value_and_gradient
from .first_order.jacobian import jacobian, prepare_jacobian
from .first_order.pullback import prepare_pullback, pullback
from .first_order.pushforward import prepare_pushforward, pushforward
from .second_order.hessian import hessian, prepare_hessian
from .second_order.hvp import hvp, prepare_hvp

if TYPE_CHECKING:  # SciPy is imported on first use
    import scipy.optimize
    import scipy.sparse
    import scipy.sparse.linalg

    from ._core.backend import AbstractBackend
    from ._core.contexts import Context

__all__ = ["Objective", "Residuals", "hessian_operator", "jacobian_operator", "minimize"]

# Methods of `scipy.optimize.minimize` that use second derivatives, and which form they prefer:
# a Hessian-vector product is cheaper than the dense Hessian wherever the method accepts one.
_HESSP_METHODS = {"newton-cg", "trust-ncg", "trust-krylov"}
_HESS_METHODS = {"dogleg", "trust-exact", "trust-constr"}


def _as_float64(x: Any, what: str) -> np.ndarray:
    kind = array_kind(x)
    a = kind.to_numpy(x) if kind is not None else np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"anydiff.scipy: `{what}` must be a real array; got dtype {a.dtype}.")
    return np.array(a, dtype=np.float64)


def _flat(f: Callable[..., Any], x: Any, what: str) -> tuple[Callable[..., Any], np.ndarray, Unravel | None]:
    """`flat_problem` (a tree `x` raveled), with the point as a float64 NumPy vector."""
    f, x, unravel = flat_problem(f, x, f"anydiff.scipy ({what})")
    return f, _as_float64(x, what), unravel


class _Lazy:
    """A prep built on first use (not every SciPy method needs every operator)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make, self.prep = make, None

    def __call__(self) -> Any:
        if self.prep is None:
            self.prep = self.make()
        return self.prep


class Objective:
    """`Objective(f, backend, x0, *contexts)`: `fun`, `jac`, `hess`, `hessp` for `scipy.optimize.minimize`.

    Args:
        f: the scalar function to minimise, `f(x, *contexts) -> y`.
        backend: the backend object that differentiates it.
        x0: a point with the shape the optimiser will use (1-D).
        contexts: `ad.Constant(...)` arguments passed on to `f`.

    `fun_and_jac` (with `jac=True`) is the efficient route: one call gives both. `fun` and `jac`
    called separately at the same point share one evaluation (the last point is remembered).
    For a tree `x0`, every method takes the flat vector (`x0` raveled: `objective.x0`), and
    `objective.unravel(x)` gives the tree of a flat point (`None` for an array `x0`).
    """

    def __init__(self, f: Callable[..., Any], backend: AbstractBackend, x0: ArrayLike, *contexts: Context) -> None:
        f, x0, self.unravel = _flat(f, x0, "x0")
        self.f, self.backend, self.contexts, self.x0 = f, backend, contexts, x0
        self._gradient = prepare_gradient(f, backend, x0, *contexts)
        self._hvp = _Lazy(lambda: prepare_hvp(f, backend, x0, np.zeros_like(x0), *contexts))
        self._hessian = _Lazy(lambda: prepare_hessian(f, backend, x0, *contexts))
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None

    def fun_and_jac(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """`fun_and_jac(x) -> (f(x), ∇f(x))`, for `minimize(..., jac=True)`."""
        last = self._last
        if last is not None and np.array_equal(last[0], x):
            return last[1], last[2]
        x = np.asarray(x, dtype=np.float64)
        y, g = value_and_gradient(self.f, self.backend, x, *self.contexts, prep=self._gradient)
        result = (float(y), np.array(g, dtype=np.float64))
        self._last = (x.copy(), *result)
        return result

    def fun(self, x: np.ndarray) -> float:
        """`fun(x) -> f(x)` as a Python float."""
        return self.fun_and_jac(x)[0]

    def jac(self, x: np.ndarray) -> np.ndarray:
        """`jac(x) -> ∇f(x)`, float64."""
        return self.fun_and_jac(x)[1]

    def hess(self, x: np.ndarray) -> np.ndarray:
        """`hess(x) -> ∇²f(x)`, a dense float64 `(n, n)` array."""
        h = hessian(self.f, self.backend, np.asarray(x, dtype=np.float64), *self.contexts, prep=self._hessian())
        return np.array(h, dtype=np.float64)

    def hessp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """`hessp(x, p) -> ∇²f(x) @ p`, float64."""
        x = np.asarray(x, dtype=np.float64)
        hp = hvp(self.f, self.backend, x, np.asarray(p, dtype=np.float64), *self.contexts, prep=self._hvp())
        return np.array(hp, dtype=np.float64)

    def minimize_arguments(self, method: str) -> dict[str, Any]:
        """The keyword arguments of `scipy.optimize.minimize` for `method`: `fun`, `jac`, and
        `hessp` or `hess` where the method uses second derivatives."""
        arguments: dict[str, Any] = {"fun": self.fun_and_jac, "jac": True}
        if method.lower() in _HESSP_METHODS:
            arguments["hessp"] = self.hessp
        elif method.lower() in _HESS_METHODS:
            arguments["hess"] = self.hess
        return arguments


def minimize(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x0: ArrayLike,
    *contexts: Context,
    method: str = "BFGS",
    **options: Any,
) -> scipy.optimize.OptimizeResult:
    """`minimize(f, backend, x0, *contexts, method="BFGS", **options) -> OptimizeResult`.

    `scipy.optimize.minimize` with the derivatives `method` uses computed by `backend`.
    `options` go to SciPy unchanged (`tol`, `bounds`, `options`, ...). For a tree `x0`, SciPy works on
    the raveled vector and `result.x_tree` is the solution as a tree.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> from anydiff.scipy import minimize
        >>> minimize(lambda x: ((x - 3.0) ** 2).sum(), ad.AutoFiniteDiff(), np.zeros(2)).x.round(4)
        array([3., 3.])
    """
    import scipy.optimize

    objective = Objective(f, backend, x0, *contexts)
    result = scipy.optimize.minimize(x0=objective.x0, method=method, **objective.minimize_arguments(method), **options)
    if objective.unravel is not None:
        result.x_tree = objective.unravel(result.x)
    return result


class Residuals:
    """`Residuals(f, backend, x0, *contexts, sparse=False)`: `fun`, `jac` for `least_squares` and `root`.

    Args:
        f: the residual function, `f(x, *contexts) -> r` (1-D in, 1-D out).
        backend: the backend object; an `ad.AutoSparse(...)` backend makes `jac` return a
            `scipy.sparse.csr_array`, which `least_squares(method="trf")` uses as such.
        x0: a point with the shape the solver will use.
        contexts: `ad.Constant(...)` arguments passed on to `f`.

    `jac_sparsity()` returns the detected pattern, for `least_squares(jac_sparsity=...)` with
    SciPy's own finite differences. A tree `x0` (or tree residuals) is raveled, as for `Objective`.

    Example:
        >>> import numpy as np, scipy.optimize, anydiff as ad
        >>> from anydiff.scipy import Residuals
        >>> t = np.linspace(0, 1, 20)
        >>> data = 2.0 * np.exp(-1.5 * t)
        >>> def residuals(p, t, data):
        ...     xp = ad.namespace(p)
        ...     return p[0] * xp.exp(-p[1] * t) - data
        >>> r = Residuals(residuals, ad.AutoFiniteDiff(), np.ones(2), ad.Constant(t), ad.Constant(data))
        >>> scipy.optimize.least_squares(r.fun, np.ones(2), jac=r.jac).x.round(4)
        array([2. , 1.5])
    """

    def __init__(self, f: Callable[..., Any], backend: AbstractBackend, x0: ArrayLike, *contexts: Context) -> None:
        f, self.x0, self.unravel = _flat(f, x0, "x0")
        self.f, self.backend, self.contexts = f, backend, contexts
        self._jacobian = prepare_jacobian(f, backend, self.x0, *contexts)

    def fun(self, x: np.ndarray) -> np.ndarray:
        """`fun(x) -> f(x)`, float64 (one evaluation of `f`, no derivative)."""
        return np.array(
            evaluate(self.f, self.backend, np.asarray(x, dtype=np.float64), *self.contexts), dtype=np.float64
        )

    def jac(self, x: np.ndarray) -> np.ndarray | scipy.sparse.csr_array:
        """`jac(x) -> J(x)`: a dense float64 `(m, n)` array, or a sparse one with `AutoSparse`."""
        jac = jacobian(self.f, self.backend, np.asarray(x, dtype=np.float64), *self.contexts, prep=self._jacobian)
        return jac if not isinstance(jac, np.ndarray) else np.array(jac, dtype=np.float64)

    def jac_sparsity(self) -> scipy.sparse.csr_array:
        """The Jacobian's sparsity pattern (`scipy.sparse.csr_array` of bools), detected by tracing."""
        from .sparse.detection import jacobian_sparsity

        return jacobian_sparsity(self.f, self.x0, *self.contexts)


def jacobian_operator(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context
) -> scipy.sparse.linalg.LinearOperator:
    """`jacobian_operator(f, backend, x, *contexts) -> LinearOperator`: `J(x)` without forming it.

    `matvec` is a pushforward (JVP), `rmatvec` a pullback (VJP) and `matmat` a batch of
    pushforwards, each prepared once. Vectors are flat NumPy float64 arrays of sizes `x.size` and
    `f(x).size` (for trees: of the raveled differentiable leaves, `ad.ravel`); for Krylov solvers
    (`gmres`, `lsqr`, ...) and Jacobian-free Newton-Krylov.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> op = ad.jacobian_operator(lambda x: x**2, ad.AutoFiniteDiff(), np.array([1.0, 2.0]))
        >>> op.matvec(np.ones(2)).round(6), op.shape
        (array([2., 4.]), (2, 2))
    """
    from scipy.sparse.linalg import LinearOperator

    f, x, _ = _flat(f, x, "x")
    y = np.asarray(evaluate(f, backend, x, *contexts))
    push = prepare_pushforward(f, backend, x, np.zeros_like(x), *contexts)
    pull = prepare_pullback(f, backend, x, np.zeros(y.shape, dtype=y.dtype), *contexts)

    def matvec(v: np.ndarray) -> np.ndarray:
        out = pushforward(f, backend, x, np.asarray(v, dtype=np.float64).reshape(x.shape), *contexts, prep=push)
        return np.array(out, dtype=np.float64).reshape(-1)

    def rmatvec(u: np.ndarray) -> np.ndarray:
        out = pullback(f, backend, x, np.asarray(u, dtype=y.dtype).reshape(y.shape), *contexts, prep=pull)
        return np.array(out, dtype=np.float64).reshape(-1)

    matmat = _columnwise(lambda columns: pushforward(f, backend, x, columns, *contexts, prep=push), x.shape)
    return LinearOperator((y.size, x.size), matvec=matvec, rmatvec=rmatvec, matmat=matmat, dtype=np.float64)


def hessian_operator(
    f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context
) -> scipy.sparse.linalg.LinearOperator:
    """`hessian_operator(f, backend, x, *contexts) -> LinearOperator`: `∇²f(x)` without forming it.

    `matvec` (and `rmatvec`: the Hessian is symmetric) is a Hessian-vector product, `matmat` a
    batch of them, prepared once. For `cg`, `minres` and Newton-Krylov methods. A tree `x` is
    raveled (`ad.ravel`).

    Example:
        >>> import numpy as np, anydiff as ad
        >>> op = ad.hessian_operator(lambda x: (x**3).sum(), ad.AutoFiniteDiff(), np.array([1.0, 2.0]))
        >>> op.matvec(np.ones(2)).round(4)
        array([ 6., 12.])
    """
    from scipy.sparse.linalg import LinearOperator

    f, x, _ = _flat(f, x, "x")
    prep = prepare_hvp(f, backend, x, np.zeros_like(x), *contexts)

    def matvec(v: np.ndarray) -> np.ndarray:
        out = hvp(f, backend, x, np.asarray(v, dtype=np.float64).reshape(x.shape), *contexts, prep=prep)
        return np.array(out, dtype=np.float64).reshape(-1)

    matmat = _columnwise(lambda columns: hvp(f, backend, x, columns, *contexts, prep=prep), x.shape)
    return LinearOperator((x.size, x.size), matvec=matvec, rmatvec=matvec, matmat=matmat, dtype=np.float64)


def _columnwise(product: Callable[[tuple], tuple], shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """`matmat(V)` from a batched product: the columns of `V` go in as one tuple of tangents."""

    def matmat(v: np.ndarray) -> np.ndarray:
        columns = tuple(np.asarray(c, dtype=np.float64).reshape(shape) for c in np.asarray(v).T)
        return np.stack([np.asarray(c, dtype=np.float64).reshape(-1) for c in product(columns)], axis=1)

    return matmat
