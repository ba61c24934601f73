"""Second-order operators: second_derivative, hvp, hessian, and `SecondOrder(outer, inner)` pairs.

Every result is checked against closed-form derivatives; `hvp` also against `hessian @ v` and
against finite differences of the analytic gradient.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

import anydiff as ad
from closed_forms import coupled, coupled_gradient, coupled_hessian, scaled_curve, scaled_curve_derivatives

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

FD = ad.AutoFiniteDiff
SO = ad.SecondOrder

PLAIN = [FD(), FD(method="forward"), FD(method="complex"), ad.AutoJAX(), ad.AutoTorch()]
PAIRS = [
    SO(FD(), ad.AutoJAX()),
    SO(ad.AutoJAX(), FD()),
    SO(FD(), ad.AutoTorch()),
    SO(ad.AutoTorch(), FD()),
    SO(ad.AutoJAX(mode="forward"), ad.AutoJAX(mode="reverse")),
    SO(ad.AutoJAX(mode="reverse"), ad.AutoJAX(mode="forward")),
    SO(ad.AutoJAX(mode="reverse"), ad.AutoJAX(mode="reverse")),
    SO(ad.AutoJAX(mode="forward"), ad.AutoJAX(mode="forward")),
    SO(ad.AutoTorch(mode="forward"), ad.AutoTorch(mode="reverse")),
    SO(ad.AutoTorch(mode="reverse"), ad.AutoTorch(mode="forward")),
    SO(FD(), FD(method="complex")),
]
ALL = PLAIN + PAIRS

STRATEGIES = {
    repr(FD()): "second differences",
    repr(ad.AutoJAX()): "forward-over-reverse",
    repr(ad.AutoTorch()): "reverse-over-reverse",
    repr(SO(FD(), ad.AutoJAX())): "forward-over-reverse",
    repr(SO(ad.AutoJAX(), FD())): "reverse-over-forward",
    repr(SO(FD(), ad.AutoTorch())): "forward-over-reverse",
    repr(SO(ad.AutoTorch(), FD())): "reverse-over-forward",
    repr(SO(ad.AutoJAX(mode="forward"), ad.AutoJAX(mode="reverse"))): "forward-over-reverse",
    repr(SO(ad.AutoJAX(mode="reverse"), ad.AutoJAX(mode="forward"))): "reverse-over-forward",
    repr(SO(ad.AutoJAX(mode="reverse"), ad.AutoJAX(mode="reverse"))): "reverse-over-reverse",
    repr(SO(ad.AutoJAX(mode="forward"), ad.AutoJAX(mode="forward"))): "forward-over-forward",
}


def tolerance(backend):
    """(rtol, atol) for a backend: exact AD, second differences, or finite over exact."""
    if isinstance(backend, FD):
        return {"central": (1e-6, 1e-6), "forward": (2e-4, 2e-4), "complex": (1e-8, 1e-8)}[backend.method]
    if isinstance(backend, SO) and FD in (type(backend.outer), type(backend.inner)):
        return (1e-7, 1e-7)
    return (1e-11, 1e-11)


def close(actual, expected, backend):
    rtol, atol = tolerance(backend)
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def to_kind(a, kind):
    if kind == "numpy":
        return np.asarray(a, dtype=np.float64)
    if kind == "torch":
        return torch.tensor(np.asarray(a, dtype=np.float64))
    with jax.enable_x64(True):
        return jnp.asarray(np.asarray(a, dtype=np.float64))


KIND_TYPES = {"numpy": np.ndarray, "torch": torch.Tensor, "jax": jax.Array}


# -- functions with closed-form derivatives ---------------------------------------------------


def quartic(x, a):
    """Σ aᵢ sin²xᵢ + |x|⁴ / 4: vector input, every pair of coordinates coupled."""
    xp = ad.namespace(x)
    return xp.sum(a * xp.sin(x) ** 2) + xp.sum(x**2) ** 2 / 4


def quartic_gradient(x, a):
    return a * np.sin(2 * x) + (x @ x) * x


def quartic_hessian(x, a):
    return np.diag(2 * a * np.cos(2 * x)) + (x @ x) * np.eye(x.size) + 2 * np.outer(x, x)


X = np.array([0.3, -0.7, 1.1, 0.5])
A = np.array([1.0, 2.0, -0.5, 1.5])
V = np.array([1.0, -2.0, 0.5, 0.25])
W = np.array([0.0, 1.0, 1.0, -1.0])
M = np.array([[0.1, -0.4, 0.7], [0.2, 0.5, -0.3]])
B = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 1.2]])


# -- the operators, on every backend and pair ---------------------------------------------------


@pytest.mark.parametrize("backend", ALL, ids=repr)
def test_hessian_vector_input(backend):
    prep = ad.prepare_hessian(quartic, backend, X[::-1].copy(), ad.Constant(A))
    hessian = ad.hessian(quartic, backend, X, ad.Constant(A), prep=prep)  # reused at another point
    close(hessian, quartic_hessian(X, A), backend)
    np.testing.assert_allclose(hessian, hessian.T, rtol=tolerance(backend)[0], atol=tolerance(backend)[1])
    y, g, h = ad.value_gradient_and_hessian(quartic, backend, X, ad.Constant(A), prep=prep)
    close(y, quartic(X, A), backend)
    close(g, quartic_gradient(X, A), backend)
    close(h, quartic_hessian(X, A), backend)
    assert hessian.dtype == np.float64
    if repr(backend) in STRATEGIES:
        assert prep.info["strategy"] == STRATEGIES[repr(backend)]


@pytest.mark.parametrize("backend", ALL, ids=repr)
def test_hvp_batched_agrees_with_hessian(backend):
    prep = ad.prepare_hvp(quartic, backend, X[::-1].copy(), (V, W), ad.Constant(A))
    hv, hw = ad.hvp(quartic, backend, X, (V, W), ad.Constant(A), prep=prep)
    exact = quartic_hessian(X, A)
    close(hv, exact @ V, backend)
    close(hw, exact @ W, backend)
    g, hv2 = ad.gradient_and_hvp(quartic, backend, X, V, ad.Constant(A), prep=prep)  # one bare tangent
    close(g, quartic_gradient(X, A), backend)
    close(hv2, exact @ V, backend)
    if repr(backend) in STRATEGIES:
        assert prep.info["strategy"] == STRATEGIES[repr(backend)]


@pytest.mark.parametrize("backend", ALL, ids=repr)
def test_second_derivative_vector_output(backend):
    prep = ad.prepare_second_derivative(scaled_curve, backend, 0.0, ad.Constant(2.0))
    y, dy, d2y = scaled_curve_derivatives(0.4, 2.0)
    close(ad.second_derivative(scaled_curve, backend, 0.4, ad.Constant(2.0), prep=prep), d2y, backend)
    values = ad.value_derivative_and_second_derivative(scaled_curve, backend, 0.4, ad.Constant(2.0), prep=prep)
    for actual, expected in zip(values, (y, dy, d2y), strict=True):
        close(actual, expected, backend)
        assert isinstance(actual, np.ndarray) and actual.dtype == np.float64


@pytest.mark.parametrize("backend", PLAIN + [PAIRS[0], PAIRS[1], PAIRS[2], PAIRS[3], PAIRS[4]], ids=repr)
def test_hessian_and_hvp_matrix_input(backend):
    prep = ad.prepare_hessian(coupled, backend, np.zeros_like(M), ad.Constant(B))
    hessian = ad.hessian(coupled, backend, M, ad.Constant(B), prep=prep)
    assert hessian.shape == M.shape + M.shape
    close(hessian, coupled_hessian(M, B), backend)
    t = np.arange(6.0).reshape(M.shape) / 6
    hv = ad.hvp(coupled, backend, M, t, ad.Constant(B))
    close(hv, np.tensordot(coupled_hessian(M, B), t, axes=2), backend)
    y, g, _ = ad.value_gradient_and_hessian(coupled, backend, M, ad.Constant(B), prep=prep)
    close(g, coupled_gradient(M, B), backend)


@pytest.mark.parametrize("backend", [FD(), ad.AutoJAX(), ad.AutoTorch(), PAIRS[1]], ids=repr)
def test_hessian_of_a_scalar_is_the_second_derivative(backend):
    f = lambda t: ad.namespace(t).sin(t) * t  # noqa: E731
    x = np.asarray(0.8)
    hessian = ad.hessian(f, backend, x)
    assert hessian.shape == ()
    close(hessian, 2 * np.cos(0.8) - 0.8 * np.sin(0.8), backend)
    close(ad.second_derivative(f, backend, x), hessian, backend)


@pytest.mark.parametrize("backend", [FD(), ad.AutoJAX(), ad.AutoTorch(), PAIRS[0], PAIRS[1]], ids=repr)
def test_hvp_agrees_with_hessian_and_with_differences_of_the_gradient(backend):
    hvp = ad.hvp(quartic, backend, X, V, ad.Constant(A))  # one bare tangent, one bare result
    close(hvp, ad.hessian(quartic, backend, X, ad.Constant(A)) @ V, backend)
    eps = 1e-6
    differences = (quartic_gradient(X + eps * V, A) - quartic_gradient(X - eps * V, A)) / (2 * eps)
    np.testing.assert_allclose(hvp, differences, rtol=1e-6, atol=1e-6)


KIND_CASES = [
    (backend, kind)
    for backend in (FD(), ad.AutoJAX(), ad.AutoTorch(), PAIRS[0], PAIRS[3])
    for kind in ("numpy", "jax", "torch")
    # finite differences on eager JAX arrays compile every array operation once: too slow here
    if not (backend == FD() and kind == "jax")
]


@pytest.mark.parametrize(("backend", "kind"), KIND_CASES, ids=lambda a: a if isinstance(a, str) else repr(a))
def test_array_kind_in_is_array_kind_out_float64_kept(backend, kind):
    x, v, a = to_kind(X, kind), to_kind(V, kind), to_kind(A, kind)
    hessian = ad.hessian(quartic, backend, x, ad.Constant(a))
    g, hv = ad.gradient_and_hvp(quartic, backend, x, v, ad.Constant(a))
    for result in (hessian, g, hv):
        assert isinstance(result, KIND_TYPES[kind])
        assert str(result.dtype).endswith("float64")
    close(np.asarray(hessian), quartic_hessian(X, A), backend)
    close(np.asarray(hv), quartic_hessian(X, A) @ V, backend)


def test_finite_differences_run_on_jax_arrays():
    with jax.enable_x64(True):
        x, a = jnp.asarray(X), jnp.asarray(A)
    hessian = ad.hessian(quartic, FD(), x, ad.Constant(a))
    assert isinstance(hessian, jax.Array) and hessian.dtype == jnp.float64
    close(np.asarray(hessian), quartic_hessian(X, A), FD())


@pytest.mark.parametrize("kind", ["jax", "torch"])
def test_second_derivative_of_a_0d_array_keeps_its_kind(kind):
    d2 = ad.second_derivative(scaled_curve, ad.AutoJAX(), to_kind(0.4, kind), ad.Constant(2.0))
    assert isinstance(d2, KIND_TYPES[kind]) and str(d2.dtype).endswith("float64")
    close(np.asarray(d2), scaled_curve_derivatives(0.4, 2.0)[2], ad.AutoJAX())


@pytest.mark.parametrize("backend", [ad.AutoJAX(), ad.AutoTorch()], ids=repr)
def test_float32_stays_float32(backend):
    x = X.astype(np.float32)
    hessian = ad.hessian(quartic, backend, x, ad.Constant(A.astype(np.float32)))
    assert hessian.dtype == np.float32
    np.testing.assert_allclose(hessian, quartic_hessian(X, A), rtol=1e-5, atol=1e-5)


def test_torch_on_a_function_linear_in_x_gives_zeros():
    linear = lambda x: (3.0 * x).sum()  # noqa: E731
    x = torch.tensor(X)
    assert torch.equal(ad.hessian(linear, ad.AutoTorch(), x), torch.zeros(4, 4, dtype=torch.float64))
    constant = lambda x: torch.tensor(1.0, dtype=x.dtype)  # noqa: E731
    assert torch.equal(ad.hvp(constant, ad.AutoTorch(), x, x), torch.zeros(4, dtype=x.dtype))


def test_inputs_are_not_mutated():
    x, v, a = X.copy(), V.copy(), A.copy()
    for backend in (FD(), ad.AutoJAX(), ad.AutoTorch(), PAIRS[1]):
        ad.value_gradient_and_hessian(quartic, backend, x, ad.Constant(a))
        ad.gradient_and_hvp(quartic, backend, x, (v, v), ad.Constant(a))
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(v, V)
    np.testing.assert_array_equal(a, A)
    xt = torch.tensor(X)
    ad.hvp(quartic, ad.AutoTorch(), xt, xt, ad.Constant(a))
    assert torch.equal(xt, torch.tensor(X)) and not xt.requires_grad


def test_finite_differences_through_an_executor():
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        backend = FD(executor=pool)
        close(ad.hessian(quartic, backend, X, ad.Constant(A)), quartic_hessian(X, A), FD())
        close(ad.hvp(quartic, backend, X, V, ad.Constant(A)), quartic_hessian(X, A) @ V, FD())


# -- errors ---------------------------------------------------------------------------------------


def test_prep_misuse_raises_preparation_mismatch():
    backend = ad.AutoJAX()
    prep = ad.prepare_hessian(quartic, backend, X, ad.Constant(A))
    with pytest.raises(ad.PreparationMismatchError, match=r"hvp: the `prep` passed was built for other arguments"):
        ad.hvp(quartic, backend, X, V, ad.Constant(A), prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"shape +\(4,\) +\(5,\)"):
        ad.hessian(quartic, backend, np.ones(5), ad.Constant(np.ones(5)), prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"backend .*AutoJAX\(\).*AutoTorch\(\)"):
        ad.hessian(quartic, ad.AutoTorch(), X, ad.Constant(A), prep=prep)
    second = ad.prepare_second_derivative(scaled_curve, backend, 0.0, ad.Constant(2.0))
    with pytest.raises(ad.PreparationMismatchError, match=r"function"):
        ad.second_derivative(lambda t, c: t, backend, 1.0, ad.Constant(2.0), prep=second)


@pytest.mark.parametrize("operator", ["hessian", "hvp"])
def test_non_scalar_output_is_rejected(operator):
    args = (V,) if operator == "hvp" else ()
    message = rf"{operator}: `f` must return a scalar \(shape \(\)\); it returned shape \(4,\)"
    with pytest.raises(ValueError, match=message):
        getattr(ad, operator)(lambda x: x**2, ad.AutoJAX(), X, *args)


def test_second_derivative_needs_a_scalar_input():
    message = r"second_derivative: `x` must be a scalar .* got shape \(4,\)\. Use `ad\.hessian`"
    with pytest.raises(ValueError, match=message):
        ad.second_derivative(quartic, FD(), X, ad.Constant(A))


def test_cross_library_pair_goes_through_differentiate_with():
    # The outer library differentiates `ad.DifferentiateWith(f, inner)` (tests/test_bridge.py).
    pair = SO(ad.AutoJAX(), ad.AutoTorch())
    close(ad.hessian(quartic, pair, X, ad.Constant(A)), quartic_hessian(X, A), pair)


def test_pair_rejections():
    with pytest.raises(ad.UnsupportedError, match=r"hvp: the `inner` part .* evaluates through an executor"):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            ad.hvp(quartic, SO(ad.AutoJAX(), FD(executor=pool)), X, V, ad.Constant(A))
    with pytest.raises(ad.UnsupportedError, match=r"hessian: the complex-step outer part .* \(not AutoJAX\(\)\)"):
        ad.hessian(quartic, SO(FD(method="complex"), ad.AutoJAX()), X, ad.Constant(A))
    message = r"gradient: SecondOrder\(.*\) is a second-order pair.*ad\.gradient\(f, AutoJAX\(\), x, \.\.\.\)"
    with pytest.raises(ad.UnsupportedError, match=message):
        ad.gradient(quartic, SO(FD(), ad.AutoJAX()), X, ad.Constant(A))
    with pytest.raises(TypeError, match=r"the `outer` part of .* is itself a `SecondOrder`"):
        ad.hessian(quartic, SO(SO(FD(), FD()), FD()), X, ad.Constant(A))


def test_a_pair_of_a_backend_with_itself_is_that_backend():
    prep = ad.prepare_hvp(quartic, SO(ad.AutoTorch(), ad.AutoTorch()), X, V, ad.Constant(A))
    assert prep.info["route"] == "autograd tape (double backward)"
    assert "strategy='reverse-over-reverse'" in repr(prep)
