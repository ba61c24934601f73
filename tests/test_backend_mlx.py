"""AutoMLX: what the scenario suite (tests/test_scenarios.py) does not cover.

MLX's own arrays in and out, its options (`compile`, `mode`), the precision it really has on the
CPU, the reverse-over-reverse route where MLX lacks a JVP, its errors and its array-API namespace.
Derivatives are checked against closed forms and finite differences, never against MLX itself.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation, with_kind

mx = pytest.importorskip("mlx.core", reason="mlx is not installed: pip install 'anydiff[mlx]'")

MLX = ad.AutoMLX()


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def polynomial(x):
    """`Σ x³ + (Σ x)²`: arithmetic only, which MLX computes exactly in float64."""
    xp = ad.namespace(x)
    return xp.sum(x**3) + xp.sum(x) ** 2


def arrowhead(x):
    """Indexing `x[0]` pulls back through `scatter`, which MLX cannot push forward."""
    xp = ad.namespace(x)
    return x[0] * xp.sum(x[1:] ** 2) + xp.sum(x**3)


def arrowhead_hessian(x):
    h = np.diag(6 * x)
    h[0, 1:] = h[1:, 0] = 2 * x[1:]
    h[1:, 1:] += 2 * x[0] * np.eye(x.size - 1)
    return h


X = np.linspace(0.1, 1.0, 5)


@pytest.mark.parametrize(
    "backend",
    [MLX, ad.AutoMLX(compile=False), ad.AutoMLX(mode="forward"), ad.AutoMLX(mode="reverse")],
    ids=repr,
)
def test_scenarios_with_mlx_arrays(backend):
    """MLX arrays in, MLX arrays out, every operator; the NumPy scenarios run in test_scenarios."""
    scenarios = default_scenarios()
    if backend != MLX:  # the options change the routes, not the array handling: one per operator
        scenarios = list({s.operator: s for s in scenarios if s.name.endswith("vector")}.values())
    # sin is float32-accurate in MLX's float64 (see test_float64_precision)
    test_differentiation(backend, [with_kind(s, "mlx") for s in scenarios], rtol=1e-6)


def test_numpy_results_of_value_forms_evaluated_together():
    # A tuple of MLX results is evaluated at once (`ArrayKind.evaluate`) before its conversion.
    def square(x):
        return x**2

    prep = ad.prepare_gradient(polynomial, MLX, X)
    pull = ad.prepare_pullback(square, MLX, X, (X, 2 * X))
    for x in (X, X[::-1].copy()):
        y, g = ad.value_and_gradient(polynomial, MLX, x, prep=prep)
        np.testing.assert_allclose(y, np.sum(x**3) + np.sum(x) ** 2, rtol=1e-12)
        np.testing.assert_allclose(g, 3 * x**2 + 2 * np.sum(x), rtol=1e-12)
        value, (first, second) = ad.value_and_pullback(square, MLX, x, (X, 2 * X), prep=pull)
        assert all(isinstance(r, np.ndarray) for r in (value, first, second))
        np.testing.assert_allclose(value, x**2, rtol=1e-12)
        np.testing.assert_allclose(second, 2 * first, rtol=1e-12)
        np.testing.assert_allclose(first, 2 * x * X, rtol=1e-12)
    with pytest.raises(ad.PreparationMismatchError, match="shape"):
        ad.value_and_gradient(polynomial, MLX, X[:3], prep=prep)


def test_float64_is_kept_and_float32_stays_float32():
    g = ad.gradient(polynomial, MLX, mx.array(X, dtype=mx.float64))
    assert isinstance(g, mx.array) and g.dtype == mx.float64
    g32 = ad.gradient(polynomial, MLX, mx.array(X, dtype=mx.float32))
    assert g32.dtype == mx.float32
    assert ad.gradient(polynomial, MLX, X).dtype == np.float64


def test_numpy_views_mlx_refuses_are_copied():
    # MLX takes strided views but refuses negative strides (a reversed view): those are copied
    for view in (X[::-1].copy()[::-1], X.astype(np.float32)[::-1], np.stack([X, X], axis=1)[:, 0]):
        expected = 3 * view.astype(np.float64) ** 2 + 2 * view.sum()
        g = ad.gradient(polynomial, MLX, view)
        assert g.dtype == view.dtype
        np.testing.assert_allclose(g, expected, rtol=1e-14 if view.dtype == np.float64 else 1e-5)


def test_float64_precision():
    """MLX computes float64 sin/cos/exp in float32 arithmetic (mlx#3047); the rest is exact.

    The tolerances document what AutoMLX delivers: relative error ~1e-7 through sin, float64
    rounding through arithmetic.
    """
    expected = 3 * X**2 + 2 * X.sum()
    np.testing.assert_allclose(ad.gradient(polynomial, MLX, X), expected, rtol=1e-14)
    np.testing.assert_allclose(ad.gradient(energy, MLX, X), np.sin(2 * X), rtol=1e-6)


def test_float32_result_of_float64_input_raises():
    def downcast(x):
        return ad.namespace(x).sum(x).astype(mx.float32)

    with pytest.raises(ad.UnsupportedError, match=r"`x` is float64 but `f` returned float32"):
        ad.gradient(downcast, MLX, X)


def test_hessian_where_mlx_has_no_jvp_goes_reverse_over_reverse():
    prep = ad.prepare_hessian(arrowhead, MLX, X)
    assert prep.info["strategy"] == "reverse-over-reverse"
    np.testing.assert_allclose(ad.hessian(arrowhead, MLX, X, prep=prep), arrowhead_hessian(X), rtol=1e-13)
    t = np.cos(X)
    np.testing.assert_allclose(ad.hvp(arrowhead, MLX, X, t), arrowhead_hessian(X) @ t, rtol=1e-13)
    assert ad.prepare_hessian(polynomial, MLX, X).info["strategy"] == "forward-over-reverse"


def test_two_argument_function_with_item_assignment():
    def write(y, x):
        y[0] = x[0] * x[1]
        y[1:] = x[1:] ** 2

    x = np.array([1.0, 2.0, 3.0])
    expected = np.array([[2.0, 1.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 6.0]])
    for backend in (MLX, ad.AutoMLX(mode="reverse")):
        np.testing.assert_allclose(ad.jacobian(write, backend, x, y=np.zeros(3)), expected, rtol=1e-15)


def test_python_number_context_changes_between_calls():
    """`mx.compile` treats numbers as constants: a new value must recompile, not reuse."""

    def scaled(x, a):
        return ad.namespace(x).sum(a * x**2)

    prep = ad.prepare_gradient(scaled, MLX, X, ad.Constant(1.0))
    for a in (1.0, 2.5):
        np.testing.assert_allclose(ad.gradient(scaled, MLX, X, ad.Constant(a), prep=prep), 2 * a * X, rtol=1e-15)


def test_numpy_inside_compiled_f_explains_how_to_write_f():
    def escapes(x):
        return mx.array(np.sin(np.asarray(x)), dtype=x.dtype).sum()

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"value of an MLX array .* `xp.where`"):
        ad.gradient(escapes, MLX, X)


def test_value_dependent_branch_needs_compile_false():
    def branch(x):
        xp = ad.namespace(x)
        return xp.sum(x**2) if x[0].item() > 0 else xp.sum(x**3)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"ad.AutoMLX\(compile=False\)"):
        ad.gradient(branch, MLX, X)
    np.testing.assert_allclose(ad.gradient(branch, ad.AutoMLX(compile=False), X), 2 * X, rtol=1e-15)


def test_context_mx_compile_cannot_take():
    def uses(x, obj):
        return ad.namespace(x).sum(x * obj.scale)

    class Holder:
        scale = 2.0

    with pytest.raises(ad.UnsupportedError, match=r"`mx.compile` takes only arrays.*compile=False"):
        ad.gradient(uses, MLX, X, ad.Constant(Holder()))
    np.testing.assert_allclose(ad.gradient(uses, ad.AutoMLX(compile=False), X, ad.Constant(Holder())), 2.0)


def test_missing_mlx_raises_with_install_hint():
    code = (
        "import sys; sys.modules['mlx'] = None\n"
        "import numpy as np, anydiff as ad\n"
        "print(ad.check_available(ad.AutoMLX()))\n"
        "try:\n    ad.gradient(lambda x: x.sum(), ad.AutoMLX(), np.ones(2))\n"
        "except ad.BackendNotInstalledError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False\n")
    assert "pip install 'anydiff[mlx]'" in out


def test_sparse_jacobians_and_hessians():
    """`ad.AutoSparse` colors the pattern and compresses the products MLX computes."""
    test_differentiation(ad.AutoSparse(MLX), sparse_scenarios(), rtol=1e-6)


# -- the namespace -------------------------------------------------------------------------------


def test_namespace_fills_the_array_api_gaps():
    xp = ad.namespace(mx.zeros(1))
    assert xp is ad.namespace(mx.zeros(1)) and "mlx" in repr(xp)
    a_np = np.array([3.0, -0.0, 0.0, -2.0, 3.0])
    b_np = np.array([4.0, 1.0, -1.0, 0.5, -4.0])
    a, b = mx.array(a_np, dtype=mx.float64), mx.array(b_np, dtype=mx.float64)

    def same(got, expected):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12)

    same(xp.hypot(a, b), np.hypot(a_np, b_np))
    big = xp.asarray(np.array([1e300]))
    same(xp.hypot(big, big), np.hypot(1e300, 1e300))
    same(xp.copysign(b, a), np.copysign(b_np, a_np))
    same(xp.signbit(a), np.signbit(a_np))
    same(xp.nonzero(a)[0], np.nonzero(a_np)[0])
    same(xp.unique_values(a), np.unique(a_np))
    same(xp.cumulative_sum(b, include_initial=True), np.concatenate([[0.0], np.cumsum(b_np)]))
    same(xp.cumulative_prod(b), np.cumprod(b_np))
    same(xp.std(b, correction=1), np.std(b_np, ddof=1))
    same(xp.sum(mx.array([1, 2]), dtype=mx.float64), 3.0)
    same(xp.clip(b, min=-1.0, max=1.0), np.clip(b_np, -1, 1))
    same(xp.sort(b, descending=True), np.sort(b_np)[::-1])
    same(xp.argsort(b, descending=True), np.argsort(-b_np, kind="stable"))
    same(xp.linalg.vector_norm(b), np.linalg.norm(b_np))
    same(xp.linalg.vector_norm(b, ord=1), np.linalg.norm(b_np, 1))
    same(xp.linalg.vector_norm(b, ord=float("inf")), np.linalg.norm(b_np, np.inf))
    m_np = np.arange(6.0).reshape(2, 3)
    m = xp.asarray(m_np)
    assert m.dtype == mx.float64  # a bare mx.array(m_np) would be float32
    same(xp.linalg.matrix_norm(m), np.linalg.norm(m_np))
    same(xp.linalg.trace(m), np.trace(m_np))
    same(xp.linalg.diagonal(m, offset=1), np.diagonal(m_np, 1))
    same(xp.linalg.outer(b, b), np.outer(b_np, b_np))
    same(xp.eye(3, dtype=mx.float64, device=None), np.eye(3))
    assert xp.bool == mx.bool_ and xp.astype(b, mx.float32).dtype == mx.float32
