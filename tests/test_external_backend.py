"""A backend added from outside anydiff (`tests/external_backend/`, the example of docs/new-backend.md)
gets every operator, sparse and bridged use, and its native route, without touching an anydiff file."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import anydiff as ad
from anydiff.extend import registered_backends
from anydiff.testing import OPERATORS, default_scenarios, sparse_scenarios, test_differentiation

torch = pytest.importorskip("torch")
TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS / "external_backend"


@pytest.fixture(scope="module")
def external():
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module("external_backend")


def f(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) * xp.cumulative_sum(x))


def test_the_package_uses_only_the_public_api():
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] != "anydiff" or module in ("anydiff", "anydiff.extend"), (
                    f"{path.name} imports {module}"
                )


def test_it_is_registered_and_listed(external):
    backend = external.AutoTorchFunc()
    assert external.AutoTorchFunc in registered_backends()
    assert ad.check_available(backend) and backend in ad.available_backends()


def test_registering_imports_no_library():
    # the backend class and its registration import nothing: torch loads on first use
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import external_backend, anydiff as ad; "
        "assert 'torch' not in sys.modules; ad.check_available(external_backend.AutoTorchFunc()); "
        "assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_it_passes_the_default_scenarios(external):
    outcomes = test_differentiation(external.AutoTorchFunc(), default_scenarios())
    statuses = {o.scenario: o.status for o in outcomes}
    # every scenario works except what `torch.func` cannot do: write into arrays (`f(y, x)`, `Cache`)
    unsupported = {s for s, status in statuses.items() if status == "unsupported"}
    assert unsupported and all("inplace" in s or "cache" in s for s in unsupported), unsupported
    assert {o.operator for o in outcomes if o.status == "works"} == set(OPERATORS)  # all eight


def test_every_operator_agrees_with_the_builtin_torch_backend(external):
    mine, builtin = external.AutoTorchFunc(), ad.AutoTorch()
    x, t = np.linspace(0.1, 1.0, 4), np.array([1.0, -1.0, 0.5, 2.0])

    def g(x):
        return ad.namespace(x).sin(x) * x[0]

    def s(x):
        return x**3 * ad.namespace(x).sin(x)

    calls = [
        lambda b: ad.pushforward(g, b, x, t),
        lambda b: ad.pullback(g, b, x, t),
        lambda b: ad.derivative(s, b, 0.3),
        lambda b: ad.gradient(f, b, x),
        lambda b: ad.jacobian(g, b, x),
        lambda b: ad.second_derivative(s, b, 0.3),
        lambda b: ad.hvp(f, b, x, t),
        lambda b: ad.hessian(f, b, x),
    ]
    for call in calls:
        np.testing.assert_allclose(call(mine), call(builtin), rtol=1e-12, atol=1e-14)
    assert ad.prepare_hessian(f, mine, x).info["strategy"] == "forward-over-reverse"


def test_it_pairs_with_other_backends_for_second_order(external):
    x = np.linspace(0.1, 1.0, 4)
    expected = ad.hessian(f, ad.AutoTorch(), x)
    for pair in (
        ad.SecondOrder(ad.AutoFiniteDiff(), external.AutoTorchFunc()),
        ad.SecondOrder(external.AutoTorchFunc(), ad.AutoFiniteDiff()),
    ):
        np.testing.assert_allclose(ad.hessian(f, pair, x), expected, rtol=1e-5, atol=1e-6)


def test_its_native_gradient_route_is_used(external):
    backend, x = external.AutoTorchFunc(), np.linspace(0.1, 1.0, 4)
    prep = ad.prepare_gradient(f, backend, x)
    assert prep.info == {"mode": "reverse", "route": "torch.func.grad_and_value"}
    y, g = ad.value_and_gradient(f, backend, x, prep=prep)
    np.testing.assert_allclose(g, ad.gradient(f, ad.AutoTorch(), x), rtol=1e-12)
    np.testing.assert_allclose(y, f(x), rtol=1e-12)
    # the operators without a native route take their generic one
    assert "route" not in ad.prepare_jacobian(f, backend, x).info


def test_its_errors_are_translated(external):
    def escapes(x):
        return float(x.numpy().sum()) * ad.namespace(x).sum(x)

    with pytest.raises(ad.FunctionNotDifferentiableError, match="took a value out of a tensor"):
        ad.gradient(escapes, external.AutoTorchFunc(), np.ones(3))


def test_it_computes_sparse_jacobians_and_hessians_inside_autosparse(external):
    outcomes = test_differentiation(ad.AutoSparse(external.AutoTorchFunc()), sparse_scenarios())
    assert {o.status for o in outcomes} == {"works"}
    backend = ad.AutoSparse(external.AutoTorchFunc())
    jacobian = ad.jacobian(lambda x: x[1:] * x[:-1], backend, np.arange(1.0, 6.0))
    assert jacobian.nnz == 8
    np.testing.assert_allclose(jacobian.toarray()[1], [0.0, 3.0, 2.0, 0.0, 0.0])


def simulate(p):
    xp = ad.namespace(p)
    return xp.cumulative_sum(xp.sin(p))


def test_it_differentiates_inside_a_torch_program(external):
    step = ad.DifferentiateWith(simulate, external.AutoTorchFunc())
    p = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    (step(p) ** 2).sum().backward()
    expected = torch.func.grad(lambda p: (torch.cumsum(torch.sin(p), 0) ** 2).sum())(p.detach())
    torch.testing.assert_close(p.grad, expected)


def test_it_differentiates_inside_a_jax_program(external):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    step = ad.DifferentiateWith(simulate, external.AutoTorchFunc())

    def loss(p):
        return jnp.sum(step(p) ** 2)

    def reference(p):
        return jnp.sum(jnp.cumsum(jnp.sin(p)) ** 2)

    with jax.enable_x64(True):
        p = jnp.array([0.1, 0.2, 0.3])
        np.testing.assert_allclose(jax.grad(loss)(p), jax.grad(reference)(p), rtol=1e-12)
        # second order composes the substitute's primitives
        np.testing.assert_allclose(jax.hessian(loss)(p), jax.hessian(reference)(p), rtol=1e-10, atol=1e-12)
