"""Sparsity detection: tracer patterns against known truth and against real JAX derivatives."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from array_api_compat import array_namespace

import anydiff as ad
from anydiff import Cache, Constant, FunctionNotDifferentiableError, UnsupportedError
from anydiff.sparse.detection import (
    DenseSparsityDetector,
    KnownSparsity,
    TracerSparsityDetector,
    hessian_sparsity,
    jacobian_sparsity,
)
from anydiff.sparse.tracer import SparsityTracer, tracer_namespace

jax = pytest.importorskip("jax")
jnp = jax.numpy

RNG = np.random.default_rng(0)
A = np.where(RNG.random((4, 6)) < 0.4, RNG.normal(size=(4, 6)), 0.0)  # sparse-ish constant
B = np.where(RNG.random((4, 3)) < 0.5, 1.0, 0.0)
S = np.where(RNG.random((6, 6)) < 0.3, RNG.normal(size=(6, 6)), 0.0)


def jax_jacobian_pattern(f: Callable[..., Any], x: np.ndarray, *constants: Any) -> np.ndarray:
    """The local pattern from a real JAX Jacobian at `x`, as a (y.size, x.size) bool array."""
    with jax.enable_x64(True):
        jacobian = np.asarray(jax.jit(jax.jacfwd(f))(jnp.asarray(x), *constants))
    return jacobian.reshape(-1, x.size) != 0


def jax_hessian_pattern(f: Callable[..., Any], x: np.ndarray) -> np.ndarray:
    with jax.enable_x64(True):
        hessian = np.asarray(jax.jit(jax.hessian(f))(jnp.asarray(x)))
    return hessian.reshape(x.size, x.size) != 0


def dense(pattern: sp.csr_array) -> np.ndarray:
    assert isinstance(pattern, sp.csr_array) and pattern.dtype == bool
    assert pattern.has_canonical_format
    return pattern.toarray()


def banded(n: int, lower: int, upper: int) -> np.ndarray:
    i, j = np.indices((n, n))
    return (j - i <= upper) & (i - j <= lower)


def ns(x: Any) -> Any:
    return array_namespace(x)


# --------------------------------------------------------------------------------------------
# Jacobian patterns. Each case: f, x, the expected pattern (None: only compared with JAX), and
# whether the global pattern should equal JAX's local one at random points (False for functions
# whose local pattern is legitimately smaller, e.g. a data-dependent `where`; None for an `f`
# JAX cannot run).


def stencil(x: Any) -> Any:
    xp = ns(x)
    zero = xp.zeros(1, dtype=x.dtype)
    return xp.concat([zero, x[:-1]]) - 2 * x + xp.concat([x[1:], zero])


def stencil_2d(u: Any) -> Any:
    xp = ns(u)
    grid = xp.reshape(u, (4, 5))
    padded = xp.pad(grid, 1) if hasattr(xp, "pad") else grid
    laplacian = (padded[2:, 1:-1] + padded[:-2, 1:-1] + padded[1:-1, 2:] + padded[1:-1, :-2]
                 - 4 * grid)  # fmt: skip
    return xp.reshape(laplacian, (-1,)) + u**3


def arrowhead(x: Any) -> Any:
    xp = ns(x)
    return xp.concat([xp.expand_dims(xp.sum(x**2), axis=0), x[1:] * x[0]])


def grid_laplacian_truth(rows: int, columns: int) -> np.ndarray:
    i, j = np.unravel_index(np.arange(rows * columns), (rows, columns))
    distance = np.abs(i[:, None] - i[None, :]) + np.abs(j[:, None] - j[None, :])
    return distance <= 1


VECTOR = RNG.normal(size=6)
MATRIX = RNG.normal(size=(3, 4))

JACOBIAN_CASES: dict[str, tuple[Callable[..., Any], np.ndarray, np.ndarray | None, bool | None]] = {
    "elementwise": (lambda x: ns(x).sin(x) * ns(x).exp(x) + x**2, VECTOR, np.eye(6, dtype=bool), True),
    "stencil slicing": (stencil, VECTOR[:5], banded(5, 1, 1), True),
    "banded product": (lambda x: x[1:] * x[:-1], VECTOR, banded(6, 0, 1)[:5], True),
    "stencil 2-D pad": (stencil_2d, RNG.normal(size=20), grid_laplacian_truth(4, 5), True),
    "dense sum": (lambda x: ns(x).sum(ns(x).sin(x)), VECTOR, np.ones((1, 6), bool), True),
    "arrowhead": (arrowhead, VECTOR, None, True),
    "constant matmul": (lambda x: A @ x, VECTOR, A != 0, True),
    "constant matmul right": (lambda x: x @ A.T, VECTOR, A != 0, True),
    "constant matmul matrix": (lambda x: x @ B, MATRIX, None, True),
    "constant matmul matrix left": (lambda x: B.T @ x.T, MATRIX, None, True),
    "constant batched matmul": (lambda x: np.stack([B.T, B.T]) @ x.T, MATRIX, None, True),
    "constant tensordot": (lambda x: ns(x).tensordot(x, B, axes=1), MATRIX, None, True),
    "matmul traced": (lambda x: x @ x.T, MATRIX, None, True),
    "matmul traced vector": (lambda x: ns(x).sin(x) @ x, VECTOR, np.ones((1, 6), bool), True),
    "vecdot": (lambda x: ns(x).vecdot(x, x, axis=0), MATRIX, None, True),
    "outer": (lambda x: ns(x).linalg.outer(x[:3], x[3:]), VECTOR, None, True),
    "sum axis 0": (lambda x: ns(x).sum(x, axis=0), MATRIX, None, True),
    "max axis 1 keepdims": (lambda x: ns(x).max(x * x, axis=1, keepdims=True), MATRIX, None, False),
    "mean axes 3-D": (
        lambda x: ns(x).mean(ns(x).reshape(x, (2, 3, 2)), axis=(0, 2)),
        RNG.normal(size=12),
        None,
        True,
    ),
    "prod": (lambda x: ns(x).prod(x, axis=1), MATRIX, None, True),
    "std": (lambda x: ns(x).std(x, axis=0), MATRIX, None, True),
    "cumulative_sum": (lambda x: ns(x).cumulative_sum(x, axis=1), MATRIX, None, True),
    "sort": (lambda x: ns(x).sort(x), VECTOR, np.ones((6, 6), bool), False),
    "vector_norm": (lambda x: ns(x).linalg.vector_norm(x, axis=1), MATRIX, None, True),
    "integer gather": (lambda x: x[np.array([2, 0, 0, 5])] * x[1], VECTOR, None, True),
    "boolean mask": (lambda x: x[np.array([True, False, True, False, False, True])], VECTOR, None, True),
    "index mix": (lambda x: x[None, 1:3, ..., ::-1] + x[..., 0][:, None, None], MATRIX, None, True),
    "stack and concat": (lambda x: ns(x).stack([x[:2], ns(x).concat([x[4:], np.ones(0)])], axis=1), VECTOR, None, True),
    "asarray of scalars": (lambda x: ns(x).asarray([x[0] * x[1], 2.0, x[5]]), VECTOR, None, True),
    "reshape transposes": (
        lambda x: ns(x).permute_dims(ns(x).reshape(x.T, (2, 2, 3)), (2, 0, 1)).mT,
        MATRIX,
        None,
        True,
    ),
    "flip roll moveaxis": (
        lambda x: ns(x).moveaxis(ns(x).roll(ns(x).flip(x, axis=0), 1, axis=1), 0, 1),
        MATRIX,
        None,
        True,
    ),
    "squeeze expand": (lambda x: ns(x).squeeze(ns(x).expand_dims(x, axis=1), axis=1), VECTOR, None, True),
    "broadcast constants": (
        lambda x: x * np.arange(4.0) + np.ones((2, 1, 4)),
        MATRIX,
        None,
        True,
    ),
    "broadcast_to": (lambda x: ns(x).broadcast_to(x[:, :1], (3, 4)) * x, MATRIX, None, True),
    "where traced condition": (
        lambda x: ns(x).where(x > 0, ns(x).sin(x), x[::-1]),
        VECTOR,
        None,
        False,
    ),
    "where constant condition": (
        lambda x: ns(x).where(np.arange(6) % 2 == 0, x, x[::-1] ** 2),
        VECTOR,
        None,
        True,
    ),
    "clip and maximum": (lambda x: ns(x).clip(x, -0.5, None) + ns(x).maximum(x, x[::-1]), VECTOR, None, False),
    "division and pow": (lambda x: x[:3] / x[3:] + ns(x).abs(x[:3]) ** x[3:], VECTOR, None, True),
    "binary smooth": (lambda x: ns(x).atan2(x[:3], x[3:]) + ns(x).hypot(x[:3], x[::2]), VECTOR, None, True),
    "zero derivative": (
        lambda x: ns(x).sign(x) + ns(x).floor(x) + ns(x).astype(x > 0, x.dtype),
        VECTOR,
        np.zeros((6, 6), bool),
        True,
    ),
    "integer cast": (
        lambda x: ns(x).astype(ns(x).astype(x, ns(x).int64), x.dtype),
        VECTOR,
        np.zeros((6, 6), bool),
        True,
    ),
    "multiply by zero constant": (lambda x: x * np.array([0.0, 1, 0, 2, 0, 3]), VECTOR, None, True),
    "power special exponents": (lambda x: x ** np.array([0.0, 1, 2, 3, 0, 1]), VECTOR, None, True),
    "full_like and ones": (lambda x: ns(x).full_like(x, 2.0) * x + ns(x).ones_like(x), VECTOR, None, True),
    "numpy ufunc on tracer": (
        lambda x: np.sin(x) * np.arange(6.0),
        VECTOR,
        np.diag(np.arange(6) > 0),
        None,
    ),
    "method style": (lambda x: (x * x).sum(axis=0) + x.mean(), MATRIX, None, True),
    "unstack": (lambda x: ns(x).unstack(x)[2] * 2, MATRIX, None, True),
    "trace diagonal": (
        lambda x: ns(x).linalg.trace(x) + ns(x).sum(ns(x).linalg.diagonal(x, offset=1)),
        MATRIX,
        None,
        True,
    ),
    "constant output": (lambda x: np.ones(3), VECTOR, np.zeros((3, 6), bool), True),
}


@pytest.mark.parametrize("name", list(JACOBIAN_CASES))
def test_jacobian_pattern(name: str) -> None:
    f, x, expected, exact = JACOBIAN_CASES[name]
    pattern = dense(jacobian_sparsity(f, x))
    if expected is not None:
        np.testing.assert_array_equal(pattern, expected)
    if exact is None:
        return
    for seed in range(2):
        point = np.random.default_rng(seed).normal(size=x.shape)
        local = jax_jacobian_pattern(f, point)
        assert pattern.shape == local.shape
        assert not (local & ~pattern).any(), "the global pattern misses a local nonzero"
        if exact:
            np.testing.assert_array_equal(pattern, local)


def test_jacobian_pattern_random_compositions() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        matrix = np.where(rng.random((7, 5)) < 0.3, 1.0, 0.0)
        order = rng.permutation(5)

        def f(x: Any, matrix: np.ndarray = matrix, order: np.ndarray = order) -> Any:
            xp = ns(x)
            return xp.tanh(matrix @ x) * (matrix @ x[order]) + xp.sum(x[:2])

        pattern = dense(jacobian_sparsity(f, np.ones(5)))
        np.testing.assert_array_equal(pattern, jax_jacobian_pattern(f, rng.normal(size=5)))


def test_jacobian_of_stencil_is_the_grid_laplacian() -> None:
    side = 30

    def f(u: Any) -> Any:
        xp = ns(u)
        grid = xp.reshape(u, (side, side))
        zero_row, zero_column = xp.zeros((1, side)), xp.zeros((side, 1))
        laplacian = (
            xp.concat([grid[1:], zero_row], axis=0) + xp.concat([zero_row, grid[:-1]], axis=0)
            + xp.concat([grid[:, 1:], zero_column], axis=1)
            + xp.concat([zero_column, grid[:, :-1]], axis=1) - 4 * grid
        )  # fmt: skip
        return xp.reshape(laplacian, (-1,)) + u**3

    pattern = jacobian_sparsity(f, np.zeros(side * side))
    np.testing.assert_array_equal(dense(pattern), grid_laplacian_truth(side, side))


def test_matrix_input_pattern_is_in_c_order() -> None:
    pattern = dense(jacobian_sparsity(lambda x: x.T, np.zeros((2, 3))))
    expected = np.zeros((6, 6), bool)
    for i in range(2):
        for j in range(3):
            expected[j * 2 + i, i * 3 + j] = True
    np.testing.assert_array_equal(pattern, expected)


# --------------------------------------------------------------------------------------------
# Hessian patterns.


def rosenbrock(x: Any) -> Any:
    xp = ns(x)
    return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def stencil_energy(u: Any) -> Any:
    xp = ns(u)
    grid = xp.reshape(u, (4, 5))
    return (xp.sum((grid[1:] - grid[:-1]) ** 2) + xp.sum((grid[:, 1:] - grid[:, :-1]) ** 2)
            + xp.sum(u**4))  # fmt: skip


HESSIAN_CASES: dict[str, tuple[Callable[..., Any], np.ndarray, np.ndarray | None]] = {
    "sum of squares": (lambda x: ns(x).sum(x**2), VECTOR, np.eye(6, dtype=bool)),
    "product of two": (lambda x: x[0] * x[1], VECTOR[:3], np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], bool)),
    "sum of sines": (lambda x: ns(x).sum(ns(x).sin(x)), VECTOR, np.eye(6, dtype=bool)),
    "rosenbrock": (rosenbrock, VECTOR, banded(6, 1, 1)),
    "linear": (lambda x: ns(x).sum(A @ x) + 3 * x[0], VECTOR, np.zeros((6, 6), bool)),
    "exp of sum": (lambda x: ns(x).exp(ns(x).sum(x)), VECTOR, np.ones((6, 6), bool)),
    "division": (lambda x: x[0] / x[1], VECTOR[:2], np.array([[0, 1], [1, 1]], bool)),
    "product reduction": (lambda x: ns(x).prod(x), VECTOR[:4], ~np.eye(4, dtype=bool)),
    "quadratic form": (lambda x: x @ (S @ x), VECTOR, (S != 0) | (S.T != 0)),
    "stencil energy": (stencil_energy, RNG.normal(size=20), grid_laplacian_truth(4, 5)),
    "arrowhead": (lambda x: ns(x).sum(arrowhead(x)), VECTOR, None),
    "unused nonlinearity": (lambda x: x[0] + 0 * ns(x).sin(x[1]), VECTOR[:2], np.zeros((2, 2), bool)),
    "norm": (lambda x: ns(x).linalg.vector_norm(x), VECTOR, np.ones((6, 6), bool)),
    "traced matmul": (lambda x: ns(x).sum(x @ x.T), MATRIX, None),
    "piecewise linear": (lambda x: ns(x).sum(ns(x).abs(x) + ns(x).maximum(x, 0.0)), VECTOR, np.zeros((6, 6), bool)),
}


@pytest.mark.parametrize("name", list(HESSIAN_CASES))
def test_hessian_pattern(name: str) -> None:
    f, x, expected = HESSIAN_CASES[name]
    pattern = dense(hessian_sparsity(f, x))
    np.testing.assert_array_equal(pattern, pattern.T)
    if expected is not None:
        np.testing.assert_array_equal(pattern, expected)
    if name not in ("unused nonlinearity", "piecewise linear"):
        local = jax_hessian_pattern(f, np.random.default_rng(3).normal(size=x.shape))
        np.testing.assert_array_equal(pattern, local)


def test_hessian_requires_a_scalar_output() -> None:
    with pytest.raises(ValueError, match=r"hessian_sparsity: `f` must return a scalar .*shape \(6,\)"):
        hessian_sparsity(lambda x: x**2, VECTOR)


# --------------------------------------------------------------------------------------------
# Errors, contexts and the namespace.


@pytest.mark.parametrize(
    "use",
    [
        lambda x: x if x[0] > 0 else -x,
        lambda x: x * float(x[0]),
        lambda x: x * int(x[1]),
        lambda x: x * x[0].item(),
        lambda x: np.asarray(x),
        lambda x: x * bool(ns(x).any(x > 0)),
    ],
    ids=["if", "float", "int", "item", "numpy asarray", "bool"],
)
def test_branch_on_tracer_raises(use: Callable[..., Any]) -> None:
    with pytest.raises(FunctionNotDifferentiableError) as info:
        jacobian_sparsity(use, VECTOR)
    message = str(info.value)
    assert "cannot follow data-dependent control flow" in message
    assert "ad.DenseSparsityDetector(backend)" in message and "xp.where" in message


def test_traced_index_and_assignment_raise() -> None:
    with pytest.raises(FunctionNotDifferentiableError, match="data-dependent indexing"):
        jacobian_sparsity(lambda x: x[ns(x).argmax(x)], VECTOR)

    def assign(x: Any) -> Any:
        x[0] = 1.0
        return x

    with pytest.raises(FunctionNotDifferentiableError, match="in-place assignment"):
        jacobian_sparsity(assign, VECTOR)


def test_unsupported_function_names_the_operation() -> None:
    with pytest.raises(AttributeError, match=r"`tracer_namespace\.linalg\.inv` is not supported"):
        jacobian_sparsity(lambda x: ns(x).linalg.inv(x), np.eye(3))
    with pytest.raises(
        AttributeError,
        match=r"`tracer_namespace\.nonzero` is not supported.*"
        r"DenseSparsityDetector",
    ):
        jacobian_sparsity(lambda x: ns(x).nonzero(x), VECTOR)
    assert not hasattr(tracer_namespace, "fft")  # feature detection keeps working


def test_contexts_pass_through_unwrapped() -> None:
    mask = np.array([1.0, 0.0, 2.0])
    seen = []

    def f(x: Any, c: np.ndarray, scratch: np.ndarray) -> Any:
        seen.append(scratch)
        return x * c

    scratch = np.zeros(3)
    pattern = jacobian_sparsity(f, np.ones(3), Constant(mask), Cache(scratch))
    np.testing.assert_array_equal(dense(pattern), np.diag(mask != 0))
    assert seen[0] is scratch
    np.testing.assert_array_equal(mask, [1.0, 0.0, 2.0])  # never mutated


def test_constant_contexts_from_other_libraries_become_numpy() -> None:
    with jax.enable_x64(True):
        weights = jnp.asarray([0.0, 1.0, 1.0])
    pattern = jacobian_sparsity(lambda x, w: x * w, np.ones(3), Constant(weights))
    np.testing.assert_array_equal(dense(pattern), np.diag([False, True, True]))


def test_bare_context_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"must be wrapped as `ad\.Constant\(value\)`"):
        jacobian_sparsity(lambda x, c: x * c, np.ones(3), 2.0)


def test_inputs_are_not_mutated_and_dtypes_are_kept() -> None:
    x = np.arange(4, dtype=np.float32)
    dtypes = []

    def f(x: Any) -> Any:
        dtypes.append(x.dtype)
        return x * 2

    jacobian_sparsity(f, x)
    np.testing.assert_array_equal(x, np.arange(4, dtype=np.float32))
    assert dtypes == [np.dtype(np.float32)]
    assert dense(jacobian_sparsity(lambda x: x**2, 3.0)).shape == (1, 1)  # a Python float x


def test_namespace_of_tracer() -> None:
    seen = []

    def f(x: Any) -> Any:
        seen.append((array_namespace(x), type(x)))
        return x

    jacobian_sparsity(f, VECTOR)
    assert seen == [(tracer_namespace, SparsityTracer)]
    anydiff_arrays = pytest.importorskip("anydiff._core.arrays")
    tracer = SparsityTracer((2,), np.float64, sp.csr_array((2, 2), dtype=bool), None)  # type: ignore[arg-type]
    assert anydiff_arrays.namespace(np.ones(2), tracer) is tracer_namespace


def test_tracer_attributes() -> None:
    def f(x: Any) -> Any:
        assert (x.shape, x.ndim, x.size, x.dtype) == ((3, 4), 2, 12, np.float64)
        assert x.T.shape == (4, 3) and x.mT.shape == (4, 3) and len(x) == 3
        assert [row.shape for row in x] == [(4,)] * 3
        assert x.reshape(4, 3).shape == x.reshape((4, 3)).shape == (4, 3)
        assert (x > 0).dtype == np.bool_ and (x > 0).deps.nnz == 0
        assert "nnz=12" in repr(x)
        return x

    jacobian_sparsity(f, MATRIX)


# --------------------------------------------------------------------------------------------
# Detectors.


def test_detectors_are_frozen_and_hashable() -> None:
    assert TracerSparsityDetector() == TracerSparsityDetector()
    assert hash(TracerSparsityDetector()) == hash(TracerSparsityDetector())
    with pytest.raises(dataclasses.FrozenInstanceError):
        DenseSparsityDetector("backend").atol = 1.0  # type: ignore[misc]
    known = KnownSparsity(np.eye(3, dtype=bool))
    assert known == KnownSparsity(sp.eye_array(3, format="coo"))
    assert hash(known) == hash(KnownSparsity(sp.eye_array(3)))
    assert known != KnownSparsity(np.ones((3, 3)))
    assert len({known, KnownSparsity(sp.eye_array(3))}) == 1
    assert DenseSparsityDetector("b", atol=1e-3) == DenseSparsityDetector("b", atol=1e-3)


def test_known_sparsity_checks_shapes() -> None:
    pattern = np.array([[1, 1, 0], [0, 1, 1]])
    f = lambda x: x[1:] + x[:-1]  # noqa: E731
    result = jacobian_sparsity(f, np.ones(3), detector=KnownSparsity(pattern))
    np.testing.assert_array_equal(dense(result), pattern.astype(bool))
    with pytest.raises(ValueError, match=r"must have shape \(y\.size, x\.size\) = \(3, 4\)"):
        jacobian_sparsity(f, np.ones(4), detector=KnownSparsity(pattern))
    with pytest.raises(ValueError, match=r"\(x\.size, x\.size\) = \(2, 2\).*shape \(2, 3\)"):
        hessian_sparsity(lambda x: x[0] * x[1], np.ones(2), detector=KnownSparsity(pattern))
    lower = KnownSparsity(sp.csr_array(np.tril(np.ones((3, 3)))))
    np.testing.assert_array_equal(
        dense(hessian_sparsity(rosenbrock, np.ones(3), detector=lower)), np.ones((3, 3), bool)
    )


def anydiff_with_operators() -> Any:
    anydiff = pytest.importorskip("anydiff")
    if not hasattr(anydiff, "jacobian"):
        pytest.skip("anydiff.jacobian is not available yet")
    return anydiff


def test_dense_detector_gives_the_local_pattern() -> None:
    anydiff = anydiff_with_operators()
    detector = DenseSparsityDetector(anydiff.AutoJAX())
    x = np.array([0.0, 1.0, 2.0])
    local = jacobian_sparsity(lambda x: x * x[0] + x[::-1], x, detector=detector)
    # at x[0] = 0, dy0/dx0 = 2 x[0] and dy2/dx2 = x[0] vanish; the tracer's global pattern keeps them
    np.testing.assert_array_equal(dense(local), [[0, 0, 1], [1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(
        dense(jacobian_sparsity(lambda x: x * x[0] + x[::-1], x)), [[1, 0, 1], [1, 1, 0], [1, 0, 1]]
    )
    rough = DenseSparsityDetector(anydiff.AutoJAX(), atol=1.5)
    np.testing.assert_array_equal(
        dense(jacobian_sparsity(lambda x: x * np.array([1.0, 2.0, 3.0]), x, detector=rough)),
        np.diag([False, True, True]),
    )
    branchy = lambda x, c: x * c if float(x[0]) > 0 else -x  # noqa: E731
    numpy_detector = DenseSparsityDetector(anydiff.AutoFiniteDiff())
    np.testing.assert_array_equal(
        dense(jacobian_sparsity(branchy, x + 1, Constant(2.0), detector=numpy_detector)), np.eye(3)
    )


def test_dense_detector_hessian() -> None:
    anydiff = anydiff_with_operators()
    if not hasattr(anydiff, "hessian"):
        pytest.skip("anydiff.hessian is not available yet")
    detector = DenseSparsityDetector(anydiff.AutoJAX())
    pattern = hessian_sparsity(rosenbrock, RNG.normal(size=5), detector=detector)
    np.testing.assert_array_equal(dense(pattern), banded(5, 1, 1))


def test_pattern_sizes_scale() -> None:
    side = 100
    n = side * side

    def f(u: Any) -> Any:
        xp = ns(u)
        grid = xp.reshape(u, (side, side))
        return xp.sum((grid[1:] - grid[:-1]) ** 2) + xp.sum(u**4)

    pattern = hessian_sparsity(f, np.zeros(n))
    assert pattern.shape == (n, n)
    assert pattern.nnz == n + 2 * (n - side)
    assert math.isclose(jacobian_sparsity(stencil, np.zeros(n)).nnz, 3 * n - 2)


# --------------------------------------------------------------------------------------------
# JaxprSparsityDetector: functions written with jax.numpy and lax.

lax = jax.lax
JAXPR = ad.JaxprSparsityDetector()


def jnp_stencil(u: Any) -> Any:
    grid = u.reshape(4, 5)
    padded = jnp.pad(grid, 1)
    laplacian = (padded[2:, 1:-1] + padded[:-2, 1:-1] + padded[1:-1, 2:] + padded[1:-1, :-2]
                 - 4 * grid)  # fmt: skip
    return laplacian.ravel() + u**3


JAXPR_CASES: dict[str, tuple[Callable[..., Any], np.ndarray, bool]] = {
    "stencil": (jnp_stencil, RNG.normal(size=20), True),
    "diff and roll": (lambda x: jnp.diff(x) * jnp.roll(x, 2)[1:], VECTOR, True),
    "gather": (lambda x: x[jnp.array([2, 0, 5])] * x[1], VECTOR, True),
    "scatter add": (lambda x: jnp.zeros(6).at[jnp.array([1, 1, 3])].add(x[:3] ** 2), VECTOR, True),
    "scatter set": (lambda x: x.at[jnp.array([1, 4])].set(x[:2] * x[5]), VECTOR, True),
    "constant matmul": (lambda x: jnp.asarray(A) @ jnp.tanh(x), VECTOR, True),
    "constant built inside": (lambda x: jnp.ones((3, 6)).at[:, 0].set(0.0) @ x, VECTOR, True),
    "batched einsum": (
        lambda x: jnp.einsum("bij,bj->bi", x.reshape(2, 3, 1) * x.reshape(2, 1, 3), x.reshape(2, 3)).ravel(),
        VECTOR,
        True,
    ),
    "reductions": (lambda x: jnp.concatenate([x.sum(1), jnp.cumsum(x, 1).ravel()]), MATRIX, True),
    "max reduction": (lambda x: x.max(0), MATRIX, False),
    "fori_loop": (lambda x: lax.fori_loop(0, 3, lambda i, v: v.at[i].set(v[i + 1] ** 2), x), VECTOR, True),
    "counted while_loop": (
        lambda x: lax.while_loop(lambda c: c[1] < 2, lambda c: (c[0] * jnp.roll(c[0], 1), c[1] + 1), (x, 0))[0],
        VECTOR,
        True,
    ),
    "traced while_loop": (
        lambda x: lax.while_loop(lambda c: c[0] < 10.0, lambda c: (c[0] + c[1] ** 2 + 1.0, c[1] * 2), (x[0], x[1]))[0],
        VECTOR,
        False,
    ),
    "cond": (lambda x: lax.cond(x[0] > 0, lambda v: v[::-1], lambda v: v * 2, x), VECTOR, False),
    "scan": (lambda x: lax.scan(lambda c, xt: (c + xt, c * xt), 0.0, x)[1], VECTOR, True),
    "nn functions": (lambda x: jax.nn.relu(x) + jax.nn.sigmoid(x) * jnp.linalg.norm(x[:2]), VECTOR, True),
    "where and clip": (lambda x: jnp.where(x > 0, x, x[::-1] ** 2) + jnp.clip(x, -1, 1), VECTOR, False),
    "sort": (lambda x: jnp.sort(x), VECTOR, False),
}


@pytest.mark.parametrize("name", list(JAXPR_CASES))
def test_jaxpr_jacobian_pattern(name: str) -> None:
    f, x, exact = JAXPR_CASES[name]
    pattern = dense(jacobian_sparsity(f, x, detector=JAXPR))
    local = jax_jacobian_pattern(f, np.random.default_rng(4).normal(size=x.shape))
    assert not (local & ~pattern).any(), "the global pattern misses a local nonzero"
    if exact:
        np.testing.assert_array_equal(pattern, local)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
        lambda x: x[0] * x[1] + jnp.prod(x[2:]),
        lambda x: jax.nn.logsumexp(x[:3]) + x[4] ** 2 + x[5] / x[3],
        lambda x: jnp.sum(lax.fori_loop(0, 2, lambda i, v: jnp.sin(jnp.roll(v, 1)) * v, x)),
    ],
    ids=["rosenbrock", "products", "logsumexp division", "loop"],
)
def test_jaxpr_hessian_pattern(f: Callable[..., Any]) -> None:
    pattern = dense(hessian_sparsity(f, VECTOR, detector=JAXPR))
    np.testing.assert_array_equal(pattern, jax_hessian_pattern(f, RNG.normal(size=6)))


def test_jaxpr_detector_agrees_with_tracer_on_array_api_functions() -> None:
    for name in ("stencil 2-D pad", "arrowhead", "constant matmul", "where constant condition"):
        f, x, _, _ = JACOBIAN_CASES[name]
        np.testing.assert_array_equal(dense(jacobian_sparsity(f, x, detector=JAXPR)), dense(jacobian_sparsity(f, x)))


def test_jaxpr_detector_contexts() -> None:
    weights = np.array([0.0, 1.0, 2.0])
    pattern = jacobian_sparsity(lambda x, w: jnp.sin(x) * w, np.ones(3), Constant(weights), detector=JAXPR)
    np.testing.assert_array_equal(dense(pattern), np.diag(weights != 0))


def test_jaxpr_detector_hands_data_dependent_indexing_to_asdex() -> None:
    f = lambda x: lax.dynamic_slice(x, (jnp.argmax(x),), (2,))  # noqa: E731
    try:
        import asdex
    except ImportError:
        with pytest.raises(UnsupportedError, match=r"pip install asdex"):
            jacobian_sparsity(f, VECTOR, detector=JAXPR)
        return
    pattern = dense(jacobian_sparsity(f, VECTOR, detector=JAXPR))
    with jax.enable_x64(True):
        np.testing.assert_array_equal(pattern, asdex.jacobian_sparsity(f, VECTOR).todense() != 0)


def test_jaxpr_detector_unsupported_primitive() -> None:
    with pytest.raises(UnsupportedError, match=r"DenseSparsityDetector"):
        jacobian_sparsity(lambda x: jnp.linalg.solve(jnp.eye(6) + jnp.outer(x, x), x), VECTOR, detector=JAXPR)
