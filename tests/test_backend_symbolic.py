"""AutoSymPy, AutoCasADi, AutoPyTensor: every operator against closed forms and other backends,
preparations reused at other points and with other `Constant` values, the array-API namespace of
symbolic arrays, CasADi's sparsity patterns, errors, and the scenario suite.

Symbolic preparation compiles (PyTensor takes about a second per prep), so sizes are small and
the PyTensor cases few."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.testing import default_scenarios, test_differentiation
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian


def _installed(library: str) -> bool:
    return importlib.util.find_spec(library) is not None


def _param(backend: ad.AbstractBackend, library: str):  # noqa: ANN202
    reason = f"{library} is not installed: pip install 'anydiff[{library}]'"
    return pytest.param(backend, id=library, marks=pytest.mark.skipif(not _installed(library), reason=reason))


SYMPY, CASADI, PYTENSOR = ad.AutoSymPy(), ad.AutoCasADi(), ad.AutoPyTensor()
BACKENDS = [_param(SYMPY, "sympy"), _param(CASADI, "casadi"), _param(PYTENSOR, "pytensor")]
# the backends whose symbolic arrays are `SymbolicArray`s (elementwise expression arrays)
ELEMENTWISE = [_param(SYMPY, "sympy"), _param(CASADI, "casadi")]
FD = ad.AutoFiniteDiff()

X = np.array([0.3, -0.7, 1.1, 0.4])
X2 = np.array([-0.5, 0.8, 0.1, -1.3])
T = np.array([0.5, -1.0, 2.0, 0.25])
U = np.array([1.0, 0.5, -0.5, 2.0])




# (f, x, second point, tangents, closed form at a point)
CASES = {
    "gradient": (energy, X, X2, None, energy_gradient),
    "jacobian": (stretch, X, X2, None, stretch_jacobian),
    "pushforward": (stretch, X, X2, T, lambda x: stretch_jacobian(x) @ T),
    "pullback": (stretch, X, X2, U, lambda x: U @ stretch_jacobian(x)),
    "derivative": (curve, 0.7, -1.3, None, lambda t: np.array([np.cos(t), 3 * t**2])),
    "second_derivative": (curve, 0.7, -1.3, None, lambda t: np.array([-np.sin(t), 6 * t])),
    "hvp": (energy, X, X2, T, lambda x: energy_hessian(x) @ T),
    "hessian": (energy, X, X2, None, energy_hessian),
}


def close(got, want, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("operator", list(CASES))
def test_operator_matches_closed_form_at_two_points(backend, operator):
    f, x, x2, tangents, expected = CASES[operator]
    extra = () if tangents is None else (tangents,)
    prep = getattr(ad, f"prepare_{operator}")(f, backend, x, *extra)
    results = []
    for point in (x, x2):
        result = getattr(ad, operator)(f, backend, point, *extra, prep=prep)
        assert isinstance(result, np.ndarray) and result.dtype == np.float64
        close(result, expected(point))
        results.append(result)
    close(results[0], expected(x))  # the second call did not overwrite the first result
    assert prep.info["mode"] == "symbolic"


@pytest.mark.parametrize("backend", BACKENDS)
def test_value_forms_and_batched_tangents(backend):
    y, g, h = ad.value_gradient_and_hessian(energy, backend, X)
    close(y, energy(X))
    close(g, energy_gradient(X))
    close(h, energy_hessian(X))
    g, products = ad.gradient_and_hvp(energy, backend, X, (T, U))
    close(g, energy_gradient(X))
    close(products[0], energy_hessian(X) @ T)
    close(products[1], energy_hessian(X) @ U)
    y, (ty, tu) = ad.value_and_pushforward(stretch, backend, X, (T, U))
    close(y, stretch(X))
    close(ty, stretch_jacobian(X) @ T)
    close(tu, stretch_jacobian(X) @ U)


def network(x, w1, b1, w2):
    """A small MLP on a matrix of inputs (one column per sample)."""
    xp = ad.namespace(x)
    hidden = xp.tanh(w1 @ x + b1[:, None])
    return xp.sum(w2 @ hidden, axis=0)


RNG = np.random.default_rng(0)
W1, B1, W2 = RNG.normal(size=(3, 2)), RNG.normal(size=3), RNG.normal(size=(1, 3))
BATCH = RNG.normal(size=(2, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_input_agrees_with_jax_and_a_constant_changes_without_preparing_again(backend):
    jax_backend = ad.AutoJAX() if _installed("jax") else FD
    rtol = 1e-10 if _installed("jax") else 1e-6
    prep = ad.prepare_jacobian(network, backend, BATCH, ad.Constant(W1), ad.Constant(B1), ad.Constant(W2))
    for w1, b1 in ((W1, B1), (2 * W1, -B1)):
        contexts = (ad.Constant(w1), ad.Constant(b1), ad.Constant(W2))
        got = ad.jacobian(network, backend, BATCH, *contexts, prep=prep)
        want = ad.jacobian(network, jax_backend, BATCH, *contexts)
        assert got.shape == (3, 2, 3)
        close(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_python_float_contexts_are_inputs_and_other_contexts_are_fixed(backend):
    def scaled(x, a, power):
        xp = ad.namespace(x)
        return xp.sum(a * x**power)

    prep = ad.prepare_gradient(scaled, backend, X, ad.Constant(2.0), ad.Constant(3))
    close(ad.gradient(scaled, backend, X, ad.Constant(5.0), ad.Constant(3), prep=prep), 15.0 * X**2)
    with pytest.raises(ad.PreparationMismatchError, match=r"gradient: context value 1 \(int\) differs"):
        ad.gradient(scaled, backend, X, ad.Constant(5.0), ad.Constant(2), prep=prep)


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_a_constant_of_another_shape_is_refused(backend):
    def weighted(x, w):
        return ad.namespace(x).sum(w * x)

    prep = ad.prepare_gradient(weighted, backend, X, ad.Constant(np.ones(4)))
    with pytest.raises(ad.PreparationMismatchError, match=r"gradient: context value 0 has shape \(1,\)"):
        ad.gradient(weighted, backend, X, ad.Constant(np.ones(1)), prep=prep)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_stays_float32(backend):
    x = X.astype(np.float32)
    g = ad.gradient(energy, backend, x)
    assert g.dtype == np.float32
    close(g, energy_gradient(X), rtol=1e-6, atol=1e-6)


def everything(x, c):
    """Much of the namespace at once: elementwise, reductions, indexing, joins, products."""
    xp = ad.namespace(x)
    m = xp.reshape(x, (2, 3))
    rows = xp.concat([m, xp.flip(m, axis=1)], axis=0)  # (4, 3)
    products = c @ rows.T + rows @ xp.matrix_transpose(rows)  # (4, 4)
    smooth = (
        xp.sum(xp.tanh(products) * xp.exp(-xp.square(rows[:, :1])))
        + xp.mean(xp.log1p(x**2)) * xp.prod(xp.cos(m[0]))
        + xp.sum(xp.atan2(x, 2.0 + xp.abs(x)))
        + xp.sum(xp.hypot(x, 1.5))
        + xp.sum(xp.expm1(x / 3))
        + xp.var(m, axis=1, correction=1)[1]
        + xp.std(x)
        + xp.linalg.vector_norm(x)
        + xp.vecdot(x, xp.roll(x, 1))
        + xp.sum(xp.outer(m[1], m[0]) * xp.eye(3))
        + xp.sum(xp.cumulative_sum(x) * xp.arange(6, dtype=x.dtype) / 6)
        + xp.sum(xp.tensordot(m, m, axes=([1], [1]))) / 10
    )
    piecewise = (
        xp.sum(xp.where(x > 0, x**3, -x / 2))
        + xp.max(m)
        + xp.min(m, axis=0)[2]
        + xp.sum(xp.clip(x, -0.5, 0.5))
        + xp.sum(xp.maximum(x, 0.1 * x))
        + xp.logaddexp(x[0], x[1])
    )
    stacked = xp.stack([x[0] * x[1], xp.sqrt(x[2] ** 2 + 1.0), xp.asarray(2.0, dtype=x.dtype)])
    first, second = xp.unstack(xp.permute_dims(m, (1, 0)), axis=1)  # the rows of m
    structure = (
        xp.sum(stacked * xp.ones(3)) + xp.sum(xp.expand_dims(x, 0)[0, ::2]) + xp.vecdot(first, second)
        + xp.sum(xp.diagonal(m[:, :2])) + xp.sum(xp.astype(m, x.dtype) ** 2) / 10
        + xp.sum(xp.where(xp.logical_and(x > -0.5, x < 0.5), x**2, xp.asin(x / 2)))
    )  # fmt: skip
    return smooth + piecewise + structure


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_namespace_covers_typical_functions(backend):
    x = np.array([0.3, -0.7, 1.1, 0.4, -0.2, 0.9])
    c = RNG.normal(size=(4, 3))
    reference = ad.AutoJAX() if _installed("jax") else FD
    rtol = 1e-10 if _installed("jax") else 1e-6
    y, g = ad.value_and_gradient(everything, backend, x, ad.Constant(c))
    close(y, everything(x, c))
    close(g, ad.gradient(everything, reference, x, ad.Constant(c)), rtol=rtol, atol=rtol)


@pytest.mark.skipif(not _installed("pytensor"), reason="pytensor is not installed")
def test_pytensor_namespace_covers_typical_functions():
    import pytensor
    from pytensor.compile.mode import Mode

    x = np.array([0.3, -0.7, 1.1, 0.4, -0.2, 0.9])
    c = RNG.normal(size=(4, 3))
    impl = implementation(PYTENSOR)
    trace = impl.trace("gradient", everything, x, (c,))
    gradient = impl.symbolic_gradient(trace.y, trace.x)
    # PyTensor's Python implementations: Numba takes over a minute to compile this graph, and
    # what is checked here is the namespace and the derivative graph, not the compiler
    function = pytensor.function([trace.x, *trace.contexts.variables], [trace.y, gradient], mode=Mode("py", None))
    y, g = function(x, c)
    reference = ad.AutoJAX() if _installed("jax") else FD
    rtol = 1e-10 if _installed("jax") else 1e-6
    close(y, [everything(x, c)])
    close(g, ad.gradient(everything, reference, x, ad.Constant(c)), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_in_place_writes_and_numpy_functions_trace(backend):
    def writes(x):
        xp = ad.namespace(x)
        out = xp.zeros(3, dtype=x.dtype)
        out[0] = x[0] * x[1]
        out[1:] = np.sin(x[1:])  # a NumPy ufunc on a symbolic array
        return np.sum(out)  # a NumPy function with an array-API counterpart

    def writes_into(y, x):
        y[...] = x**2

    close(ad.gradient(writes, backend, X[:3]), [X[1], X[0] + np.cos(X[1]), np.cos(X[2])])
    close(ad.jacobian(writes_into, backend, X, y=np.empty(4)), np.diag(2 * X))


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_dependent_branch_is_refused_with_a_hint(backend):
    def branch(x):
        if x[0] > 0:
            return ad.namespace(x).sum(x**2)
        return ad.namespace(x).sum(x)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"^gradient: `f` needs the value of a symbolic") as e:
        ad.gradient(branch, backend, X)
    assert "xp.where(condition, a, b)" in str(e.value) and "ad.AutoJAX()" in str(e.value)
    assert repr(backend) in str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float_of_a_symbolic_value_is_refused(backend):
    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"^jacobian: `f` needs the value"):
        ad.jacobian(lambda x: x * float(x[0]), backend, X)


@pytest.mark.parametrize("backend", BACKENDS)
def test_operation_outside_the_namespace_names_it_and_the_backend(backend):
    def inverse(x):
        xp = ad.namespace(x)
        return xp.sum(xp.linalg.inv(xp.reshape(x, (2, 2))))

    with pytest.raises(ad.UnsupportedError, match=r"^gradient: `xp\.linalg\.inv` is not supported") as e:
        ad.gradient(inverse, backend, X)
    assert f"symbolic arrays of {backend!r}" in str(e.value)


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_numpy_function_without_counterpart_is_refused(backend):
    with pytest.raises(ad.UnsupportedError, match=r"`numpy\.einsum` is not supported"):
        ad.gradient(lambda x: np.einsum("i,i->", x, x), backend, X)


@pytest.mark.skipif(not _installed("pytensor"), reason="pytensor is not installed")
def test_pytensor_refuses_writes_in_place():
    def uses_cache(x, cache):
        cache[...] = x**2
        return ad.namespace(x).sum(cache)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"^gradient: `f` writes into an array in place"):
        ad.gradient(uses_cache, PYTENSOR, X, ad.Cache(np.zeros(4)))
    with pytest.raises(ad.UnsupportedError, match=r"AutoPyTensor\(\) cannot differentiate a two-argument"):
        ad.jacobian(lambda y, x: None, PYTENSOR, X, y=np.empty(4))


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_inputs_are_not_mutated(backend):
    x, t, w = X.copy(), T.copy(), np.arange(4.0)
    ad.pushforward(lambda x, w: w * ad.namespace(x).sin(x), backend, x, t, ad.Constant(w))
    ad.hvp(lambda x, w: ad.namespace(x).sum(w * x**3), backend, x, t, ad.Constant(w))
    close(x, X)
    close(t, T)
    close(w, np.arange(4.0))


@pytest.mark.skipif(not _installed("casadi"), reason="casadi is not installed")
def test_casadi_sparsity_patterns_are_structural():
    impl = implementation(CASADI)

    def chain(x, w):
        xp = ad.namespace(x)
        return xp.concat([x[1:] * x[:-1] * w, xp.sum(x[:2]) * xp.ones(1)])

    zeros = np.zeros(4)  # values do not matter: the floating-point context is symbolic
    pattern = impl.jacobian_sparsity(chain, zeros, (1.0,))
    expected = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 0, 0]], dtype=bool)
    assert pattern.dtype == bool and pattern.shape == (4, 4)
    np.testing.assert_array_equal(pattern.toarray(), expected)
    hessian = impl.hessian_sparsity(lambda x: ad.namespace(x).sum(x[1:] * x[:-1]) + x[0] ** 2, zeros, ())
    np.testing.assert_array_equal(
        hessian.toarray(), np.eye(4, k=1, dtype=bool) | np.eye(4, k=-1, dtype=bool) | np.diag([1, 0, 0, 0]).astype(bool)
    )


@pytest.mark.skipif(not _installed("casadi"), reason="casadi is not installed")
def test_finite_differences_over_casadi():
    close(ad.hessian(energy, ad.SecondOrder(FD, CASADI), X), energy_hessian(X), rtol=1e-6, atol=1e-6)
    with pytest.raises(ad.UnsupportedError, match=r"another backend cannot trace in turn"):
        ad.hessian(energy, ad.SecondOrder(CASADI, SYMPY), X)


@pytest.mark.parametrize("backend", ELEMENTWISE)
def test_scenario_suite(backend):
    test_differentiation(backend, default_scenarios())


@pytest.mark.skipif(not _installed("pytensor"), reason="pytensor is not installed")
def test_scenario_suite_pytensor_sample():
    # a few input and output kinds (PyTensor compiles each prep in seconds; the operators are
    # all checked above)
    labels = {"derivative-matrix", "pullback-scalar-to-scalar", "hvp-matrix"}
    scenarios = [s for s in default_scenarios() if s.label in labels]
    assert len(scenarios) == len(labels)
    test_differentiation(PYTENSOR, scenarios)
