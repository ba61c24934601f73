"""Every host × every inner backend: `DifferentiateWith` called from each library that can host it.

A *host* is the library whose program calls the wrapped function and differentiates through it
(JAX, torch, TensorFlow, autograd, PyTensor, CasADi, MLX); the *inner* backend (the substitute)
computes the derivatives. For each installed pair, the host computes with its own transforms the
call, a JVP, a VJP, the gradient of `L(x) = Σ g(x)²` and a Hessian-vector product of `L` (its
transforms composed: second order through the bridge), checked against closed forms. The inner
backends are every installed first-order backend differentiating `g` written with
`ad.namespace`, plus finite differences of a NumPy-only `g` (what no AD library could trace).

    pytest tests/test_bridge_hosts.py                        # a slice: every host, every inner
    ANYDIFF_FULL_MATRIX=1 pytest tests/test_bridge_hosts.py  # every pair (a few minutes)
    ANYDIFF_FULL_MATRIX=1 ANYDIFF_WRITE_MATRIX=1 pytest tests/test_bridge_hosts.py

The last form rewrites the generated table of docs/differentiate-with.md from the run.
What a host cannot do (MLX under `mx.compile`, PyTensor without static shapes, CasADi SX) raises
`ad.UnsupportedError` naming what works: tested at the end.
"""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import anydiff as ad
from anydiff.extend import implementation
from generated import FULL, check_or_write

X = np.array([0.3, -0.7, 1.1])
T = np.array([1.0, -2.0, 0.5])  # the JVP's tangent and the HVP's direction
U = np.array([0.5, 1.5, -1.0])  # the VJP's cotangent


# -- the function and its closed forms ----------------------------------------------------------


def g(x):
    """`gᵢ = sin(xᵢ) Σⱼ xⱼ²`, written once for every library (whose operations all have
    second derivatives in every library: Paddle has none for `cumsum`, autograd no JVP)."""
    xp = ad.namespace(x)
    return xp.sin(x) * xp.sum(x * x)


def g_numpy(x):
    """The same `g` in plain NumPy: only finite differences differentiate it."""
    x = np.asarray(x)
    return np.sin(x) * np.sum(x * x)


def jacobian(x):
    return np.diag(np.cos(x) * (x @ x)) + np.outer(np.sin(x), 2 * x)


def hessian_of_loss(x):
    """`∇²L` for `L = Σ gᵢ²`: `2 (JᵀJ + Σᵢ gᵢ ∇²gᵢ)`, with
    `∇²gᵢ = -sin(xᵢ) |x|² eᵢeᵢᵀ + 2 cos(xᵢ) (eᵢxᵀ + xeᵢᵀ) + 2 sin(xᵢ) I`."""
    n, y, jac = x.size, g_numpy(x), jacobian(x)
    total = jac.T @ jac
    for i, e in enumerate(np.eye(n)):
        curvature = -np.sin(x[i]) * (x @ x) * np.outer(e, e)
        curvature += 2 * np.cos(x[i]) * (np.outer(e, x) + np.outer(x, e)) + 2 * np.sin(x[i]) * np.eye(n)
        total += y[i] * curvature
    return 2 * total


EXPECTED = {
    "call": g_numpy(X),
    "jvp": jacobian(X) @ T,
    "vjp": jacobian(X).T @ U,
    "gradient": 2 * jacobian(X).T @ g_numpy(X),
    "hvp": hessian_of_loss(X) @ T,
}


# -- hosts: each computes the five results with its own transforms -----------------------------


def host_jax(dw):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        x, t, u = map(jnp.asarray, (X, T, U))

        def loss(x):
            return jnp.sum(dw(x) ** 2)

        return {
            "call": jax.jit(dw)(x),
            "jvp": jax.jit(lambda x, t: jax.jvp(dw, (x,), (t,))[1])(x, t),
            "vjp": jax.vjp(dw, x)[1](u)[0],
            "gradient": jax.jit(jax.grad(loss))(x),
            "hvp": jax.jit(lambda x, t: jax.jvp(jax.grad(loss), (x,), (t,))[1])(x, t),
        }


def host_torch(dw):
    import torch

    x, t, u = (torch.from_numpy(a.copy()) for a in (X, T, U))

    def loss(x):
        return (dw(x) ** 2).sum()

    leaf = x.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(loss(leaf), leaf, create_graph=True)
    (hvp,) = torch.autograd.grad(gradient, leaf, t)  # double backward
    return {
        "call": dw(x),
        "jvp": torch.func.jvp(dw, (x,), (t,))[1],
        "vjp": torch.func.vjp(dw, x)[1](u)[0],
        "gradient": gradient,
        "hvp": hvp,
    }


def host_tensorflow(dw):
    import tensorflow as tf

    x, t, u = (tf.constant(a) for a in (X, T, U))

    def loss(x):
        return tf.reduce_sum(dw(x) ** 2)

    with tf.autodiff.ForwardAccumulator(x, t) as accumulator:
        y = dw(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = dw(x)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            value = loss(x)
        gradient = inner.gradient(value, x)
    return {
        "call": tf.function(dw)(x),
        "jvp": accumulator.jvp(y),
        "vjp": tape.gradient(z, x, output_gradients=u),
        "gradient": gradient,
        "hvp": outer.gradient(gradient, x, output_gradients=t),
    }


def host_autograd(dw):
    import autograd
    import autograd.numpy as anp

    def loss(x):
        return anp.sum(dw(x) ** 2)

    return {
        "call": dw(X),
        "jvp": autograd.make_jvp(dw)(X)(T)[1],
        "vjp": autograd.make_vjp(dw)(X)[0](U),
        "gradient": autograd.grad(loss)(X),
        "hvp": autograd.grad(lambda x: anp.sum(autograd.grad(loss)(x) * T))(X),
    }


def host_pytensor(dw):
    import pytensor
    import pytensor.tensor as pt

    x, t, u = (pt.tensor(name, shape=(3,), dtype="float64") for name in "xtu")
    y = dw(x)
    loss = pt.sum(y**2)
    gradient = pytensor.grad(loss, x)
    outputs = {
        "call": y,
        "jvp": pytensor.gradient.pushforward(y, x, t),
        "vjp": pytensor.grad(pt.sum(y * u), x),
        "gradient": gradient,
        "hvp": pytensor.grad(pt.sum(gradient * t), x),
    }
    compiled = pytensor.function([x, t, u], list(outputs.values()), on_unused_input="ignore")
    return dict(zip(outputs, compiled(X, T, U), strict=True))


def host_casadi(dw):
    import casadi as ca

    x, t, u = (ca.MX.sym(name, 3) for name in "xtu")
    y = dw(x)
    loss = ca.sumsqr(y)
    gradient = ca.gradient(loss, x)
    outputs = {
        "call": y,
        "jvp": ca.jtimes(y, x, t),
        "vjp": ca.jtimes(y, x, u, True),
        "gradient": gradient,
        "hvp": ca.jtimes(gradient, x, t),
    }
    compiled = ca.Function("host", [x, t, u], list(outputs.values()))
    return {k: np.asarray(v).ravel() for k, v in zip(outputs, compiled(X, T, U), strict=True)}


def host_mlx(dw):
    import mlx.core as mx

    x, t, u = (mx.array(a, dtype=mx.float64) for a in (X, T, U))

    def loss(x):
        return mx.sum(dw(x) ** 2)

    return {
        "call": dw(x),
        "jvp": mx.jvp(dw, [x], [t])[1][0],
        "vjp": mx.vjp(dw, [x], [u])[1][0],
        "gradient": mx.grad(loss)(x),
        "hvp": mx.jvp(mx.grad(loss), [x], [t])[1][0],
    }


def host_paddle(dw):
    import paddle

    x, t, u = (paddle.to_tensor(a, dtype="float64") for a in (X, T, U))
    x.stop_gradient = False

    def loss(x):
        return (dw(x) ** 2).sum()

    (gradient,) = paddle.grad(loss(x), x, create_graph=True)
    return {
        "call": dw(x),
        "jvp": paddle.incubate.autograd.jvp(dw, x, t)[1],
        "vjp": paddle.grad(dw(x), x, grad_outputs=u)[0],
        "gradient": gradient,
        "hvp": paddle.grad(gradient, x, grad_outputs=t)[0],
    }


def host_mygrad(dw):
    """First order only: MyGrad has no forward mode and no higher-order derivatives."""
    import mygrad as mg

    x, z = mg.tensor(X), mg.tensor(X)
    y = dw(z)
    y.backward(U)
    loss = mg.sum(dw(x) ** 2)
    loss.backward()
    return {"call": y, "vjp": z.grad, "gradient": x.grad}


def host_mindspore(dw):
    """First order only: MindSpore's own second derivatives are wrong (anydiff's MindSpore host
    refuses them), and its forward mode compiles the calling function from its source."""
    from anydiff._libraries.mindspore.load import load_mindspore

    ms = load_mindspore()
    x, u = ms.Tensor(X), ms.Tensor(U)
    return {
        "call": dw(x),
        "vjp": ms.vjp(lambda x: dw(x), x)[1](u)[0],  # (`mindspore.vjp` reads the function's `__name__`)
        "gradient": ms.grad(lambda x: ms.ops.sum(dw(x) ** 2))(x),
    }


HOSTS = {
    "jax": host_jax,
    "torch": host_torch,
    "tensorflow": host_tensorflow,
    "autograd": host_autograd,
    "pytensor": host_pytensor,
    "casadi": host_casadi,
    "mlx": host_mlx,
    "paddle": host_paddle,
    "mygrad": host_mygrad,
    "mindspore": host_mindspore,
}
INSTALLED_HOSTS = [h for h in HOSTS if importlib.util.find_spec(h) is not None]

#: every installed first-order backend (`None`: finite differences of the NumPy-only `g`)
INNER = [None] + [
    b
    for b in ad.available_backends()
    if not b.combinator and type(b).__module__.startswith("anydiff.") and ad.check_available(b)
]
#: inner backends that differentiate by differences: first derivatives ~1e-7, second ~1e-5
NUMERICAL = {"AutoFiniteDiff", "AutoNumdifftools", "AutoMyGrad"}


def inner_name(inner):
    return "FiniteDiff (NumPy-only f)" if inner is None else repr(inner).removeprefix("Auto").removesuffix("()")


def wrapped(inner):
    return ad.DifferentiateWith(g_numpy, ad.AutoFiniteDiff()) if inner is None else ad.DifferentiateWith(g, inner)


def tolerance(host, inner, result):
    second = result == "hvp"
    if inner is None or type(inner).__name__ in NUMERICAL:
        return 1e-4 if second else 1e-6
    if "mlx" in (host, implementation(inner).kind and implementation(inner).kind.name):
        return 1e-5  # MLX computes sin and cos of float64 in float32 arithmetic
    return 1e-9


def cells():
    every = [(h, inner) for h in INSTALLED_HOSTS for inner in INNER]
    if FULL:
        return every
    # The slice: every host with NumPy-only finite differences and with one inner AD library
    # (a different one for each host, rotating), and every inner backend under JAX or torch.
    chosen = []
    libraries = [inner for inner in INNER if inner is not None]
    for i, h in enumerate(INSTALLED_HOSTS):
        chosen += [(h, None), (h, libraries[(3 * i) % len(libraries)])]
    for j, inner in enumerate(libraries):
        chosen.append(("jax" if j % 2 else "torch", inner))
    return [c for c in every if c in dict.fromkeys(chosen)]


RECORDED: dict = {}


@pytest.mark.parametrize(("host", "inner"), cells(), ids=lambda v: v if isinstance(v, str) else inner_name(v))
def test_host_and_inner(host, inner):
    got = HOSTS[host](wrapped(inner))
    assert set(got) == set(EXPECTED) or host in ("mygrad", "mindspore")
    for result, want in ((k, v) for k, v in EXPECTED.items() if k in got):
        rtol = tolerance(host, inner, result)
        value = got[result]
        value = np.asarray(value.detach() if hasattr(value, "detach") else value, dtype=np.float64)
        np.testing.assert_allclose(value, want, rtol=rtol, atol=rtol, err_msg=f"{host} × {inner_name(inner)}: {result}")
    RECORDED[(host, inner_name(inner))] = "works" if set(got) == set(EXPECTED) else "first order"


# -- what hosts cannot do --------------------------------------------------------------------------


def test_mlx_under_compile_and_vmap_is_refused_naming_what_works():
    mx = pytest.importorskip("mlx.core")
    dw = ad.DifferentiateWith(g, ad.AutoTorch())
    x = mx.array(X, dtype=mx.float64)
    for transform in (mx.compile, mx.vmap):
        with pytest.raises(
            ad.UnsupportedError, match=r"inside `mx.compile` or `mx.vmap`.*What works: the call, `mx.grad`"
        ):
            transform(lambda x: dw(x) * 2)(mx.stack([x]) if transform is mx.vmap else x)


def test_pytensor_needs_static_shapes():
    pt = pytest.importorskip("pytensor.tensor")
    dw = ad.DifferentiateWith(g, ad.AutoTorch())
    with pytest.raises(ad.UnsupportedError, match=r"static shapes, e.g. `pt.tensor\('x', shape=\(3,\)"):
        dw(pt.dvector("x"))


def test_pytensor_contexts_have_no_gradient():
    pytensor = pytest.importorskip("pytensor")
    pt = pytest.importorskip("pytensor.tensor")
    dw = ad.DifferentiateWith(lambda x, c: g(x) * c, ad.AutoTorch())
    x, c = pt.tensor("x", shape=(3,), dtype="float64"), pt.tensor("c", shape=(3,), dtype="float64")
    loss = pt.sum(dw(x, c))
    compiled = pytensor.function([x, c], pytensor.grad(loss, x))
    np.testing.assert_allclose(compiled(X, U), jacobian(X).T @ U, rtol=1e-12)
    with pytest.raises(pytensor.gradient.NullTypeGradError, match="not differentiated"):
        pytensor.grad(loss, c)


def test_pytensor_forward_over_reverse_uses_the_ops_pushforward():
    """`pushforward` with the `Op`s' own rule (not PyTensor's double pullback) of a gradient:
    the pushforward of the pullback `Op`, a Hessian-vector product."""
    pytensor = pytest.importorskip("pytensor")
    pt = pytest.importorskip("pytensor.tensor")
    dw = ad.DifferentiateWith(g, ad.AutoTorch())
    x, t = pt.tensor("x", shape=(3,), dtype="float64"), pt.tensor("t", shape=(3,), dtype="float64")
    gradient = pytensor.grad(pt.sum(dw(x) ** 2), x)
    hvp = pytensor.gradient.pushforward(gradient, x, t, use_op_pushforward=True)
    np.testing.assert_allclose(pytensor.function([x, t], hvp)(X, T), EXPECTED["hvp"], rtol=1e-10)


def test_casadi_callbacks_outlive_their_differentiate_with():
    """CasADi's expressions hold no Python reference: a dropped `DifferentiateWith` still runs."""
    ca = pytest.importorskip("casadi")
    x = ca.MX.sym("x", 3)
    loss = ca.sumsqr(ad.DifferentiateWith(g, ad.AutoTorch())(x))  # the wrapper is dropped at once
    gc.collect()
    hessian = ca.Function("hessian", [x], [ca.hessian(loss, x)[0]])
    np.testing.assert_allclose(np.asarray(hessian(X)), hessian_of_loss(X), rtol=1e-10)


def test_casadi_refuses_sx_naming_mx():
    ca = pytest.importorskip("casadi")
    dw = ad.DifferentiateWith(g, ad.AutoTorch())
    with pytest.raises(ad.UnsupportedError, match=r"from MX programs only. Use MX symbols"):
        dw(ca.SX.sym("x", 3))


def test_casadi_scalars_columns_and_matrices():
    """1x1 is a 0-d array, a column 1-D, anything else 2-D; results come back the same way."""
    ca = pytest.importorskip("casadi")
    seen = []

    def f(x):
        seen.append(x.shape)
        return x * 2.0

    dw = ad.DifferentiateWith(f, ad.AutoFiniteDiff())
    for shape, numpy_shape in (((1, 1), ()), ((3, 1), (3,)), ((2, 3), (2, 3))):
        y = dw(ca.DM(np.arange(np.prod(shape), dtype=float).reshape(shape)))
        assert y.shape == shape and seen[-1] == numpy_shape
        np.testing.assert_allclose(np.asarray(y), 2 * np.arange(np.prod(shape)).reshape(shape))


# -- CasADi: IPOPT with exact Hessians through torch -----------------------------------------------


def test_ipopt_solves_rosenbrock_on_a_disc_through_torch():
    """min (1 - x₀)² + 100 (x₁ - x₀²)² s.t. |x|² ≤ 1: the objective through torch, exact Hessians;
    the same optimum and the same iterations as the pure-CasADi formulation."""
    ca = pytest.importorskip("casadi")
    pytest.importorskip("torch")

    def rosenbrock(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    def solve(objective, x):
        options = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"}
        solver = ca.nlpsol("disc", "ipopt", {"x": x, "f": objective, "g": ca.sumsqr(x)}, options)
        found = solver(x0=[0.5, 0.5], lbg=-np.inf, ubg=1.0)
        assert solver.stats()["success"]
        return np.asarray(found["x"]).ravel(), solver.stats()["iter_count"]

    x = ca.MX.sym("x", 2)
    through_torch, iterations = solve(ad.DifferentiateWith(rosenbrock, ad.AutoTorch())(x), x)
    pure, pure_iterations = solve(rosenbrock(x), x)
    # the known optimum: on the circle, where the gradient is normal to it
    np.testing.assert_allclose(through_torch, [0.78641515, 0.61769831], rtol=1e-7)
    np.testing.assert_allclose(through_torch, pure, rtol=1e-10)
    assert iterations == pure_iterations


# -- the examples of the recipes -------------------------------------------------------------------


def example(name):
    examples = Path(__file__).resolve().parents[1] / "examples"
    spec = importlib.util.spec_from_file_location(name, examples / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_black_box_likelihood_example_fits_with_either_substitute():
    pytest.importorskip("pytensor")
    pytest.importorskip("torch")
    rows = example("black_box_likelihood").main(["--steps", "50"])
    assert [r["substitute"] for r in rows] == ["AutoFiniteDiff", "AutoTorch"]
    np.testing.assert_allclose(rows[0]["mode"], rows[1]["mode"], rtol=1e-5)
    np.testing.assert_allclose(rows[1]["std"], rows[0]["std"], rtol=1e-3)
    assert np.all(np.abs(rows[1]["mode"] - [1.5, 0.3]) < 4 * rows[1]["std"])  # the truth, within the posterior


def test_ipopt_example_takes_casadis_own_steps():
    pytest.importorskip("casadi")
    pytest.importorskip("torch")
    rows = example("ipopt_torch_objective").main(["--backends", "AutoTorch"])
    assert rows[0]["iterations"] == rows[1]["iterations"]
    np.testing.assert_allclose(rows[1]["x"], rows[0]["x"], rtol=1e-10)


# -- the generated table in docs/differentiate-with.md --------------------------------------------


def render():
    """One row per inner backend, one column per host."""
    lines = ["| inner \\ host | " + " | ".join(INSTALLED_HOSTS) + " |", "|---" * (len(INSTALLED_HOSTS) + 1) + "|"]
    for inner in map(inner_name, INNER):
        lines.append(f"| {inner} | " + " | ".join(RECORDED.get((h, inner), "fails") for h in INSTALLED_HOSTS) + " |")
    return "\n".join(lines)


def test_zz_table_in_the_docs():
    """Runs last (by name): the full run's table, written with ANYDIFF_WRITE_MATRIX=1."""
    if not FULL:
        pytest.skip("the table is generated by the full matrix: ANYDIFF_FULL_MATRIX=1")
    check_or_write("differentiate-with.md", "host matrix", render())
