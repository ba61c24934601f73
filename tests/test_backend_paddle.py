"""AutoPaddle: every operator against closed forms and finite differences, Paddle tensors in and
out (DLPack), the array-API namespace over Paddle, errors, and the suites every backend passes
(scenarios, properties, the bad-input catalogue)."""

from __future__ import annotations

import importlib.util
import logging
import math
import subprocess
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation, with_kind
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

if importlib.util.find_spec("paddle") is None:
    pytest.skip("PaddlePaddle is not installed: pip install 'anydiff[paddle]'", allow_module_level=True)

from anydiff._libraries.paddle.arrays import load_paddle  # noqa: E402

paddle = load_paddle()

PD = ad.AutoPaddle()
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
    prep = getattr(ad, f"prepare_{operator}")(f, PD, *args)
    for point in (x, X2 if isinstance(x, np.ndarray) else -1.3):
        args = (point,) if tangents is None else (point, tangents)
        result = getattr(ad, operator)(f, PD, *args, prep=prep)
        assert isinstance(result, np.ndarray) and result.dtype == np.float64
        close(result, expected(np.asarray(point)))


def test_value_forms():
    y, g = ad.value_and_gradient(energy, PD, X)
    close(y, energy(X))
    close(g, energy_gradient(X))
    y, dy, d2y = ad.value_derivative_and_second_derivative(curve, PD, 0.7)
    close(d2y, [-np.sin(0.7), 4.2])
    y, g, h = ad.value_gradient_and_hessian(energy, PD, X)
    close(h, energy_hessian(X))
    g, (h1, h2) = ad.gradient_and_hvp(energy, PD, X, (T, U))
    close(h2, energy_hessian(X) @ U)


def test_prep_info():
    assert ad.prepare_gradient(energy, PD, X).info == {"mode": "reverse", "route": "paddle.grad"}
    assert ad.prepare_hessian(energy, PD, X).info["strategy"] == "reverse-over-reverse"


def test_paddle_tensors_in_and_out_through_dlpack():
    x = paddle.to_tensor(X)
    g = ad.gradient(energy, PD, x)
    assert isinstance(g, paddle.Tensor) and g.dtype == paddle.float64
    close(g.numpy(), energy_gradient(X))
    j = ad.jacobian(stretch, FD, x)  # another backend, on Paddle's tensors
    assert isinstance(j, paddle.Tensor)
    close(j.numpy(), stretch_jacobian(X), rtol=1e-7, atol=1e-8)
    torch = pytest.importorskip("torch")
    g = ad.gradient(energy, PD, torch.tensor(X))
    assert isinstance(g, torch.Tensor)
    close(g.numpy(), energy_gradient(X))


def test_float32_stays_float32():
    x = X.astype(np.float32)
    for operator, args in (("gradient", ()), ("hessian", ()), ("hvp", (x,)), ("jacobian", ())):
        f = stretch if operator == "jacobian" else energy
        assert getattr(ad, operator)(f, PD, x, *args).dtype == np.float32, operator


def test_contexts_and_inputs_not_mutated():
    def f(x, a):
        xp = ad.namespace(x)
        return xp.sum(a * xp.sin(x))

    a = np.linspace(1.0, 2.0, 5)
    x = X.copy()
    prep = ad.prepare_gradient(f, PD, x, ad.Constant(a))
    close(ad.gradient(f, PD, x, ad.Constant(2 * a), prep=prep), 2 * a * np.cos(X))
    ad.hessian(energy, PD, x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(a, np.linspace(1.0, 2.0, 5))


def test_function_independent_of_x_gives_zeros():
    close(ad.gradient(lambda x: ad.namespace(x).sum(x * 0.0) + 2.0, PD, X), np.zeros(5))
    close(ad.jacobian(lambda x: ad.namespace(x).ones((3,)), PD, X), np.zeros((3, 5)))
    close(ad.hessian(lambda x: ad.namespace(x).sum(x), PD, X), np.zeros((5, 5)))


def test_importing_paddle_leaves_the_root_logger_alone():
    root = logging.getLogger()
    assert root.level == logging.WARNING or root.level != logging.INFO
    assert not any(getattr(h, "stream", None) is sys.stderr and h.level == logging.NOTSET for h in root.handlers)


def test_paddle_loads_after_tensorflow():
    # Loading libpaddle.so after TensorFlow's libraries crashed the process (a segmentation fault).
    pytest.importorskip("tensorflow")
    script = (
        "import tensorflow, numpy as np, anydiff as ad\n"
        "print(ad.gradient(lambda x: ad.namespace(x).sum(x * x), ad.AutoPaddle(), np.ones(3)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[2. 2. 2.]"


# -- the array-API namespace ------------------------------------------------------------------

A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]])
W = np.array([-0.4, 0.2, 0.7])

# Names Paddle spells otherwise, or where it takes no Python scalar, with the NumPy reference.
NAMESPACE_CASES = {
    "sum mean prod keepdims": lambda xp, v: (
        xp.sum(xp.asarray(A) * v, axis=0, keepdims=True) + xp.mean(xp.asarray(A) * v, axis=1) + xp.prod(v + 2.0)
    ),
    "std var correction": lambda xp, v: xp.std(v, correction=1) + xp.var(xp.asarray(A) * v, axis=0),
    "cumulative_sum": lambda xp, v: xp.cumulative_sum(xp.stack([v, v**2]), axis=1, include_initial=True),
    "cumulative_prod": lambda xp, v: xp.cumulative_prod(v, include_initial=True),
    "binary with scalars": lambda xp, v: xp.maximum(v, 0.1) + xp.pow(xp.abs(v), 1.5) + xp.atan2(v, 2.0),
    "where with a scalar": lambda xp, v: xp.where(v > 0, v, 0.0),
    "matrix_transpose permute_dims": lambda xp, v: (
        xp.matrix_transpose(xp.asarray(A) * v) + xp.permute_dims(xp.asarray(A) * v, (1, 0))
    ),
    "vecdot": lambda xp, v: xp.vecdot(xp.asarray(A), v),
    "take": lambda xp, v: xp.take(xp.asarray(A) * v, xp.asarray([2, 0, 2]), axis=1),
    "flip": lambda xp, v: xp.flip(xp.asarray(A) * v, axis=0),
    "concat axis None": lambda xp, v: xp.concat([xp.asarray(A), v], axis=None),
    "reshape expand_dims squeeze": lambda xp, v: xp.squeeze(xp.expand_dims(xp.reshape(v, (3, 1)), axis=0), axis=0),
    "unstack": lambda xp, v: xp.unstack(xp.asarray(A) * v, axis=1)[1],
    "vector_norm": lambda xp, v: xp.stack([xp.linalg.vector_norm(v, ord=o) for o in (2, 1, math.inf, 3)]),
    "asarray of tensors": lambda xp, v: xp.asarray([v[0], v[1] ** 2]),
    "creation": lambda xp, v: v * xp.arange(3, dtype=xp.float64) + xp.linspace(0.0, 1.0, 3) + xp.ones(3) * 2.0,
    "trace diagonal outer": lambda xp, v: (
        xp.linalg.diagonal(xp.linalg.outer(v, v), offset=1) + xp.linalg.trace(xp.asarray(A) * v)
    ),
}


@pytest.mark.parametrize("label", list(NAMESPACE_CASES))
def test_namespace_values_and_derivatives(label):
    import array_api_compat.numpy as npx

    case = NAMESPACE_CASES[label]
    v = np.array([0.3, -0.6, 0.9])
    tensor = paddle.to_tensor(v)
    result = case(ad.namespace(tensor), tensor)
    assert isinstance(result, paddle.Tensor)
    close(result.numpy(), case(npx, v))

    def f(v):
        xp = ad.namespace(v)
        return xp.sum(xp.sin(case(xp, v)))

    close(ad.gradient(f, PD, v), ad.gradient(f, FD, v), rtol=1e-6, atol=1e-8)


def test_namespace_of_a_tensor():
    assert type(ad.namespace(paddle.to_tensor(X))).__name__ == "PaddleNamespace"


# -- Paddle programs calling a DifferentiateWith function -------------------------------------------


def wave(x, c):
    """`c sin x`, written for any substitute's arrays."""
    return c * ad.namespace(x).sin(x)


C = np.array([1.0, 2.0, -0.5, 3.0, 0.25])


def substitutes():
    """Exact substitutes (of other libraries) where installed, and finite differences."""
    found = [(ad.AutoFiniteDiff(), 1e-6)]
    for module, backend in (("jax", "AutoJAX"), ("torch", "AutoTorch"), ("autograd", "AutoAutograd")):
        if importlib.util.find_spec(module) is not None:
            found.append((getattr(ad, backend)(), 1e-13))
    return found


def leaf(a):
    return paddle.to_tensor(a, stop_gradient=False)


@pytest.mark.parametrize(("substitute", "atol"), substitutes(), ids=lambda v: repr(v) if not isinstance(v, float) else "")
def test_differentiate_with_call_vjp_gradient_jvp_and_hessian(substitute, atol):
    dw = ad.DifferentiateWith(wave, substitute)
    x = leaf(X)
    y = dw(x, C)
    assert isinstance(y, paddle.Tensor) and y.dtype == paddle.float64
    close(y.numpy(), C * np.sin(X), rtol=0, atol=1e-15)
    # a pullback, Uᵀ J with J = diag(c cos x), and its derivatives in x and in the cotangent
    u = leaf(U)
    (g,) = paddle.grad([y], [x], grad_outputs=[u], create_graph=True)
    close(g.numpy(), U * C * np.cos(X), rtol=0, atol=atol)
    gx, gu = paddle.grad([paddle.sum(g * paddle.to_tensor(T))], [x, u])
    close(gx.numpy(), -T * U * C * np.sin(X), rtol=0, atol=100 * atol)
    close(gu.numpy(), T * C * np.cos(X), rtol=0, atol=atol)
    # a gradient through Paddle's own operations around it, and its Hessian (double backward)
    loss = paddle.sum(dw(x, C) ** 2)
    (g,) = paddle.grad([loss], [x], create_graph=True)
    close(g.numpy(), C**2 * np.sin(2 * X), rtol=0, atol=10 * atol)
    (h,) = paddle.grad([paddle.sum(g)], [x])  # the Hessian is diagonal: its row sums
    close(h.numpy(), 2 * C**2 * np.cos(2 * X), rtol=0, atol=100 * atol)
    # forward mode: Paddle's `jvp` (in dynamic mode, the derivative of a pullback in its cotangent)
    _, ty = paddle.incubate.autograd.jvp(lambda x: dw(x, C), x, paddle.to_tensor(T))
    close(ty.numpy(), C * np.cos(X) * T, rtol=0, atol=atol)


def test_differentiate_with_scalars_float32_and_contexts():
    dw = ad.DifferentiateWith(wave, ad.AutoFiniteDiff())
    t = leaf(np.float64(0.7))
    (d,) = paddle.grad([dw(t, 2.0)], [t])
    close(d.numpy(), 2 * np.cos(0.7), rtol=0, atol=1e-8)
    x = leaf(X.astype(np.float32))
    y = dw(x, C.astype(np.float32))
    (g,) = paddle.grad([paddle.sum(y)], [x])
    assert y.dtype == paddle.float32 and g.dtype == paddle.float32
    close(g.numpy(), C * np.cos(X), rtol=0, atol=1e-3)  # float32 finite differences
    # a context is not differentiated, even as a tensor that Paddle tracks
    x, c = leaf(X), leaf(C)
    g, gc = paddle.grad([paddle.sum(dw(x, c))], [x, c], allow_unused=True)
    close(g.numpy(), C * np.cos(X), rtol=0, atol=1e-7)
    assert gc is None


def test_differentiate_with_paddle_as_substitute_is_paddle_itself():
    x = leaf(X)
    (g,) = paddle.grad([paddle.sum(ad.DifferentiateWith(wave, PD)(x, C))], [x])
    close(g.numpy(), C * np.cos(X), rtol=0, atol=1e-15)


def test_second_order_pairs_with_paddle():
    pytest.importorskip("jax")
    for pair in (ad.SecondOrder(PD, ad.AutoJAX()), ad.SecondOrder(ad.AutoJAX(), PD)):
        prep = ad.prepare_hessian(energy, pair, X)
        assert "DifferentiateWith" in prep.info["route"]
        close(ad.hessian(energy, pair, X, prep=prep), energy_hessian(X))
        close(ad.hvp(energy, pair, X2, T), energy_hessian(X2) @ T)


# -- errors ------------------------------------------------------------------------------------


def test_numpy_on_a_tensor_is_explained():
    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"gradient: `f` called NumPy on a Paddle tensor"):
        ad.gradient(lambda x: np.sum(np.sin(x)), PD, X)


def test_a_missing_second_derivative_is_explained():
    def f(x):
        xp = ad.namespace(x)
        return xp.sum(xp.cumulative_sum(x) ** 2)

    close(ad.gradient(f, PD, X), ad.gradient(f, FD, X), rtol=1e-7, atol=1e-8)  # first order works
    with pytest.raises(
        ad.FunctionNotDifferentiableError, match=r"hessian: Paddle has no second derivative .*cumsum_grad"
    ):
        ad.hessian(f, PD, X)


def test_two_argument_functions_are_unsupported():
    def writes(y, x):
        y[...] = x

    with pytest.raises(ad.UnsupportedError, match=r"AutoPaddle\(\) cannot differentiate a two-argument"):
        ad.pushforward(writes, PD, X, T, y=np.zeros(5))


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "paddle", None)  # `import paddle` now fails
    monkeypatch.delitem(sys.modules, "anydiff._libraries.paddle.impl", raising=False)
    implementation.cache_clear()
    try:
        with pytest.raises(ad.BackendNotInstalledError, match=r"pip install 'anydiff\[paddle\]'"):
            ad.gradient(lambda x: energy(x), PD, X)  # a new `f`: no prep of it is remembered
    finally:
        implementation.cache_clear()


# -- the suites every backend passes ----------------------------------------------------------------


def test_scenarios():
    # as in tests/test_scenarios.py, with JAX and torch inputs converted through DLPack
    foreign = [
        with_kind(s, kind)
        for s in default_scenarios()
        if s.label in ("pushforward-vector-to-vector-batched", "second_derivative-vector-constant")
        for kind in ("jax", "torch")
        if importlib.util.find_spec(kind) is not None
    ]
    outcomes = test_differentiation([PD], default_scenarios() + foreign)
    assert {o.status for o in outcomes} == {"works", "unsupported"}
    unsupported = {o.scenario for o in outcomes if o.status == "unsupported"}
    assert all("cache" in label or "inplace" in label for label in unsupported)


def test_sparse_scenarios():
    outcomes = test_differentiation([ad.AutoSparse(PD)], sparse_scenarios(), allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}


def test_property_tests(monkeypatch):
    properties = pytest.importorskip("test_properties")  # random programs against the JAX reference
    # Paddle differentiates `prod` by dividing it by each factor, as autograd does: NaN at zeros.
    known = [
        (properties.FIRST_ORDER + properties.SECOND_ORDER, properties._uses("xp.prod"), "Paddle's `prod` at zeros")
    ]
    monkeypatch.setitem(properties.KNOWN_BUGS, ad.AutoPaddle, known)
    properties.test_backend_agrees_with_the_reference(PD, 15, ("float64", "float32"))


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
    CATALOGUE.test_bad_input_raises_a_clear_error_and_mutates_nothing(bad, PD)


def test_an_exception_of_f_passes_through():
    if CATALOGUE is None:
        pytest.skip("the catalogue needs JAX and torch")
    CATALOGUE.test_an_exception_of_f_passes_through_as_the_same_object(PD)
