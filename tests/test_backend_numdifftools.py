"""AutoNumdifftools: every operator against closed forms, its accuracy against fixed-step finite
differences, its options, errors, and the suites every backend passes (scenarios, properties,
the bad-input catalogue)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation, with_kind
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

pytest.importorskip("numdifftools", reason="numdifftools is not installed: pip install 'anydiff[numdifftools]'")

ND = ad.AutoNumdifftools()
FD = ad.AutoFiniteDiff()

X = np.array([0.3, -0.7, 1.1, 0.4, -0.2])
X2 = np.array([-0.5, 0.8, 0.1, -1.3, 0.6])
T = np.array([0.5, -1.0, 2.0, 0.25, 1.5])
U = np.array([1.0, 0.5, -0.5, 2.0, -1.0])


def close(got, want, rtol=1e-10, atol=1e-10):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


# (f, x, tangents, closed form at a point, absolute error allowed): Richardson extrapolation
# keeps 12-14 digits of first derivatives and about 11 of second ones.
CASES = {
    "gradient": (energy, X, None, energy_gradient, 1e-11),
    "jacobian": (stretch, X, None, stretch_jacobian, 1e-11),
    "pushforward": (stretch, X, T, lambda x: stretch_jacobian(x) @ T, 1e-11),
    "pullback": (stretch, X, U, lambda x: U @ stretch_jacobian(x), 1e-11),
    "derivative": (curve, 0.7, None, lambda t: np.array([np.cos(t), 3 * t**2]), 1e-11),
    "second_derivative": (curve, 0.7, None, lambda t: np.array([-np.sin(t), 6 * t]), 1e-9),
    "hvp": (energy, X, T, lambda x: energy_hessian(x) @ T, 1e-9),
    "hessian": (energy, X, None, energy_hessian, 1e-9),
}


@pytest.mark.parametrize("operator", list(CASES))
def test_operator_matches_closed_form_at_two_points(operator):
    f, x, tangents, expected, atol = CASES[operator]
    args = (x,) if tangents is None else (x, tangents)
    prep = getattr(ad, f"prepare_{operator}")(f, ND, *args)
    for point in (x, X2 if isinstance(x, np.ndarray) else -1.3):
        args = (point,) if tangents is None else (point, tangents)
        result = getattr(ad, operator)(f, ND, *args, prep=prep)
        assert isinstance(result, np.ndarray) and result.dtype == np.float64
        close(result, expected(np.asarray(point)), rtol=0, atol=atol)


@pytest.mark.parametrize("operator", list(CASES))
def test_more_accurate_than_fixed_step_central_differences(operator):
    f, x, tangents, expected, _ = CASES[operator]
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


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numdifftools", None)  # `import numdifftools` now fails
    monkeypatch.delitem(sys.modules, "anydiff._libraries.numdifftools.impl", raising=False)
    implementation.cache_clear()
    try:
        with pytest.raises(ad.BackendNotInstalledError, match=r"pip install 'anydiff\[numdifftools\]'"):
            ad.gradient(lambda x: energy(x), ND, X)  # a new `f`: no prep of it is remembered
    finally:
        implementation.cache_clear()


# -- the suites every backend passes ----------------------------------------------------------------


def test_scenarios():
    # as in tests/test_scenarios.py: JAX and torch inputs, converted to NumPy and back
    foreign = [
        with_kind(s, kind)
        for s in default_scenarios()
        if s.label in ("pushforward-vector-to-vector-batched", "second_derivative-vector-constant")
        for kind in ("jax", "torch")
        if importlib.util.find_spec(kind) is not None
    ]
    outcomes = test_differentiation([ND], default_scenarios() + foreign, allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}


def test_sparse_scenarios():
    outcomes = test_differentiation([ad.AutoSparse(ND)], sparse_scenarios(), allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}


def test_property_tests():
    properties = pytest.importorskip("test_properties")  # random programs against the JAX reference
    properties.test_backend_agrees_with_the_reference(ND, 8, ("float64", "float32"))


def _catalogue():
    try:
        import test_bad_inputs
    except pytest.skip.Exception:  # it needs JAX and torch
        return None
    return test_bad_inputs


CATALOGUE = _catalogue()
GENERAL = [] if CATALOGUE is None else [bad for bad in CATALOGUE.CATALOGUE if bad.backends == CATALOGUE.ALL]


@pytest.mark.parametrize("bad", GENERAL, ids=[bad.name for bad in GENERAL])
def test_bad_input_catalogue(bad):
    CATALOGUE.test_bad_input_raises_a_clear_error_and_mutates_nothing(bad, ND)


def test_an_exception_of_f_passes_through():
    if CATALOGUE is None:
        pytest.skip("the catalogue needs JAX and torch")
    CATALOGUE.test_an_exception_of_f_passes_through_as_the_same_object(ND)
