"""AutoMyGrad: the checks every backend passes (`backend_suite.py`: closed forms, scenarios,
properties, the bad-input catalogue, the namespace's cases), and what is MyGrad's own: value
forms, MyGrad tensors in and out, float32, constants left writeable, its namespace, its
`DifferentiateWith` host, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import anydiff as ad
from backend_suite import BackendSuite, C, T, U, X, close, substitutes, wave
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

mg = pytest.importorskip("mygrad", reason="MyGrad is not installed: pip install 'anydiff[mygrad]'")

MG = ad.AutoMyGrad()
FD = ad.AutoFiniteDiff()

A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]])
W = np.array([-0.4, 0.2, 0.7])


class TestMyGrad(BackendSuite):
    backend = MG
    # first order is MyGrad's reverse mode, exact to rounding; second order differences its
    # gradients (about 12 digits)
    atol = {"second_derivative": 1e-11, "hvp": 1e-11, "hessian": 1e-11}
    unsupported = ("cache", "inplace")
    property_examples = 30
    tensor_kind = "mygrad"
    # What MyGrad lacks through array-api-compat, with the NumPy reference each must match.
    namespace_cases = {
        "cumulative_sum": lambda xp, v: xp.cumulative_sum(xp.stack([v, v**2]), axis=1, include_initial=True),
        "cumulative_prod": lambda xp, v: xp.cumulative_prod(v, include_initial=True),
        "vecdot": lambda xp, v: xp.vecdot(xp.asarray(A), v),
        "take": lambda xp, v: xp.take(xp.asarray(A) * v, xp.asarray([2, 0, 2]), axis=1),
        "take_along_axis": lambda xp, v: xp.take_along_axis(xp.asarray(A) * v, xp.asarray([[2], [0], [1]]), axis=1),
        "flip": lambda xp, v: xp.flip(xp.asarray(A) * v, axis=0),
        "sort descending": lambda xp, v: xp.sort(v * xp.asarray(W), descending=True),
        "sign": lambda xp, v: xp.sign(v) * v,
        "concat axis None": lambda xp, v: xp.concat([xp.asarray(A), v], axis=None),
        "unstack": lambda xp, v: xp.unstack(xp.asarray(A) * v, axis=1)[1],
        "matrix_transpose": lambda xp, v: xp.matrix_transpose(xp.asarray(A) * v),
        "vector_norm": lambda xp, v: xp.stack(
            [xp.linalg.vector_norm(v, ord=o) for o in (2, 1, math.inf, -math.inf, 3)]
        ),
        "diagonal trace outer": lambda xp, v: (
            xp.linalg.diagonal(xp.linalg.outer(v, v), offset=1) + xp.linalg.trace(xp.asarray(A) * v)
        ),
        "asarray of tensors": lambda xp, v: xp.asarray([v[0], v[1] ** 2], dtype=xp.float64),
        "numpy names": lambda xp, v: xp.atan2(v, 2.0) + xp.acos(v / 2) + xp.exp(v) * xp.std(v, correction=1),
    }


def test_value_forms():
    y, g = ad.value_and_gradient(energy, MG, X)
    close(y, energy(X))
    close(g, energy_gradient(X))
    y, dy, d2y = ad.value_derivative_and_second_derivative(curve, MG, 0.7)
    close(y, curve(np.asarray(0.7)))
    close(dy, [np.cos(0.7), 3 * 0.49])
    close(d2y, [-np.sin(0.7), 4.2], atol=1e-11)
    y, g, h = ad.value_gradient_and_hessian(energy, MG, X)
    close(g, energy_gradient(X))
    close(h, energy_hessian(X), atol=1e-11)
    assert np.array_equal(h, h.T)
    g, (h1, h2) = ad.gradient_and_hvp(energy, MG, X, (T, U))
    close(h2, energy_hessian(X) @ U, atol=1e-11)


def test_prep_info_says_how_second_order_is_computed():
    assert ad.prepare_gradient(energy, MG, X).info == {"mode": "reverse", "route": "Tensor.backward"}
    assert ad.prepare_hessian(energy, MG, X).info == {"strategy": "differences-of-reverse", "route": "Tensor.backward"}


def test_batched_tangents_and_contexts():
    jac = stretch_jacobian(X)
    for result, t in zip(ad.pushforward(stretch, MG, X, (T, 2 * T, U)), (T, 2 * T, U), strict=True):
        close(result, jac @ t)
    for result, u in zip(ad.pullback(stretch, MG, X, (T, 2 * T, U)), (T, 2 * T, U), strict=True):
        close(result, u @ jac)

    def f(x, a):
        return np.sum(a * np.sin(x))  # NumPy's own functions: MyGrad's protocols keep the graph

    a = np.linspace(1.0, 2.0, 5)
    prep = ad.prepare_gradient(f, MG, X, ad.Constant(a))
    close(ad.gradient(f, MG, X, ad.Constant(2 * a), prep=prep), 2 * a * np.cos(X))


def test_mygrad_tensors_in_and_out():
    g = ad.gradient(energy, MG, mg.tensor(X))
    assert isinstance(g, mg.Tensor) and g.dtype == np.float64
    close(g.data, energy_gradient(X))
    # and into other backends, through NumPy (MyGrad has no DLPack)
    j = ad.jacobian(stretch, FD, mg.tensor(X))
    assert isinstance(j, mg.Tensor)
    close(j.data, stretch_jacobian(X), rtol=1e-7, atol=1e-8)


def test_float32_stays_float32():
    # MyGrad computes `tensor * 2.0` of a float32 tensor in float64: results are rounded back.
    x = X.astype(np.float32)
    for operator, args in (("gradient", ()), ("hessian", ()), ("hvp", (x,)), ("jacobian", ()), ("pullback", (x,))):
        f = stretch if operator in ("jacobian", "pullback") else energy
        result = getattr(ad, operator)(f, MG, x, *args)
        assert result.dtype == np.float32, operator
    y, g = ad.value_and_gradient(energy, MG, x)
    assert y.dtype == np.float32 and g.dtype == np.float32
    close(g, energy_gradient(X), rtol=1e-5, atol=1e-6)


def test_constants_are_left_writeable_and_unchanged():
    # MyGrad's memory guard would make the arrays of a graph read-only until it is cleared.
    a = np.linspace(1.0, 2.0, 5)
    x = X.copy()
    ad.prepare_hessian(lambda x, a: np.sum(a * x**3), MG, x, ad.Constant(a))
    ad.jacobian(lambda x, a: a * x, MG, x, ad.Constant(a))
    assert a.flags.writeable and x.flags.writeable
    np.testing.assert_array_equal(a, np.linspace(1.0, 2.0, 5))
    np.testing.assert_array_equal(x, X)


def test_a_numpy_result_independent_of_x_gives_zeros():
    close(ad.jacobian(lambda x: np.ones(3), MG, X), np.zeros((3, 5)))


def test_jacobian_agrees_with_finite_differences():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(4, 3))

    def f(x):
        xp = ad.namespace(x)
        return xp.tanh(xp.matmul(xp.asarray(mixing), x)) * xp.sum(x**2)

    x = rng.normal(size=3)
    close(ad.jacobian(f, MG, x), ad.jacobian(f, FD, x), rtol=1e-7, atol=1e-9)
    close(ad.hessian(lambda x: ad.namespace(x).sum(f(x)), MG, x), ad.hessian(lambda x: np.sum(f(x)), FD, x), atol=1e-5)


# -- the array-API namespace ------------------------------------------------------------------


def test_namespace_of_a_tensor():
    xp = ad.namespace(mg.tensor(X))
    assert type(xp).__name__ == "MyGradNamespace"
    y = xp.sum(xp.cumulative_sum(mg.tensor([1.0, 2.0])) ** 2)
    assert isinstance(y, mg.Tensor)


# -- MyGrad programs calling a DifferentiateWith function -------------------------------------------


@pytest.mark.parametrize(
    ("substitute", "atol"), substitutes(1e-7), ids=lambda v: repr(v) if not isinstance(v, float) else ""
)
def test_differentiate_with_call_vjp_and_gradient(substitute, atol):
    dw = ad.DifferentiateWith(wave, substitute)
    x = mg.tensor(X)
    y = dw(x, C)
    assert isinstance(y, mg.Tensor) and y.dtype == np.float64
    close(y.data, C * np.sin(X), rtol=0, atol=1e-15)
    y.backward(U)  # a pullback: Uᵀ J, J = diag(c cos x)
    close(x.grad, U * C * np.cos(X), rtol=0, atol=atol)
    x = mg.tensor(X)
    mg.sum(dw(x, C) ** 2).backward()  # a gradient through MyGrad's own operations around it
    close(x.grad, 2 * C**2 * np.sin(X) * np.cos(X), rtol=0, atol=10 * atol)


def test_differentiate_with_scalars_float32_and_contexts():
    dw = ad.DifferentiateWith(wave, ad.AutoFiniteDiff())
    t = mg.tensor(0.7)
    dw(t, 2.0).backward()
    close(t.grad, 2 * np.cos(0.7), rtol=0, atol=1e-8)
    x = mg.tensor(X.astype(np.float32))
    y = dw(x, C.astype(np.float32))
    mg.sum(y).backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    close(x.grad, C * np.cos(X), rtol=0, atol=1e-3)  # float32 finite differences
    # a context is not differentiated, even as a tensor that MyGrad tracks
    x, c = mg.tensor(X), mg.tensor(C)
    mg.sum(dw(x, c)).backward()
    close(x.grad, C * np.cos(X), rtol=0, atol=1e-7)
    assert c.grad is None


def test_differentiate_with_mygrad_as_substitute_is_mygrad_itself():
    x = mg.tensor(X)
    mg.sum(ad.DifferentiateWith(wave, MG)(x, C)).backward()
    close(x.grad, C * np.cos(X), rtol=0, atol=1e-15)


def test_second_order_pairs_with_mygrad():
    # MyGrad as the inner part: another library differentiates MyGrad's gradients.
    pytest.importorskip("jax")
    h = ad.hessian(energy, ad.SecondOrder(ad.AutoJAX(), MG), X)
    close(h, energy_hessian(X), rtol=0, atol=1e-12)
    # MyGrad as the outer part of another library: its backward pass is not recorded, so the
    # inner part's derivatives would be constants to it (zero Hessians): refused at preparation.
    with pytest.raises(ad.UnsupportedError, match=r"AutoMyGrad\(\) cannot be the outer part .* does not record"):
        ad.prepare_hessian(energy, ad.SecondOrder(MG, ad.AutoJAX()), X)
    h = ad.hessian(energy, ad.SecondOrder(FD, MG), X)
    close(h, energy_hessian(X), rtol=0, atol=1e-6)


# -- errors ------------------------------------------------------------------------------------


def test_a_function_mygrad_cannot_differentiate_is_explained():
    with pytest.raises(
        ad.FunctionNotDifferentiableError,
        match=r"gradient: MyGrad cannot differentiate a function `f` calls on its tensors \(.*numpy.linalg.inv",
    ):
        ad.gradient(lambda x: np.sum(np.linalg.inv(np.reshape(x[:4], (2, 2)))), MG, X)


def test_a_result_that_is_not_an_array_is_explained():
    # (a list of arrays is a tree of results, which anydiff differentiates)
    with pytest.raises(
        TypeError,
        match=r"AutoMyGrad\(\): `f` must return one array of the kind it receives \(mygrad\); it returned str",
    ):
        ad.jacobian(lambda x: "text", MG, X)
