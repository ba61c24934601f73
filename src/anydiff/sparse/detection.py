"""Sparsity patterns: `jacobian_sparsity`, `hessian_sparsity` and the detectors behind them.

A detector is any object with two methods, `jacobian_sparsity(f, x, *contexts)` and
`hessian_sparsity(f, x, *contexts)`, returning boolean `scipy.sparse.csr_array` patterns. anydiff
ships four, all frozen dataclasses (so equal detectors give equal preps):

- `TracerSparsityDetector()` (the default): global pattern, from running `f` once on tracer arrays
  (`anydiff.sparse.tracer`); `f` is written with the array API.
- `JaxprSparsityDetector()`: global pattern of an `f` written with JAX itself (`jnp`, `lax`),
  read from its jaxpr.
- `DenseSparsityDetector(backend, atol=0.0)`: local pattern at `x`, from one dense derivative.
- `KnownSparsity(pattern)`: the pattern the user already knows.

Patterns are `(y.size, x.size)` for Jacobians and `(x.size, x.size)` for Hessians, rows and columns
in C (row-major) order of the flattened arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from anydiff._core.contexts import check_contexts
from anydiff._core.trees import flat_problem

from ..first_order.jacobian import jacobian as dense_jacobian
from ..second_order.hessian import hessian as dense_hessian
from .tracer import (
    TracerSparsityDetector,
)

__all__ = [
    "DenseSparsityDetector",
    "KnownSparsity",
    "SparsityDetector",
    "TracerSparsityDetector",
    "hessian_sparsity",
    "jacobian_sparsity",
]


class SparsityDetector(Protocol):
    """What `jacobian_sparsity` and `hessian_sparsity` need of a detector."""

    def jacobian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.sparray: ...

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.sparray: ...


def jacobian_sparsity(
    f: Callable[..., Any], x: Any, *contexts: Any, detector: SparsityDetector | None = None
) -> sp.csr_array:
    """`jacobian_sparsity(f, x, *contexts, detector=None) -> csr_array`: the Jacobian's pattern.

    Args:
        f: `f(x, *contexts) -> y`, any array shapes.
        x: the input (its shape and dtype matter; its values only for a local detector).
        *contexts: `ad.Constant(value)` / `ad.Cache(buffer)`, passed to `f` unwrapped.
        detector: `TracerSparsityDetector()` by default.

    Returns:
        A boolean `scipy.sparse.csr_array` of shape `(y.size, x.size)`: entry `(i, j)` is True when
        `y_i` may depend on `x_j`. Rows and columns follow the C order of the flattened arrays
        (for trees `x` and `y`: of their differentiable leaves in leaf order, as `ad.ravel`).

    Example:
        >>> import numpy as np, anydiff as ad
        >>> def f(x):
        ...     xp = ad.namespace(x)
        ...     return xp.concat([x[:1], x[1:] - x[:-1]])
        >>> ad.jacobian_sparsity(f, np.zeros(3)).toarray()
        array([[ True, False, False],
               [ True,  True, False],
               [False,  True,  True]])
    """
    check_contexts("jacobian_sparsity", contexts)
    detector = TracerSparsityDetector() if detector is None else detector
    f, x, _ = flat_problem(f, x, "jacobian_sparsity")
    return _as_pattern(detector.jacobian_sparsity(f, x, *contexts))


def hessian_sparsity(
    f: Callable[..., Any], x: Any, *contexts: Any, detector: SparsityDetector | None = None
) -> sp.csr_array:
    """`hessian_sparsity(f, x, *contexts, detector=None) -> csr_array`: the Hessian's pattern.

    Args:
        f: `f(x, *contexts) -> y` with a scalar (one-element) `y`.
        x: the input.
        *contexts: `ad.Constant(value)` / `ad.Cache(buffer)`, passed to `f` unwrapped.
        detector: `TracerSparsityDetector()` by default.

    Returns:
        A symmetric boolean `scipy.sparse.csr_array` of shape `(x.size, x.size)`: entry `(i, j)`
        is True when `d²y / dx_i dx_j` may be nonzero.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.hessian_sparsity(lambda x: x[0] * x[1], np.ones(2)).toarray()
        array([[False,  True],
               [ True, False]])
    """
    check_contexts("hessian_sparsity", contexts)
    detector = TracerSparsityDetector() if detector is None else detector
    f, x, _ = flat_problem(f, x, "hessian_sparsity")
    return _as_pattern(detector.hessian_sparsity(f, x, *contexts))


def _as_pattern(matrix: Any) -> sp.csr_array:
    """A canonical boolean CSR array (sorted, no duplicates, no stored False) from any matrix."""
    pattern = sp.csr_array(matrix if sp.issparse(matrix) else np.asarray(matrix), dtype=bool)
    pattern.sum_duplicates()
    pattern.eliminate_zeros()
    return pattern


def _size(x: Any) -> int:
    return int(np.prod(x.shape if hasattr(x, "shape") else np.shape(x), dtype=np.int64))


def _to_numpy(array: Any) -> np.ndarray:
    from anydiff._core.arrays import array_kind

    kind = array_kind(array)
    return np.asarray(array if kind is None else kind.to_numpy(array))


@dataclass(frozen=True, slots=True)
class DenseSparsityDetector:
    """`DenseSparsityDetector(backend, atol=0.0)`: local patterns from one dense derivative.

    Computes `ad.jacobian(f, backend, x, *contexts)` (or `ad.hessian`) and keeps the entries with
    `abs(value) > atol`. Works for any `f` the backend can differentiate, including data-dependent
    branches the tracer cannot follow, but the pattern is local: an entry that happens to vanish
    at this `x` (e.g. `x[0] * x[1]` at `x[0] = 0`) is missed and may be nonzero elsewhere. It also
    costs a dense Jacobian or Hessian: `x.size` products.

    Attributes:
        backend: any anydiff backend, e.g. `ad.AutoJAX()`.
        atol: entries with absolute value at most `atol` count as zero.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> detector = ad.DenseSparsityDetector(ad.AutoFiniteDiff())
        >>> # y0 = x0 * x2 depends on x2, but its derivative x0 vanishes at this x
        >>> ad.jacobian_sparsity(lambda x: x * x[::-1], np.arange(3.0), detector=detector).toarray()
        array([[ True, False, False],
               [False,  True, False],
               [ True, False, False]])
    """

    backend: Any
    atol: float = 0.0

    def jacobian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`jacobian_sparsity(f, x, *contexts)`: entries of the Jacobian at `x` above `atol`."""
        jacobian = dense_jacobian(f, self.backend, x, *contexts)
        return self._threshold(jacobian, _size(x))

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`hessian_sparsity(f, x, *contexts)`: entries of the Hessian at `x` above `atol`,
        symmetrised (an entry and its mirror are kept together)."""
        pattern = self._threshold(dense_hessian(f, self.backend, x, *contexts), _size(x))
        return _as_pattern(pattern + pattern.T)

    def _threshold(self, derivative: Any, columns: int) -> sp.csr_array:
        values = _to_numpy(derivative).reshape(-1, columns)
        return _as_pattern(np.abs(values) > self.atol)


@dataclass(frozen=True, slots=True, eq=False)
class KnownSparsity:
    """`KnownSparsity(pattern)`: a pattern the user already knows, checked against `x` and `y`.

    Attributes:
        pattern: a dense boolean array-like or a SciPy sparse matrix; nonzero entries count. For
            Hessians it must be square; a triangle is enough, since it is symmetrised.

    Example:
        >>> import numpy as np, scipy.sparse as sp, anydiff as ad
        >>> detector = ad.KnownSparsity(sp.eye_array(3))
        >>> ad.jacobian_sparsity(lambda x: 2 * x, np.ones(3), detector=detector).nnz
        3
    """

    pattern: Any

    def __post_init__(self) -> None:
        # stored canonical, which also makes equality and hashing cheap and well defined
        object.__setattr__(self, "pattern", _as_pattern(self.pattern))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnownSparsity) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        pattern = self.pattern
        return pattern.shape, pattern.indptr.tobytes(), pattern.indices.tobytes()

    def jacobian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`jacobian_sparsity(f, x, *contexts)`: the pattern, after checking it has shape
        `(y.size, x.size)` (`f` is evaluated once to find `y.size`)."""
        check_contexts("jacobian_sparsity", contexts)
        y = f(x, *(context.value for context in contexts))
        self._check("jacobian_sparsity", (_size(y), _size(x)), "(y.size, x.size)")
        return self.pattern

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`hessian_sparsity(f, x, *contexts)`: the symmetrised pattern, after checking it has
        shape `(x.size, x.size)`."""
        self._check("hessian_sparsity", (_size(x), _size(x)), "(x.size, x.size)")
        return _as_pattern(self.pattern + self.pattern.T)

    def _check(self, operator: str, expected: tuple[int, int], names: str) -> None:
        if self.pattern.shape != expected:
            raise ValueError(
                f"{operator}: `KnownSparsity(pattern)` must have shape {names} = {expected}; "
                f"the pattern given has shape {self.pattern.shape}. Pass the pattern of this "
                "function and input (rows and columns in C order of the flattened arrays)."
            )
