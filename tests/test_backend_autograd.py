"""AutoAutograd: every operator against closed forms and finite differences, the array-API
namespace over autograd.numpy, array kinds, errors, and the scenario suite."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

autograd = pytest.importorskip("autograd", reason="autograd is not installed: pip install 'anydiff[autograd]'")
anp = autograd.numpy

AG = ad.AutoAutograd()
FD = ad.AutoFiniteDiff()

X = np.array([0.3, -0.7, 1.1, 0.4, -0.2])
X2 = np.array([-0.5, 0.8, 0.1, -1.3, 0.6])
T = np.array([0.5, -1.0, 2.0, 0.25, 1.5])
U = np.array([1.0, 0.5, -0.5, 2.0, -1.0])


def close(got, want, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


# (f, x, tangents, closed form at a point)
CASES = {
    "gradient": (energy, X, None, energy_gradient),
    "jacobian": (stretch, X, None, stretch_jacobian),
    "pushforward": (stretch, X, T, lambda x: stretch_jacobian(x) @ T),
    "pullback": (stretch, X, U, lambda x: U @ stretch_jacobian(x)),
    "derivative": (curve, 0.7, None, lambda t: np.array([np.cos(t), 3 * t**2])),
    "second_derivative": (curve, 0.7, None, lambda t: np.array([-np.sin(t), 6 * t])),
    "hvp": (energy, X, T, lambda x: energy_hessian(x) @ T),
    "hessian": (energy, X, None, energy_hessian),
}


@pytest.mark.parametrize("operator", list(CASES))
def test_operator_matches_closed_form_at_two_points(operator):
    f, x, tangents, expected = CASES[operator]
    args = (x,) if tangents is None else (x, tangents)
    prep = getattr(ad, f"prepare_{operator}")(f, AG, *args)
    for point in (x, X2 if isinstance(x, np.ndarray) else -1.3):
        args = (point,) if tangents is None else (point, tangents)
        result = getattr(ad, operator)(f, AG, *args, prep=prep)
        assert isinstance(result, np.ndarray) and result.dtype == np.float64
        close(result, expected(np.asarray(point)))


def test_value_forms():
    y, g = ad.value_and_gradient(energy, AG, X)
    close(y, energy(X))
    close(g, energy_gradient(X))
    y, dy, d2y = ad.value_derivative_and_second_derivative(curve, AG, 0.7)
    close(y, curve(np.asarray(0.7)))
    close(d2y, [-np.sin(0.7), 4.2])
    y, g, h = ad.value_gradient_and_hessian(energy, AG, X)
    close(g, energy_gradient(X))
    close(h, energy_hessian(X))
    g, (h1, h2) = ad.gradient_and_hvp(energy, AG, X, (T, U))
    close(h2, energy_hessian(X) @ U)


@pytest.mark.parametrize("shape", [(2, 5), (10, 3)])  # columns (forward) and rows (reverse)
def test_jacobian_modes_agree_with_finite_differences(shape):
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(shape[1], shape[0]))

    def f(x):
        xp = ad.namespace(x)
        return xp.tanh(xp.matmul(mixing, x)) * xp.sum(x**2)

    x = rng.normal(size=shape[0])
    prep = ad.prepare_jacobian(f, AG, x)
    assert prep.info["mode"] == ("forward" if shape == (2, 5) else "reverse")
    close(ad.jacobian(f, AG, x, prep=prep), ad.jacobian(f, FD, x), rtol=1e-7, atol=1e-9)


def test_batched_tangents():
    tangents = (T, 2 * T, U)
    jac = stretch_jacobian(X)
    for result, t in zip(ad.pushforward(stretch, AG, X, tangents), tangents, strict=True):
        close(result, jac @ t)
    for result, u in zip(ad.pullback(stretch, AG, X, tangents), tangents, strict=True):
        close(result, u @ jac)


def test_other_kinds_and_float32():
    torch = pytest.importorskip("torch")
    g = ad.gradient(energy, AG, torch.tensor(X))
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    close(g.numpy(), energy_gradient(X))
    g32 = ad.gradient(energy, AG, X.astype(np.float32))
    assert g32.dtype == np.float32
    close(g32, energy_gradient(X), rtol=1e-5)


def test_float32_results_stay_float32():
    # autograd's own rules for `where` and `mean` compute in float64.
    def f(x):
        xp = ad.namespace(x)
        return xp.mean(xp.where(x > 0.0, x**2, x))

    x = X.astype(np.float32)
    for operator, args in (("gradient", ()), ("hessian", ()), ("hvp", (x,)), ("jacobian", ())):
        assert getattr(ad, operator)(f, AG, x, *args).dtype == np.float32, operator


def test_scalar_to_scalar_jacobian_and_hessian():
    close(ad.jacobian(lambda t: t**3, AG, np.float64(1.5)), 6.75)
    close(ad.hessian(lambda t: t**3, AG, np.float64(1.5)), 9.0)


def test_contexts_and_inputs_not_mutated():
    def f(x, a):
        xp = ad.namespace(x)
        return xp.sum(a * xp.sin(x))

    a = np.linspace(1.0, 2.0, 5)
    x, t = X.copy(), T.copy()
    prep = ad.prepare_gradient(f, AG, x, ad.Constant(a))
    close(ad.gradient(f, AG, x, ad.Constant(2 * a), prep=prep), 2 * a * np.cos(X))
    ad.hvp(energy, AG, x, t)
    for array, original in ((x, X), (t, T), (a, np.linspace(1.0, 2.0, 5))):
        np.testing.assert_array_equal(array, original)


def test_function_independent_of_x_gives_zeros_without_warning():
    # autograd warns "Output seems independent of input"; the suite turns warnings into errors.
    def constant(x):
        return ad.namespace(x).sum(x * 0.0) + 2.0

    close(ad.gradient(constant, AG, X), np.zeros(5))
    close(ad.hessian(constant, AG, X), np.zeros((5, 5)))
    close(ad.jacobian(lambda x: np.ones(3), AG, X), np.zeros((3, 5)))


# -- the array-API namespace --------------------------------------------------------------------

A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]])
W = np.array([-0.4, 0.2, 0.7])

# What autograd's own array-API names lack (a derivative, or an array-API argument), each with
# the NumPy reference it must match; all are differentiated below.
NAMESPACE_CASES = {
    "cumulative_sum": lambda xp, v: xp.cumulative_sum(xp.stack([v, v**2]), axis=1, include_initial=True),
    "cumulative_prod": lambda xp, v: xp.cumulative_prod(v, include_initial=True),
    "matrix_transpose": lambda xp, v: xp.matrix_transpose(xp.asarray(A) * v),
    "vecdot": lambda xp, v: xp.vecdot(xp.asarray(A), v),
    "take": lambda xp, v: xp.take(xp.asarray(A) * v, xp.asarray([2, 0, 2]), axis=1),
    "take_along_axis": lambda xp, v: xp.take_along_axis(xp.asarray(A) * v, xp.asarray([[2], [0], [1]]), axis=1),
    "flip": lambda xp, v: xp.flip(xp.asarray(A) * v, axis=0),
    "copysign": lambda xp, v: xp.copysign(v, xp.asarray(W)),
    "positive": lambda xp, v: xp.positive(v),
    "vector_norm": lambda xp, v: xp.stack([xp.linalg.vector_norm(v, ord=o) for o in (2, 1, math.inf, -math.inf, 3)]),
    "matrix_norm": lambda xp, v: xp.stack(
        [xp.linalg.matrix_norm(xp.asarray(A) * v, ord=o) for o in ("fro", "nuc", 2, 1, -1, math.inf, -math.inf)]
    ),
    "std var": lambda xp, v: xp.std(v, correction=1) + xp.var(xp.asarray(A) * v, axis=0, keepdims=True),
    "reshape copy": lambda xp, v: xp.reshape(v, (3, 1), copy=None),
    "sort descending": lambda xp, v: xp.sort(v * xp.asarray(W), descending=True),
    "argsort descending": lambda xp, v: xp.argsort(xp.asarray(W), descending=True) * v,
    "concat axis None": lambda xp, v: xp.concat([xp.asarray(A), v], axis=None),
    "unstack": lambda xp, v: xp.unstack(xp.asarray(A) * v, axis=1)[1],
    "clip": lambda xp, v: xp.clip(v, min=-0.5, max=0.5),
    "broadcast_arrays": lambda xp, v: xp.broadcast_arrays(v, xp.asarray(A))[0],
    "cholesky upper": lambda xp, v: xp.linalg.cholesky(xp.asarray(A) + xp.linalg.outer(v, v), upper=True),
    "eigvalsh svdvals": lambda xp, v: (
        xp.linalg.eigvalsh(xp.asarray(A) + xp.linalg.outer(v, v)) + xp.linalg.svdvals(xp.asarray(A) * v)
    ),
    "diagonal trace": lambda xp, v: (
        xp.linalg.diagonal(xp.asarray(A) * v, offset=1) + xp.linalg.trace(xp.asarray(A) * v, offset=-1)
    ),
    "matrix_power": lambda xp, v: xp.linalg.matrix_power(xp.asarray(A) * v, -2),
    "tensordot solve": lambda xp, v: xp.linalg.tensordot(xp.asarray(A), v, axes=1) + xp.linalg.solve(xp.asarray(A), v),
    "asarray": lambda xp, v: xp.asarray([v[0], v[1] ** 2], dtype=xp.float64),
    "numpy names": lambda xp, v: xp.atan2(v, 2.0) + xp.acos(v / 2) + xp.pow(xp.abs(v), 1.5),
}


@pytest.mark.parametrize("label", list(NAMESPACE_CASES))
def test_namespace_values_and_derivatives(label):
    import array_api_compat.numpy as npx

    case = NAMESPACE_CASES[label]
    v = np.array([0.3, -0.6, 0.9])
    close(case(_autograd_namespace(), v), case(npx, v))

    def f(v):
        xp = ad.namespace(v)
        return xp.sum(xp.sin(xp.astype(case(xp, v), xp.float64)))

    close(ad.gradient(f, AG, v), ad.gradient(f, FD, v), rtol=1e-6, atol=1e-8)


def _autograd_namespace():
    """The namespace `ad.namespace` gives autograd's boxes (plain NumPy arrays get NumPy's)."""
    implementation(AG)  # the backend module registers it
    seen = []
    autograd.grad(lambda v: seen.append(ad.namespace(v)) or anp.sum(v))(np.zeros(1))
    return seen[0]


def test_namespace_is_registered_for_boxes():
    xp = _autograd_namespace()
    assert type(xp).__name__ == "AutogradNamespace"
    assert xp.sin is anp.sin  # names NumPy 2 already shares with the array API come from autograd


# -- errors ------------------------------------------------------------------------------------


def test_float_of_a_box_is_explained():
    def escapes(x):
        return float(ad.namespace(x).sum(x)) * ad.namespace(x).sum(x)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"gradient: `f` took a value out of an autograd"):
        ad.gradient(escapes, AG, X)


def test_writing_into_a_numpy_array_is_explained():
    def writes(x):
        out = np.zeros(5)
        out[0] = x[0]
        return ad.namespace(x).sum(out)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"build arrays with `xp.stack`"):
        ad.gradient(writes, AG, X)


def test_missing_derivative_rule_is_explained():
    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"autograd has no derivative rule.*vector_norm"):
        ad.gradient(lambda x: anp.linalg.vector_norm(x), AG, X)


def test_two_argument_functions_are_unsupported():
    def writes(y, x):
        y[...] = x

    with pytest.raises(ad.UnsupportedError, match=r"AutoAutograd\(\) cannot differentiate a two-argument"):
        ad.pushforward(writes, AG, X, T, y=np.zeros(5))


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "autograd", None)  # `import autograd` now fails
    monkeypatch.delitem(sys.modules, "anydiff._libraries.autograd.impl", raising=False)
    implementation.cache_clear()
    try:
        with pytest.raises(ad.BackendNotInstalledError, match=r"pip install 'anydiff\[autograd\]'"):
            ad.gradient(energy, AG, X)
    finally:
        implementation.cache_clear()


# -- DifferentiateWith: autograd calling other libraries, other libraries calling autograd --------


def simulate(p):
    """Plain NumPy, which autograd cannot trace: `cumsum(sin(p))`."""
    return np.cumsum(np.sin(p))


def simulate_loss_gradient(p):
    """The gradient of `sum(simulate(p)²)`: `cos(p) * (Lᵀ 2y)` with `L` lower-triangular ones."""
    y = np.cumsum(np.sin(p))
    return np.cos(p) * np.cumsum((2 * y)[::-1])[::-1]


def test_autograd_differentiates_through_differentiate_with():
    step = ad.DifferentiateWith(simulate, FD)
    loss = lambda p: anp.sum(step(p) ** 2)  # noqa: E731
    p0 = np.array([0.1, 0.2, -0.3, 0.5])
    g = simulate_loss_gradient(p0)
    close(step(p0), simulate(p0))
    close(autograd.grad(loss)(p0), g, rtol=1e-6, atol=1e-9)
    close(autograd.make_jvp(loss)(p0)(T[:4])[1], g @ T[:4], rtol=1e-6)
    # Second order: finite differences of finite differences, against autograd on the same sum.
    exact = autograd.hessian(lambda p: anp.sum(anp.cumsum(anp.sin(p)) ** 2))(p0)
    close(autograd.hessian(loss)(p0), exact, rtol=1e-4, atol=1e-4)


def test_other_libraries_differentiate_through_autograd():
    torch = pytest.importorskip("torch")

    def f(p):
        xp = ad.namespace(p)
        return xp.cumulative_sum(xp.sin(p))

    step = ad.DifferentiateWith(f, AG)
    p0 = np.array([0.1, 0.2, -0.3, 0.5])
    loss = lambda p: (step(p) ** 2).sum()  # noqa: E731
    close(torch.func.grad(loss)(torch.tensor(p0)).numpy(), simulate_loss_gradient(p0))
    exact = autograd.hessian(lambda p: anp.sum(anp.cumsum(anp.sin(p)) ** 2))(p0)
    close(torch.func.hessian(loss)(torch.tensor(p0)).numpy(), exact)


# -- the scenario suite ---------------------------------------------------------------------------


def test_scenarios():
    outcomes = test_differentiation([AG], default_scenarios())
    assert {o.status for o in outcomes} == {"works", "unsupported"}
    unsupported = {o.scenario for o in outcomes if o.status == "unsupported"}
    assert all("cache" in label or "inplace" in label for label in unsupported)


def test_sparse_scenarios():
    outcomes = test_differentiation([ad.AutoSparse(AG)], sparse_scenarios(), allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}
