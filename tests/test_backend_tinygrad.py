"""AutoTinygrad: what the scenario suite (tests/test_scenarios.py) does not cover.

tinygrad tensors in and out, what `TinyJit` would get wrong without care (reused output buffers,
Python values baked into kernels, functions reading tensor values), the per-row Jacobian route,
the missing-device and missing-library errors, and the array-API namespace. Derivatives are
checked against closed forms, never against tinygrad itself.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation, with_kind

tinygrad = pytest.importorskip("tinygrad", reason="tinygrad is not installed: pip install 'anydiff[tinygrad]'")
Tensor = tinygrad.Tensor

TINYGRAD = ad.AutoTinygrad()


def _device_problem() -> str | None:
    try:
        implementation(TINYGRAD)
    except ad.BackendNotInstalledError as exc:
        return str(exc)
    return None


needs_device = pytest.mark.skipif(_device_problem() is not None, reason=str(_device_problem()))


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def stretch_jacobian(x):
    return np.diag(np.cos(x) * np.cumsum(x)) + np.sin(x)[:, None] * np.tril(np.ones((x.size, x.size)))


X = np.linspace(0.1, 1.0, 5)


@needs_device
def test_scenarios_with_tinygrad_tensors():
    """Tensors in, tensors out, one scenario per operator (all of them run in test_scenarios)."""
    per_operator = {s.operator: s for s in default_scenarios() if s.name.endswith("vector")}
    test_differentiation(TINYGRAD, [with_kind(s, "tinygrad") for s in per_operator.values()], rtol=1e-12)


@needs_device
def test_results_do_not_share_the_jit_buffers():
    """TinyJit writes every call's results into the same tensors: anydiff hands out copies."""
    prep = ad.prepare_gradient(energy, TINYGRAD, Tensor(X))
    results = [ad.gradient(energy, TINYGRAD, Tensor(X + i), prep=prep) for i in range(4)]
    for i, g in enumerate(results):
        np.testing.assert_allclose(g.numpy(), np.sin(2 * (X + i)), rtol=1e-13)


@needs_device
def test_python_number_context_is_not_baked_into_the_kernels():
    def scaled(x, a):
        return ad.namespace(x).sum(a * x**2)

    prep = ad.prepare_gradient(scaled, TINYGRAD, X, ad.Constant(1.0))
    for a in (1.0, 2.5, 4.0):
        np.testing.assert_allclose(ad.gradient(scaled, TINYGRAD, X, ad.Constant(a), prep=prep), 2 * a * X, rtol=1e-15)


@needs_device
def test_one_tensor_as_point_and_tangent():
    x = Tensor(X)
    np.testing.assert_allclose(ad.pushforward(stretch, TINYGRAD, x, x).numpy(), stretch_jacobian(X) @ X, rtol=1e-13)


@needs_device
def test_jacobian_row_by_row():
    x = np.linspace(-1.0, 1.0, 40)
    prep = ad.prepare_jacobian(stretch, TINYGRAD, x)
    assert prep.info["route"] == "one compiled pullback per row"
    for point in (x, x / 2):
        y, jac = ad.value_and_jacobian(stretch, TINYGRAD, point, prep=prep)
        np.testing.assert_allclose(y, np.sin(point) * np.cumsum(point), rtol=1e-13)
        np.testing.assert_allclose(jac, stretch_jacobian(point), rtol=1e-12, atol=1e-14)


@needs_device
def test_float64_precision():
    """float64 is kept and exact, except tinygrad's own asin, acos and atan.

    The tolerances document them: relative errors up to 2e-5 in values, 1e-6 in derivatives.
    """
    g = ad.gradient(energy, TINYGRAD, Tensor(X))
    assert g.dtype == tinygrad.dtypes.float64
    np.testing.assert_allclose(g.numpy(), np.sin(2 * X), rtol=1e-14)

    def inverse_trigonometry(x):
        xp = ad.namespace(x)
        return xp.sum(xp.atan(x) + xp.asin(x / 2) + xp.acos(x / 2))

    x = np.array([-0.9, -0.3, 0.0, 0.4, 1.0])  # tinygrad alone gives a zero slope at 0
    y, g = ad.value_and_gradient(inverse_trigonometry, TINYGRAD, x)
    np.testing.assert_allclose(y, np.sum(np.arctan(x) + np.arcsin(x / 2) + np.arccos(x / 2)), rtol=2e-5)
    np.testing.assert_allclose(g, 1 / (1 + x**2), rtol=1e-6)


@needs_device
def test_reading_values_inside_f_explains_how_to_write_f():
    def escapes(x):
        return Tensor(np.sin(x.numpy())).sum()

    def branch(x):
        return (x**2).sum() if x[0].item() > 0 else (x**3).sum()

    for f in (escapes, branch):
        with pytest.raises(ad.FunctionNotDifferentiableError, match=r"read the value of a tinygrad tensor.*xp.where"):
            ad.gradient(f, TINYGRAD, X)


def _run(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "DEV"} | env
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment
    ).stdout


@pytest.mark.parametrize("dev", ["", "CPU"], ids=["device chosen by tinygrad", "DEV=CPU"])
def test_no_usable_device(tmp_path, dev):
    """Without a C compiler tinygrad finds no device: unavailable, with the reason and the fix."""
    code = (
        "import numpy as np, anydiff as ad\n"
        "print(ad.check_available(ad.AutoTinygrad()))\n"
        "try:\n    ad.gradient(lambda x: x.sum(), ad.AutoTinygrad(), np.ones(2))\n"
        "except ad.BackendNotInstalledError as e:\n    print(e)\n"
    )
    env = {"CC": str(tmp_path / "no-compiler"), "XDG_CACHE_HOME": str(tmp_path)}  # no cached kernels
    out = _run(code, **env, **({"DEV": dev} if dev else {}))
    assert out.startswith("False\n")
    assert "found no usable device" in out and "apt-get install clang" in out


def test_missing_tinygrad_raises_with_install_hint():
    code = (
        "import sys; sys.modules['tinygrad'] = None\n"
        "import numpy as np, anydiff as ad\n"
        "print(ad.check_available(ad.AutoTinygrad()))\n"
        "try:\n    ad.gradient(lambda x: x.sum(), ad.AutoTinygrad(), np.ones(2))\n"
        "except ad.BackendNotInstalledError as e:\n    print(e)\n"
    )
    out = _run(code)
    assert out.startswith("False\n") and "pip install 'anydiff[tinygrad]'" in out



@needs_device
def test_sparse_jacobians_and_hessians():
    """`ad.AutoSparse` colors the pattern and compresses the products tinygrad computes."""
    one_of_each = {s.operator: s for s in sparse_scenarios()}.values()  # tinygrad compiles slowly
    test_differentiation(ad.AutoSparse(TINYGRAD), one_of_each, rtol=1e-6)

# -- the namespace -------------------------------------------------------------------------------


@needs_device
def test_namespace():
    xp = ad.namespace(Tensor([0.0]))
    a_np = np.array([3.0, -0.5, 1e-8, -2.0, 0.0])
    b_np = np.array([4.0, 1.0, -1.0, 0.5, -4.0])
    a, b = xp.asarray(a_np), xp.asarray(b_np)
    assert a.dtype == xp.float64

    def same(got, expected):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-300)

    np.testing.assert_allclose(xp.atan2(a, b).numpy(), np.arctan2(a_np, b_np), rtol=2e-5)  # tinygrad's atan
    same(xp.hypot(a, b), np.hypot(a_np, b_np))
    same(xp.expm1(a), np.expm1(a_np))
    same(xp.log1p(a * a), np.log1p(a_np * a_np))
    same(xp.log10(b * b), np.log10(b_np * b_np))
    same(xp.signbit(a), np.signbit(a_np))
    same(xp.maximum(0.0, a), np.maximum(0.0, a_np))
    same(xp.where(a > 0, a, 0.0), np.where(a_np > 0, a_np, 0.0))
    same(xp.cumulative_sum(b, include_initial=True), np.concatenate([[0.0], np.cumsum(b_np)]))
    same(xp.std(b, correction=1), np.std(b_np, ddof=1))
    same(xp.sum(b, keepdims=True), np.sum(b_np, keepdims=True))
    same(xp.linalg.vector_norm(b, ord=1), np.linalg.norm(b_np, 1))
    same(xp.linspace(0.0, 1.0, 4, endpoint=False), np.linspace(0.0, 1.0, 4, endpoint=False))
    same(xp.eye(3, 4, k=1), np.eye(3, 4, k=1))
    same(xp.take(b, xp.asarray(np.array([4, 0]))), b_np[[4, 0]])
    m_np = np.arange(24.0).reshape(2, 3, 4)
    m = xp.asarray(m_np)
    same(xp.moveaxis(m, 0, -1), np.moveaxis(m_np, 0, -1))
    same(xp.tensordot(m, m, axes=([1, 2], [1, 2])), np.tensordot(m_np, m_np, axes=([1, 2], [1, 2])))
    same(xp.linalg.trace(m[0]), np.trace(m_np[0]))
    same(xp.concat([b, a], axis=None), np.concatenate([b_np, a_np]))
    same(xp.unique_values(xp.asarray(np.array([2.0, 1.0, 2.0]))), np.array([1.0, 2.0]))
    assert xp.finfo(xp.float64).eps == np.finfo(np.float64).eps
    assert xp.isdtype(xp.float64, "real floating") and not xp.isdtype(xp.int32, "real floating")
