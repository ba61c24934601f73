"""AutoMindSpore: the checks every backend passes (`backend_suite.py`: closed forms, scenarios,
properties, the bad-input catalogue, the namespace's cases), and what is MindSpore's own: value
forms, MindSpore tensors in and out, float32, second order by differences (MindSpore's own
reverse over reverse is wrong), its executor reset after an error of `f`, errors."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

import anydiff as ad
from backend_suite import CATALOGUE, X2, BackendSuite, C, T, U, X, close, substitutes, wave
from closed_forms import (
    coupled,
    coupled_hessian,
    curve,
    energy,
    energy_gradient,
    energy_hessian,
    stretch,
    stretch_jacobian,
)

if importlib.util.find_spec("mindspore") is None:
    pytest.skip("MindSpore is not installed: pip install 'anydiff[mindspore]'", allow_module_level=True)

from anydiff._libraries.mindspore.load import load_mindspore  # noqa: E402

ms = load_mindspore()

MS = ad.AutoMindSpore()
FD = ad.AutoFiniteDiff()

A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]])

#: second derivatives are extrapolated differences of exact gradients: about 12 digits
SECOND = 1e-8


class TestMindSpore(BackendSuite):
    backend = MS
    unsupported = ("cache", "inplace")
    tensor_kind = "mindspore"
    atol = {"second_derivative": SECOND, "hvp": SECOND, "hessian": SECOND}
    property_examples = 8  # MindSpore's PyNative gradients take milliseconds each
    # Names MindSpore spells otherwise, or computes in float32, with the NumPy reference.
    namespace_cases = {
        "sum mean prod keepdims": lambda xp, v: (
            xp.sum(xp.asarray(A) * v, axis=0, keepdims=True) + xp.mean(xp.asarray(A) * v, axis=1) + xp.prod(v + 2.0)
        ),
        "prod over two axes": lambda xp, v: xp.prod(xp.stack([v, v * v]) + 1.0, axis=(0, 1)),
        "std var correction": lambda xp, v: xp.std(v, correction=1) + xp.var(xp.asarray(A) * v, axis=0),
        "cumulative_sum": lambda xp, v: xp.cumulative_sum(xp.stack([v, v**2]), axis=1, include_initial=True),
        "cumulative_prod": lambda xp, v: xp.cumulative_prod(v, include_initial=True),
        "binary with scalars": lambda xp, v: xp.maximum(v, 0.1) + xp.pow(xp.abs(v), 1.5) + xp.atan2(v, 2.0),
        "numpy operands": lambda xp, v: xp.multiply(v, np.int64(2)) + xp.add(v, np.array([1.0, 2.0, 3.0])),
        "where with a scalar": lambda xp, v: xp.where(v > 0, v, 0.0),
        "matrix_transpose permute_dims": lambda xp, v: (
            xp.matrix_transpose(xp.asarray(A) * v) + xp.permute_dims(xp.asarray(A) * v, (1, 0))
        ),
        "vecdot matmul": lambda xp, v: xp.vecdot(xp.asarray(A), v) + xp.matmul(xp.asarray(A), v),
        "take": lambda xp, v: xp.take(xp.asarray(A) * v, xp.asarray([2, 0, 2]), axis=1),
        "flip": lambda xp, v: xp.flip(xp.asarray(A) * v, axis=0),
        "concat axis None": lambda xp, v: xp.concat([xp.asarray(A), v], axis=None),
        "reshape expand_dims squeeze": lambda xp, v: xp.squeeze(xp.expand_dims(xp.reshape(v, (3, 1)), axis=0), axis=0),
        "unstack": lambda xp, v: xp.unstack(xp.asarray(A) * v, axis=1)[1],
        "max min": lambda xp, v: xp.max(xp.asarray(A) * v, axis=0) + xp.min(xp.asarray(A) * v, axis=1),
        "vector_norm": lambda xp, v: xp.stack([xp.linalg.vector_norm(v, ord=o) for o in (2, 1, math.inf, 3)]),
        "asarray of tensors": lambda xp, v: xp.asarray([v[(0,)], v[(1,)] ** 2]),
        "creation": lambda xp, v: v * xp.arange(3, dtype=xp.float64) + xp.linspace(0.0, 1.0, 3) + xp.ones(3) * 2.0,
        "trace diagonal outer": lambda xp, v: (
            xp.linalg.diagonal(xp.linalg.outer(v, v), offset=1) + xp.linalg.trace(xp.asarray(A) * v)
        ),
        "solve": lambda xp, v: xp.linalg.solve(xp.asarray(A) + xp.linalg.outer(v, v), v),
        "sort": lambda xp, v: xp.sort(v * xp.asarray([3.0, -1.0, 2.0])),
    }

    def test_bad_input_catalogue(self, bad):
        if bad.name == "f returns complex":  # `x * 1j`: MindSpore takes no complex Python number
            with pytest.raises(TypeError, match=r"jacobian: `f` must compute in real floating point .*1j"):
                bad.call(self.backend, CATALOGUE.inputs())
            return
        super().test_bad_input_catalogue(bad)


def test_value_forms():
    y, g = ad.value_and_gradient(energy, MS, X)
    close(y, energy(X))
    close(g, energy_gradient(X))
    y, dy, d2y = ad.value_derivative_and_second_derivative(curve, MS, 0.7)
    close(d2y, [-np.sin(0.7), 4.2], rtol=0, atol=SECOND)
    y, g, h = ad.value_gradient_and_hessian(energy, MS, X)
    close(g, energy_gradient(X))
    close(h, energy_hessian(X), rtol=0, atol=SECOND)
    g, (h1, h2) = ad.gradient_and_hvp(energy, MS, X, (T, U))
    close(h2, energy_hessian(X) @ U, rtol=0, atol=SECOND)


def test_prep_info():
    assert ad.prepare_gradient(energy, MS, X).info == {"mode": "reverse", "route": "mindspore.grad"}
    assert ad.prepare_pullback(stretch, MS, X, U).info["route"] == "mindspore.vjp"
    assert ad.prepare_hessian(energy, MS, X).info["strategy"] == "differences-of-reverse"


def test_second_order_where_mindspores_own_is_wrong():
    # MindSpore 2.10's reverse over reverse makes the Hessian of a reduction fed to a nonlinear
    # operation wrong (zero for `sum(x) ** 2`): the differences of its gradients are right.
    def f(x):
        xp = ad.namespace(x)
        return xp.sum(x) ** 2 + xp.sin(xp.sum(x * x))

    s = np.sum(X * X)
    want = 2 * np.ones((5, 5)) + 2 * np.cos(s) * np.eye(5) - 4 * np.sin(s) * np.outer(X, X)
    close(ad.hessian(f, MS, X), want, rtol=0, atol=SECOND)
    close(
        ad.hvp(f, MS, X2, T),
        (2 * np.ones((5, 5)) + 2 * np.cos(np.sum(X2 * X2)) * np.eye(5) - 4 * np.sin(np.sum(X2 * X2)) * np.outer(X2, X2))
        @ T,
        rtol=0,
        atol=SECOND,
    )
    b = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    xc = np.array([[0.2, 0.4, -0.3], [0.1, -0.6, 0.8]])
    close(ad.hessian(coupled, MS, xc, ad.Constant(b)), coupled_hessian(xc, b), rtol=0, atol=SECOND)


def test_mindspore_tensors_in_and_out():
    x = ms.Tensor(X)
    g = ad.gradient(energy, MS, x)
    assert isinstance(g, ms.Tensor) and g.dtype == ms.float64
    close(g.asnumpy(), energy_gradient(X))
    j = ad.jacobian(stretch, FD, x)  # another backend, on MindSpore's tensors
    assert isinstance(j, ms.Tensor)
    close(j.asnumpy(), stretch_jacobian(X), rtol=1e-7, atol=1e-8)
    torch = pytest.importorskip("torch")
    g = ad.gradient(energy, MS, torch.tensor(X))  # torch in through DLPack, out through NumPy
    assert isinstance(g, torch.Tensor)
    close(g.numpy(), energy_gradient(X))


def test_float32_stays_float32():
    x = X.astype(np.float32)
    for operator, args in (("gradient", ()), ("hessian", ()), ("hvp", (x,)), ("jacobian", ())):
        f = stretch if operator == "jacobian" else energy
        assert getattr(ad, operator)(f, MS, x, *args).dtype == np.float32, operator
    close(ad.hessian(energy, MS, x), energy_hessian(X), rtol=0, atol=1e-3)


def test_contexts_and_inputs_not_mutated():
    def f(x, a):
        xp = ad.namespace(x)
        return xp.sum(a * xp.sin(x))

    a = np.linspace(1.0, 2.0, 5)
    x = X.copy()
    prep = ad.prepare_gradient(f, MS, x, ad.Constant(a))
    close(ad.gradient(f, MS, x, ad.Constant(2 * a), prep=prep), 2 * a * np.cos(X))
    ad.hessian(energy, MS, x)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(a, np.linspace(1.0, 2.0, 5))


def test_an_error_of_f_leaves_mindspore_working():
    # An exception inside MindSpore's recording left its executor recording, after which even
    # `x[0]` outside any derivative failed: the kernels reset it.
    def broken(x):
        raise ValueError("f failed")

    with pytest.raises(ValueError, match="f failed"):
        ad.gradient(broken, MS, X)
    x = ms.Tensor(X)
    assert float(x[0]) == X[0]
    close(ad.gradient(lambda x: x[0] * ad.namespace(x).sum(x), MS, X), X[0] + np.eye(5)[0] * np.sum(X))


def test_prepared_calls_from_threads_at_once():
    # MindSpore's PyNative executor is one per process ("Can not find top cell for backward" when
    # two threads differentiate at once, as TensorFlow's graphs run DifferentiateWith calls).
    import threading

    prep = ad.prepare_gradient(energy, MS, X)
    results = []

    def work():
        results.extend(ad.gradient(energy, MS, X, prep=prep) for _ in range(10))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40
    for g in results:
        close(g, energy_gradient(X))


# -- the array-API namespace ------------------------------------------------------------------


def test_namespace_of_a_tensor():
    assert type(ad.namespace(ms.Tensor(X))).__name__ == "MindSporeNamespace"


def test_namespace_makes_float64_where_mindspore_makes_float32():
    xp = ad.namespace(ms.Tensor(X))
    for made in (xp.asarray(1.5), xp.asarray([1.0, 2.0]), xp.zeros(3), xp.ones((2, 2)), xp.eye(2), xp.full(2, 0.5)):
        assert made.dtype == ms.float64


# -- MindSpore programs calling a DifferentiateWith function -------------------------------------


@pytest.mark.parametrize(
    ("substitute", "atol"), substitutes(1e-6), ids=lambda v: repr(v) if not isinstance(v, float) else ""
)
def test_differentiate_with_call_vjp_and_gradient(substitute, atol):
    dw = ad.DifferentiateWith(wave, substitute)
    x = ms.Tensor(X)
    y = dw(x, C)
    assert isinstance(y, ms.Tensor) and y.dtype == ms.float64
    close(y.asnumpy(), C * np.sin(X), rtol=0, atol=1e-15)
    # a pullback, Uᵀ J with J = diag(c cos x), and a gradient through MindSpore's operations around it
    close(ms.vjp(lambda x: dw(x, C), x)[1](ms.Tensor(U))[0].asnumpy(), U * C * np.cos(X), rtol=0, atol=atol)
    g = ms.grad(lambda x: ms.ops.sum(dw(x, C) ** 2))(x)
    close(g.asnumpy(), C**2 * np.sin(2 * X), rtol=0, atol=10 * atol)
    # float32 stays float32; a context is not differentiated
    g = ms.grad(lambda x: ms.ops.sum(dw(x, ms.Tensor(C.astype(np.float32)))))(ms.Tensor(X.astype(np.float32)))
    assert g.dtype == ms.float32
    close(g.asnumpy(), C * np.cos(X), rtol=0, atol=1e-3)


def test_differentiate_with_second_order_is_refused_not_zero():
    # Differentiating through the cell's `bprop` again would see the pullback as a constant.
    dw = ad.DifferentiateWith(wave, FD)
    x = ms.Tensor(X)
    with pytest.raises(ad.UnsupportedError, match=r"first order only: DifferentiateWith\(wave"):
        ms.grad(lambda x: ms.ops.sum(ms.grad(lambda x: ms.ops.sum(dw(x, C)))(x)))(x)


def test_differentiate_with_mindspore_as_substitute_is_mindspore_itself():
    x = ms.Tensor(X)
    g = ms.grad(lambda x: ms.ops.sum(ad.DifferentiateWith(wave, MS)(x, C)))(x)
    close(g.asnumpy(), C * np.cos(X), rtol=0, atol=1e-15)


def test_second_order_pairs_with_mindspore_inside():
    pytest.importorskip("jax")
    pair = ad.SecondOrder(ad.AutoJAX(), MS)
    prep = ad.prepare_hessian(energy, pair, X)
    assert "DifferentiateWith" in prep.info["route"]
    close(ad.hessian(energy, pair, X, prep=prep), energy_hessian(X))
    close(ad.hvp(energy, pair, X2, T), energy_hessian(X2) @ T)


# -- errors ------------------------------------------------------------------------------------


def test_numpy_on_a_tensor_is_explained():
    # MindSpore's tensors convert to NumPy arrays silently (`__array__`): NumPy computes, and the
    # result is no MindSpore tensor, which anydiff refuses, naming the namespace.
    with pytest.raises(TypeError, match=r"must return one array of the kind it receives \(mindspore\)"):
        ad.gradient(lambda x: np.sum(np.sin(x)), MS, X)


def test_a_numpy_operand_is_explained():
    data = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"a NumPy array meets the MindSpore arrays"):
        ad.gradient(lambda x: ad.namespace(x).sum(x * data), MS, X)
    close(ad.gradient(lambda x, d: ad.namespace(x).sum(x * d), MS, X, ad.Constant(data)), data)


def test_import_anydiff_does_not_import_mindspore():
    import subprocess
    import sys

    script = "import sys, anydiff as ad; ad.AutoMindSpore(); print('mindspore' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
