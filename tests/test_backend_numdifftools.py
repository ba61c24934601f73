"""AutoNumdifftools: the checks every backend passes (`backend_suite.py`: closed forms,
scenarios, properties, the bad-input catalogue), and what is numdifftools' own: its accuracy
against fixed-step finite differences, value forms, its options, errors."""

from __future__ import annotations

import numpy as np
import pytest

import anydiff as ad
from backend_suite import CLOSED_FORMS, BackendSuite, T, U, X
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

pytest.importorskip("numdifftools", reason="numdifftools is not installed: pip install 'anydiff[numdifftools]'")

ND = ad.AutoNumdifftools()
FD = ad.AutoFiniteDiff()


def close(got, want, rtol=1e-10, atol=1e-10):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


class TestNumdifftools(BackendSuite):
    backend = ND
    # Richardson extrapolation keeps 12-14 digits of first derivatives and about 11 of second ones.
    atol = {operator: 1e-11 for operator in CLOSED_FORMS} | {"second_derivative": 1e-9, "hvp": 1e-9, "hessian": 1e-9}
    property_examples = 8


@pytest.mark.parametrize("operator", list(CLOSED_FORMS))
def test_more_accurate_than_fixed_step_central_differences(operator):
    f, x, tangents, expected = CLOSED_FORMS[operator]
    args = (x,) if tangents is None else (x, tangents)
    want = expected(np.asarray(x))
    ours = np.max(np.abs(getattr(ad, operator)(f, ND, *args) - want))
    fixed = np.max(np.abs(getattr(ad, operator)(f, FD, *args) - want))
    assert ours < fixed / 10, (ours, fixed)


def test_value_forms():
    y, g = ad.value_and_gradient(energy, ND, X)
    close(y, energy(X), rtol=0, atol=0)
    close(g, energy_gradient(X))
    y, dy, d2y = ad.value_derivative_and_second_derivative(curve, ND, 0.7)
    close(y, curve(np.asarray(0.7)), rtol=0, atol=0)
    close(dy, [np.cos(0.7), 3 * 0.49])
    close(d2y, [-np.sin(0.7), 4.2], atol=1e-9)
    y, g, h = ad.value_gradient_and_hessian(energy, ND, X)
    close(g, energy_gradient(X))
    close(h, energy_hessian(X), atol=1e-9)
    g, (h1, h2) = ad.gradient_and_hvp(energy, ND, X, (T, U))
    close(g, energy_gradient(X))
    close(h2, energy_hessian(X) @ U, atol=1e-9)


def test_prep_info_names_the_library_routes():
    assert ad.prepare_gradient(energy, ND, X).info == {"mode": "forward", "route": "nd.Gradient"}
    assert ad.prepare_jacobian(stretch, ND, X).info == {"mode": "forward", "route": "nd.Jacobian"}
    assert ad.prepare_hessian(energy, ND, X).info == {"strategy": "nd.Hessian", "mode": "central"}


@pytest.mark.parametrize("method", ["forward", "backward", "complex"])
def test_methods(method):
    backend = ad.AutoNumdifftools(method=method)
    atol = 1e-14 if method == "complex" else 1e-8
    close(ad.gradient(energy, backend, X), energy_gradient(X), rtol=0, atol=atol)
    close(ad.jacobian(stretch, backend, X), stretch_jacobian(X), rtol=0, atol=atol)
    close(ad.hessian(energy, backend, X), energy_hessian(X), rtol=0, atol=1e-6)


def test_order_and_step_reach_numdifftools():
    close(ad.gradient(energy, ad.AutoNumdifftools(order=4), X), energy_gradient(X), rtol=0, atol=1e-11)
    close(ad.gradient(energy, ad.AutoNumdifftools(step=1e-3), X), energy_gradient(X), rtol=0, atol=1e-5)
    # A base step far too large for `sin` shows that the option is used: the result is off.
    coarse = ad.gradient(energy, ad.AutoNumdifftools(step=10.0), X)
    assert np.max(np.abs(coarse - energy_gradient(X))) > 1e-6


def test_float32_inputs_are_differentiated_in_float64():
    x = X.astype(np.float32)
    g = ad.gradient(energy, ND, x)
    assert g.dtype == np.float32
    # float64 differences rounded to float32, not float32 differences (about 1e-3 off)
    close(g, energy_gradient(x.astype(np.float64)).astype(np.float32), rtol=1e-6, atol=1e-6)


def test_other_kinds_come_back_as_they_came():
    torch = pytest.importorskip("torch")
    g = ad.gradient(energy, ND, torch.tensor(X))
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    close(g.numpy(), energy_gradient(X))


def test_two_argument_functions_and_contexts():
    def writes(y, x, a):
        y[...] = a * np.sin(x)

    a = np.linspace(1.0, 2.0, 5)
    jac = ad.jacobian(writes, ND, X, ad.Constant(a), y=np.zeros(5))
    close(jac, np.diag(a * np.cos(X)))
    jac = ad.jacobian(writes, ad.AutoNumdifftools(method="complex"), X, ad.Constant(a), y=np.zeros(5))
    close(jac, np.diag(a * np.cos(X)), rtol=0, atol=1e-14)


def test_empty_inputs_and_outputs():
    assert ad.jacobian(lambda x: 2.0 * x, ND, np.ones(0)).shape == (0, 0)
    assert ad.jacobian(lambda x: x[:0], ND, np.ones(3)).shape == (0, 3)
    close(ad.pullback(lambda x: x[:0], ND, np.ones(3), np.ones(0)), np.zeros(3))
    assert ad.hessian(lambda x: np.sum(x * x), ND, np.ones(0)).shape == (0, 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"method": "sideways"},
            r"`method` must be one of \('central', 'forward', 'backward', 'complex'\); got 'sideways'",
        ),
        ({"order": 0}, r"`order` must be a positive integer; got 0"),
        ({"order": 3}, r"`order` must be even for method='central' .*; got 3"),
        ({"step": -1.0}, r"`step` must be a positive number or None; got -1.0"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=r"AutoNumdifftools: " + message):
        ad.AutoNumdifftools(**options)


def test_complex_step_on_a_real_only_f_is_explained():
    def real_only(x):
        return np.sum(np.asarray(x, dtype=np.float64) ** 2)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"gradient: `ad.AutoNumdifftools\(method='complex'\)`"):
        ad.gradient(real_only, ad.AutoNumdifftools(method="complex"), X)
