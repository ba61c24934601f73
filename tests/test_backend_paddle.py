"""AutoPaddle: the checks every backend passes (`backend_suite.py`: closed forms, scenarios,
properties, the bad-input catalogue, the namespace's cases), and what is Paddle's own: value
forms, Paddle tensors in and out (DLPack), float32, loading Paddle safely, its namespace, its
`DifferentiateWith` host, errors."""

from __future__ import annotations

import importlib.util
import logging
import math
import subprocess
import sys

import numpy as np
import pytest

import anydiff as ad
from backend_suite import X2, BackendSuite, C, T, U, X, close, substitutes, wave
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

if importlib.util.find_spec("paddle") is None:
    pytest.skip("PaddlePaddle is not installed: pip install 'anydiff[paddle]'", allow_module_level=True)

from anydiff._libraries.paddle.arrays import load_paddle  # noqa: E402

paddle = load_paddle()

PD = ad.AutoPaddle()
FD = ad.AutoFiniteDiff()

A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]])
W = np.array([-0.4, 0.2, 0.7])


class TestPaddle(BackendSuite):
    backend = PD
    unsupported = ("cache", "inplace")
    tensor_kind = "paddle"
    # Names Paddle spells otherwise, or where it takes no Python scalar, with the NumPy reference.
    namespace_cases = {
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

    def known_bugs(self, properties):
        # Paddle differentiates `prod` by dividing it by each factor, as autograd does: NaN at zeros.
        orders = properties.FIRST_ORDER + properties.SECOND_ORDER
        return [(orders, properties._uses("xp.prod"), "Paddle's `prod` at zeros")]


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


def test_namespace_of_a_tensor():
    assert type(ad.namespace(paddle.to_tensor(X))).__name__ == "PaddleNamespace"


# -- Paddle programs calling a DifferentiateWith function -------------------------------------------


def leaf(a):
    return paddle.to_tensor(a, stop_gradient=False)


@pytest.mark.parametrize(
    ("substitute", "atol"), substitutes(1e-6), ids=lambda v: repr(v) if not isinstance(v, float) else ""
)
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


def test_prepared_calls_from_threads_at_once():
    # Paddle's dynamic graph crashes the process when two threads differentiate at once (as
    # TensorFlow's graphs run `DifferentiateWith(f, ad.AutoPaddle())` calls): the kernels take turns.
    import threading

    prep = ad.prepare_hessian(energy, PD, X)
    results = []

    def work():
        results.extend(ad.hessian(energy, PD, X, prep=prep) for _ in range(20))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80
    for h in results:
        close(h, energy_hessian(X))


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
