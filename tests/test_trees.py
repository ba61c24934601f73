"""Trees of arrays and several active arguments (API.md section 10), on every installed backend.

References are closed forms: for the loss `L(p) = Σ (data @ w + b)²` of a linear model,
`∂L/∂w = 2 dataᵀ r`, `∂L/∂b = 2 Σ r` with `r = data @ w + b`, and the Hessian blocks are
`2 dataᵀdata ⊗ I`, `2 dataᵀ1 ⊗ I` and `2 m I`.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import anydiff as ad

BACKENDS = [b for b in ad.available_backends() if ad.check_available(b)]
IDS = [repr(b) for b in BACKENDS]
#: MLX computes float64 sin/cos/exp in float32 arithmetic; finite differences are approximate
LOOSE = {"AutoFiniteDiff": 1e-5, "AutoNumdifftools": 1e-6, "AutoMLX": 1e-5}

DATA = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
PARAMS = {"w": np.array([[1.0, -1.0], [0.5, 2.0], [0.0, 1.5]]), "b": np.array([0.3, -0.2]), "n": 3}


def loss(p, data):
    xp = ad.namespace(p["w"])
    assert p["n"] == 3  # static leaves reach `f` unchanged
    return xp.sum((data @ p["w"] + p["b"]) ** 2)


def residual():
    return DATA @ PARAMS["w"] + PARAMS["b"]


def tol(backend):
    return LOOSE.get(type(backend).__name__, 1e-9)


def close(a, b, backend):
    np.testing.assert_allclose(np.asarray(a, dtype=float), b, rtol=tol(backend), atol=tol(backend))


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_gradient_of_a_dict_of_parameters(backend):
    before = copy.deepcopy(PARAMS)
    g = ad.gradient(loss, backend, PARAMS, ad.Constant(DATA))
    assert list(g) == ["w", "b", "n"] and g["n"] is None  # key order of `x`; static leaf -> None
    close(g["w"], 2 * DATA.T @ residual(), backend)
    close(g["b"], 2 * residual().sum(axis=0), backend)
    assert type(g["w"]) is np.ndarray and g["w"].dtype == np.float64
    np.testing.assert_array_equal(PARAMS["w"], before["w"])  # inputs are never mutated
    prep = ad.prepare_gradient(loss, backend, PARAMS, ad.Constant(DATA))
    y, g2 = ad.value_and_gradient(loss, backend, PARAMS, ad.Constant(DATA), prep=prep)
    close(y, (residual() ** 2).sum(), backend)
    close(g2["b"], g["b"], backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_hessian_blocks_and_flat_form(backend):
    try:
        H = ad.hessian(loss, backend, PARAMS, ad.Constant(DATA))
    except ad.UnsupportedError as exc:
        pytest.skip(str(exc))
    eye = np.eye(2)
    # L = Σ_k Σ_j (Σ_i d_ki w_ij + b_j)²: blocks ∂²L/∂w_ij∂w_lm = 2 (dᵀd)_il δ_jm, ...
    ww = 2 * np.einsum("il,jm->ijlm", DATA.T @ DATA, eye)
    wb = 2 * np.einsum("i,jm->ijm", DATA.sum(axis=0), eye)
    assert H["w"]["w"].shape == (3, 2, 3, 2) and H["b"]["w"].shape == (2, 3, 2)
    assert H["n"] is None and H["w"]["n"] is None
    close(H["w"]["w"], ww, backend)
    close(H["w"]["b"], wb, backend)
    close(H["b"]["b"], 2 * DATA.shape[0] * eye, backend)
    flat = ad.hessian(loss, backend, PARAMS, ad.Constant(DATA), flat=True)
    v, unravel = ad.ravel(PARAMS)
    assert flat.shape == (8, 8) and unravel.paths == ("x['b']", "x['w']")  # leaf order: keys sorted
    close(flat[unravel.slices[1], unravel.slices[1]], ww.reshape(6, 6), backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=IDS)
def test_several_arguments_and_tree_outputs(backend):
    a, c = np.array([1.0, 2.0]), np.array([3.0, -1.0])

    def f(a, c):
        xp = ad.namespace(a)
        return {"prod": a * c, "sum": xp.sum(a) + xp.sum(c**2)}

    J = ad.jacobian(f, backend, ad.Args(a, c))
    assert set(J) == {"prod", "sum"} and type(J["prod"]) is tuple and len(J["prod"]) == 2
    close(J["prod"][0], np.diag(c), backend)
    close(J["prod"][1], np.diag(a), backend)
    close(J["sum"][1], 2 * c, backend)
    ta, tc = ad.pullback(f, backend, ad.Args(a, c), {"prod": np.ones(2), "sum": 1.0})
    close(ta, c + 1, backend)
    close(tc, a + 2 * c, backend)
    ty = ad.pushforward(f, backend, ad.Args(a, c), (np.ones(2), np.zeros(2)))
    close(ty["prod"], c, backend)
    close(ty["sum"], 2.0, backend)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if type(b).__name__ in ("AutoJAX", "AutoTorch")], ids=repr)
def test_tangent_batches_and_hvp(backend):
    x = {"u": np.array([1.0, 2.0]), "v": (np.array(0.5), 2)}

    def f(x):
        xp = ad.namespace(x["u"])
        return xp.sum(x["u"] ** 2) * x["v"][0] ** 2

    t1 = {"u": np.array([1.0, 0.0]), "v": (np.array(0.0), None)}
    t2 = {"u": np.array([0.0, 0.0]), "v": (np.array(1.0), None)}
    one = ad.hvp(f, backend, x, t1)
    both = ad.hvp(f, backend, x, (t1, t2))
    assert type(both) is tuple and len(both) == 2 and one["v"][1] is None
    # H = [[2 v² I, 4 v u], [4 v uᵀ, 2 |u|²]] at u = (1, 2), v = 0.5
    close(one["u"], [0.5, 0.0], backend)
    close(one["v"][0], 2.0, backend)
    close(both[1]["u"], [2.0, 4.0], backend)
    close(both[1]["v"][0], 10.0, backend)


def test_ravel_and_unravel():
    tree = {"b": np.zeros(2, dtype=np.float32), "a": [np.ones((2, 2)), "static", 1.5], "none": None}
    v, unravel = ad.ravel(tree)
    assert v.dtype == np.float64 and v.shape == (7,)
    assert unravel.paths == ("x['a'][0]", "x['a'][2]", "x['b']")
    back = unravel(np.arange(7.0))
    assert back["a"][1] == "static" and back["none"] is None
    assert back["b"].dtype == np.float32 and back["a"][0].shape == (2, 2)
    np.testing.assert_array_equal(back["b"], [5.0, 6.0])
    with pytest.raises(ValueError, match=r"unravel: expected a 1-D array of length 7; got shape \(6,\)"):
        unravel(np.zeros(6))


def test_namedtuples_ordered_dicts_and_registered_classes():
    Point = namedtuple("Point", ["x", "y"])

    @dataclasses.dataclass
    class Layer:
        w: np.ndarray
        name: str

    ad.register_dataclass(Layer, data_fields=["w"], meta_fields=["name"])
    x = OrderedDict(p=Point(np.array(1.0), np.array(2.0)), layer=Layer(np.array([1.0, 3.0]), "first"))

    def f(x):
        return x["p"].x * x["p"].y + (x["layer"].w ** 2).sum()

    g = ad.gradient(f, ad.AutoFiniteDiff(), x)
    assert type(g) is OrderedDict and type(g["p"]) is Point and type(g["layer"]) is Layer
    assert g["layer"].name == "first"
    np.testing.assert_allclose([g["p"].x, g["p"].y], [2.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(g["layer"].w, [2.0, 6.0], rtol=1e-6)


def test_a_prep_checks_every_leaf_and_names_its_path():
    backend = ad.AutoFiniteDiff()
    prep = ad.prepare_gradient(loss, backend, PARAMS, ad.Constant(DATA))
    other = {"w": np.ones((2, 3)), "b": np.zeros(2), "n": 4}
    with pytest.raises(ad.PreparationMismatchError) as info:
        ad.gradient(loss, backend, other, ad.Constant(DATA), prep=prep)
    message = str(info.value)
    assert "✗ x['w']  shape (3, 2) float64 → shape (2, 3) float64" in message
    assert "✗ x['n'] (static) 3 → 4" in message
    with pytest.raises(
        ad.PreparationMismatchError, match=r"✗ x structure \{'w': \*, 'b': \*, 'n': \*\} → \{'w': \*, 'b': \*\}"
    ):
        ad.gradient(loss, backend, {"w": PARAMS["w"], "b": PARAMS["b"]}, ad.Constant(DATA), prep=prep)
    assert "static=[\"x['n']\"]" in repr(prep)


def test_errors_that_teach():
    fd = ad.AutoFiniteDiff()

    @dataclasses.dataclass
    class Unregistered:
        w: np.ndarray

    with pytest.raises(
        TypeError,
        match=r"gradient: x\['m'\] is a Unregistered holding arrays \(fields w\) .* "
        r"`ad.register_dataclass\(Unregistered",
    ):
        ad.gradient(lambda x: 0.0, fd, {"m": Unregistered(np.ones(2)), "a": np.ones(1)})
    with pytest.raises(TypeError, match=r"gradient: `x` has no differentiable leaf .* x\['k'\]: 3"):
        ad.gradient(lambda x: 0.0, fd, {"k": 3, "i": np.arange(3)})
    with pytest.raises(ValueError, match=r"gradient: `f` must return one scalar; it returned a dict tree"):
        ad.gradient(lambda x: {"a": x["a"].sum()}, fd, {"a": np.ones(2)})
    with pytest.raises(ValueError, match=r"pushforward: the tangents must be one tree with the structure of `x`"):
        ad.pushforward(lambda x: x["a"] * 2, fd, {"a": np.ones(2)}, {"b": np.ones(2)})
    with pytest.raises(ValueError, match=r"pushforward: tangent tx\['a'\]: expected shape \(2,\) float64, got \(3,\)"):
        ad.pushforward(lambda x: x["a"] * 2, fd, {"a": np.ones(2)}, {"a": np.ones(3)})
    with pytest.raises(TypeError, match=r"derivative: `x` must be a scalar; got a tree"):
        ad.derivative(lambda x: x["a"] * 2, fd, {"a": 1.0})
    with pytest.raises(TypeError, match=r"gradient: x\['a'\] has dtype float16"):
        ad.gradient(lambda x: 0.0, fd, {"a": np.ones(2, dtype=np.float16)})


def test_mixed_kinds_and_torch_modules():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"one kind; this one mixes x\['a'\] → numpy, x\['b'\] → torch"):
        ad.gradient(lambda x: 0.0, ad.AutoTorch(), {"a": np.ones(2), "b": torch.ones(2)})
    model = torch.nn.Linear(3, 2).double()
    with pytest.raises(TypeError, match=r"gradient: x is a torch `Linear` module; .* `torch.func.functional_call"):
        ad.gradient(lambda m: 0.0, ad.AutoTorch(), model)

    inputs = torch.tensor(DATA)

    def model_loss(params):
        return (torch.func.functional_call(model, params, (inputs,)) ** 2).sum()

    params = dict(model.named_parameters())
    g = ad.gradient(model_loss, ad.AutoTorch(), params)
    r = (inputs @ params["weight"].T + params["bias"]).detach()
    torch.testing.assert_close(g["weight"], 2 * r.T @ inputs)
    torch.testing.assert_close(g["bias"], 2 * r.sum(0))
    assert model.weight.grad is None and not g["weight"].requires_grad


def test_scipy_adapters_ravel_a_tree():
    from anydiff.scipy import Residuals, hessian_operator, jacobian_operator, minimize

    def quadratic(p):
        xp = ad.namespace(p["a"])
        return xp.sum((p["a"] - 1.0) ** 2) + 3.0 * (p["b"] + 2.0) ** 2

    x0 = {"a": np.zeros(2), "b": np.array(0.0), "tag": "static"}
    result = minimize(quadratic, ad.AutoJAX(), x0, method="trust-exact")
    np.testing.assert_allclose(result.x_tree["a"], [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(result.x_tree["b"], -2.0, atol=1e-6)
    assert result.x_tree["tag"] == "static" and result.x.shape == (3,)

    op = hessian_operator(quadratic, ad.AutoFiniteDiff(), x0)
    np.testing.assert_allclose(op.matvec(np.ones(3)), [2.0, 2.0, 6.0], rtol=1e-5)  # leaf order: a, b

    def pieces(p):
        return {"double": 2.0 * p["a"], "square": p["b"] ** 2}

    jop = jacobian_operator(pieces, ad.AutoFiniteDiff(), {"a": np.ones(2), "b": np.array(3.0)})
    assert jop.shape == (3, 3)
    np.testing.assert_allclose(jop.matvec(np.array([1.0, 0.0, 1.0])), [2.0, 0.0, 6.0], rtol=1e-6)

    residuals = Residuals(pieces, ad.AutoFiniteDiff(), {"a": np.ones(2), "b": np.array(3.0)})
    np.testing.assert_allclose(residuals.fun(residuals.x0), [2.0, 2.0, 9.0])
    assert residuals.unravel(residuals.x0)["b"] == 3.0


def test_classes_of_the_jax_and_torch_registries_are_trees():
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")

    class JaxPair:
        def __init__(self, first, second):
            self.first, self.second = first, second

    jax.tree_util.register_pytree_node(JaxPair, lambda p: ((p.first, p.second), None), lambda _, c: JaxPair(*c))

    class TorchPair(JaxPair):
        pass

    torch.utils._pytree.register_pytree_node(
        TorchPair, lambda p: ([p.first, p.second], None), lambda c, _: TorchPair(*c)
    )
    for cls in (JaxPair, TorchPair):
        g = ad.gradient(lambda p: (p.first * p.second).sum(), ad.AutoFiniteDiff(), cls(np.ones(2), np.full(2, 2.0)))
        assert type(g) is cls
        np.testing.assert_allclose(g.first, [2.0, 2.0], rtol=1e-6)
        np.testing.assert_allclose(g.second, [1.0, 1.0], rtol=1e-6)


def _simulation(p):
    xp = ad.namespace(p["a"])
    return {"s": xp.sin(p["a"]) * p["b"], "t": xp.sum(p["a"] ** 2)}


def test_differentiate_with_takes_and_returns_trees_in_jax_torch_and_autograd():
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    import jax.numpy as jnp

    dw = ad.DifferentiateWith(_simulation, ad.AutoFiniteDiff())
    a, b = np.array([0.3, 0.7]), np.array(2.0)
    grad_a, grad_b = np.cos(a) * b + 2 * a, np.sin(a).sum()  # of sum(s) + t
    with jax.enable_x64(True):

        def loss(p):
            out = dw(p)
            return jnp.sum(out["s"]) + out["t"]

        p = {"a": jnp.asarray(a), "b": jnp.asarray(b)}
        for g in (jax.grad(loss)(p), jax.jit(jax.grad(loss))(p)):
            np.testing.assert_allclose(g["a"], grad_a, rtol=1e-6)
            np.testing.assert_allclose(g["b"], grad_b, rtol=1e-6)
        _, tangent = jax.jvp(loss, (p,), ({"a": jnp.ones(2), "b": jnp.asarray(0.0)},))
        np.testing.assert_allclose(tangent, grad_a.sum(), rtol=1e-6)

    pt = {"a": torch.tensor(a, requires_grad=True), "b": torch.tensor(b, requires_grad=True)}
    out = dw(pt)
    (out["s"].sum() + out["t"]).backward()
    np.testing.assert_allclose(pt["a"].grad.numpy(), grad_a, rtol=1e-6)
    np.testing.assert_allclose(pt["b"].grad.numpy(), grad_b, rtol=1e-6)

    def autograd_loss(a, b):
        out = dw({"a": a, "b": b})
        return anp.sum(out["s"]) + out["t"]

    np.testing.assert_allclose(autograd.grad(autograd_loss)(a, b), grad_a, rtol=1e-6)
    plain = dw({"a": a, "b": b})  # NumPy: the plain value, as a tree
    np.testing.assert_allclose(plain["t"], (a**2).sum())


def test_sparsity_patterns_and_sparse_backends_use_the_flat_layout():
    def f(p):
        return p["a"][1:] * p["b"]

    x = {"b": np.ones(3), "a": np.ones(4)}  # leaf order: a (columns 0-3), then b (4-6)
    expected = np.zeros((3, 7), dtype=bool)
    expected[np.arange(3), np.arange(1, 4)] = expected[np.arange(3), np.arange(4, 7)] = True
    np.testing.assert_array_equal(ad.jacobian_sparsity(f, x).toarray(), expected)
    jac = ad.jacobian(f, ad.AutoSparse(ad.AutoFiniteDiff()), x)
    np.testing.assert_allclose(jac.toarray(), expected.astype(float), rtol=1e-6)
    pattern = ad.hessian_sparsity(lambda p: (p["a"][1:] * p["b"]).sum(), x).toarray()
    np.testing.assert_array_equal(
        pattern, np.block([[np.zeros((4, 4)), expected[:, :4].T], [expected[:, :4], np.zeros((3, 3))]])
    )


@pytest.mark.parametrize("backend", [ad.AutoFiniteDiff(), ad.AutoJAX()], ids=repr)
def test_every_operator_and_value_form_on_trees(backend):
    if not ad.check_available(backend):
        pytest.skip(f"{backend!r} is not installed")
    x = {"u": np.array([0.5, 1.5]), "k": 2}

    def vector(x):  # tree in, tree out
        return {"sq": x["u"] ** 2, "prod": x["u"][:1] * x["u"][1:] * x["k"]}

    def scalar(x):
        return (x["u"] ** 3).sum()

    def curve(t):  # scalar in, tree out
        return (t**2, {"cube": t**3})

    u, t = x["u"], 1.5
    rtol = 1e-5 if isinstance(backend, ad.AutoFiniteDiff) else 1e-12
    tx = {"u": np.array([1.0, -1.0]), "k": None}
    y, ty = ad.value_and_pushforward(vector, backend, x, tx)
    np.testing.assert_allclose(y["sq"], u**2)
    np.testing.assert_allclose(ty["sq"], 2 * u * tx["u"], rtol=rtol)
    np.testing.assert_allclose(ty["prod"], [2 * (u[1] - u[0])], rtol=rtol)
    y, tu = ad.value_and_pullback(vector, backend, x, {"sq": np.ones(2), "prod": np.ones(1)})
    np.testing.assert_allclose(tu["u"], 2 * u + 2 * u[::-1], rtol=rtol)
    assert tu["k"] is None
    y, d = ad.value_and_derivative(curve, backend, t)
    np.testing.assert_allclose(d[1]["cube"], 3 * t**2, rtol=rtol)
    y, J = ad.value_and_jacobian(vector, backend, x)
    np.testing.assert_allclose(J["sq"]["u"], np.diag(2 * u), rtol=rtol)
    y, d, dd = ad.value_derivative_and_second_derivative(curve, backend, t)
    np.testing.assert_allclose(dd[0], 2.0, rtol=1e-4 if rtol > 1e-9 else 1e-12)
    np.testing.assert_allclose(dd[1]["cube"], 6 * t, rtol=1e-4 if rtol > 1e-9 else 1e-12)
    g, hv = ad.gradient_and_hvp(scalar, backend, x, tx)
    np.testing.assert_allclose(g["u"], 3 * u**2, rtol=rtol)
    np.testing.assert_allclose(hv["u"], 6 * u * tx["u"], rtol=1e-4 if rtol > 1e-9 else 1e-12)
    y, g, H = ad.value_gradient_and_hessian(scalar, backend, x)
    np.testing.assert_allclose(H["u"]["u"], np.diag(6 * u), rtol=1e-4 if rtol > 1e-9 else 1e-12)
    y, flat = ad.value_and_jacobian(vector, backend, x, flat=True)
    assert flat.shape == (3, 2)  # rows: prod, then sq (keys sorted); columns: u
    prep = ad.prepare_jacobian(vector, backend, x, flat=True)
    with pytest.raises(ad.PreparationMismatchError, match=r"`flat=False` differs from the `flat=True`"):
        ad.jacobian(vector, backend, x, prep=prep)


def _host_gradients():
    """`(host, gradient of sum(s) + t in `a` computed by a program of that host)` for each host installed."""
    dw = ad.DifferentiateWith(_simulation, ad.AutoFiniteDiff())
    a, b = np.array([0.3, 0.7]), np.array(2.0)

    def tensorflow():
        import tensorflow as tf

        av, bv = tf.constant(a), tf.constant(b)
        with tf.GradientTape() as tape:
            tape.watch(av)
            out = dw({"a": av, "b": bv})
            loss = tf.reduce_sum(out["s"]) + out["t"]
        return tape.gradient(loss, av).numpy()

    def mlx():
        import mlx.core as mx

        def loss(a, b):
            out = dw({"a": a, "b": b})
            return mx.sum(out["s"]) + out["t"]

        return np.array(mx.grad(loss)(mx.array(a.astype(np.float32)), mx.array(np.float32(b))))

    def pytensor():
        import pytensor
        import pytensor.tensor as pt

        av, bv = pt.vector("a", shape=(2,)), pt.scalar("b")
        out = dw({"a": av, "b": bv})
        return pytensor.function([av, bv], pytensor.grad(out["s"].sum() + out["t"], av))(a, b)

    def mygrad():
        import mygrad as mg

        av = mg.tensor(a)
        out = dw({"a": av, "b": mg.tensor(b)})
        (mg.sum(out["s"]) + out["t"]).backward()
        return av.grad

    def paddle():
        from anydiff._libraries.paddle.load import load_paddle

        paddle = load_paddle()
        av = paddle.to_tensor(a, stop_gradient=False)
        out = dw({"a": av, "b": paddle.to_tensor(b, stop_gradient=False)})
        return paddle.grad([out["s"].sum() + out["t"]], [av])[0].numpy()

    def mindspore():
        from anydiff._libraries.mindspore.load import load_mindspore

        ms = load_mindspore()

        def loss(av):
            out = dw({"a": av, "b": ms.Tensor(b)})
            return ms.ops.sum(out["s"]) + out["t"]

        return ms.grad(loss)(ms.Tensor(a)).asnumpy()

    return {
        "tensorflow": tensorflow,
        "mlx": mlx,
        "pytensor": pytensor,
        "mygrad": mygrad,
        "paddle": paddle,
        "mindspore": mindspore,
    }


@pytest.mark.parametrize("host", sorted(_host_gradients()))
def test_trees_through_the_other_hosts(host):
    if importlib.util.find_spec(host) is None:  # (not importorskip: Paddle must load through anydiff after TF)
        pytest.skip(f"{host} is not installed")
    a, b = np.array([0.3, 0.7]), 2.0
    rtol = 1e-4 if host == "mlx" else 1e-6  # MLX computes in float32 here
    np.testing.assert_allclose(_host_gradients()[host](), np.cos(a) * b + 2 * a, rtol=rtol)


def test_casadi_programs_pass_one_vector_not_a_tree():
    ca = pytest.importorskip("casadi")
    dw = ad.DifferentiateWith(_simulation, ad.AutoFiniteDiff())
    with pytest.raises(ad.UnsupportedError, match=r"with one array, not a tree: pass the leaves as one vector"):
        dw({"a": ca.MX.sym("a", 2), "b": ca.MX.sym("b")})


def test_jax_trees_compile_into_one_call_that_checks_every_leaf():
    """AutoJAX compiles raveling, derivative and cut into one call (`_fused_tree`); a tree of JAX
    arrays is passed whole and checked by the executable, then leaf by leaf when it refuses one."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    backend = ad.AutoJAX()

    def mlp(p, data):
        h = data
        for name in sorted(p):
            h = jnp.tanh(h @ p[name]["w"] + p[name]["b"])
        return jnp.sum(h**2)

    rng = np.random.default_rng(1)
    p_np = {f"l{i}": {"w": rng.normal(size=(3, 3)), "b": rng.normal(size=3)} for i in range(3)}
    data = rng.normal(size=(2, 3))
    with jax.enable_x64(True):
        p = jax.tree.map(jnp.asarray, p_np)
        expected = jax.grad(mlp)(p, jnp.asarray(data))
        value = mlp(p, jnp.asarray(data))
    prep = ad.prepare_gradient(mlp, backend, p, ad.Constant(data))
    for _ in range(2):  # the executable's first call compiles it
        y, g = ad.value_and_gradient(mlp, backend, p, ad.Constant(data), prep=prep)
        np.testing.assert_allclose(y, value, rtol=1e-12)
        for name in p:
            for k in ("w", "b"):
                np.testing.assert_allclose(g[name][k], expected[name][k], rtol=1e-12)
                assert g[name][k].dtype == jnp.float64 and isinstance(g[name][k], jax.Array)
    # no contexts: the executable itself is called
    prep = ad.prepare_gradient(lambda p: mlp(p, data), backend, p)
    f = prep.f
    for _ in range(2):
        g = ad.gradient(f, backend, p, prep=prep)
        np.testing.assert_allclose(g["l1"]["w"], expected["l1"]["w"], rtol=1e-12)
    with jax.enable_x64(True):
        wrong = jax.tree.map(jnp.asarray, p_np)
        wrong["l1"]["w"] = jnp.ones((3, 2))
        as_float32 = jax.tree.map(lambda a: a.astype(jnp.float32), p)
    with pytest.raises(
        ad.PreparationMismatchError, match=r"✗ x\['l1'\]\['w'\]  shape \(3, 3\) float64 → shape \(3, 2\)"
    ):
        ad.gradient(f, backend, wrong, prep=prep)
    with pytest.raises(
        ad.PreparationMismatchError, match=r"x\['l0'\]\['b'\]  shape \(3,\) float64 → shape \(3,\) float32"
    ):
        ad.gradient(f, backend, as_float32, prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ x\['l0'\]\['b'\]  type ArrayImpl → ndarray"):
        ad.gradient(f, backend, p_np, prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ x structure"):
        ad.gradient(f, backend, {**p, "l3": p["l0"]}, prep=prep)
    g = ad.gradient(f, backend, p, prep=prep)  # still right after the refused calls
    np.testing.assert_allclose(g["l2"]["b"], expected["l2"]["b"], rtol=1e-12)

    # NumPy leaves come back as NumPy arrays; static leaves are checked and give `None`
    with_static = {**p_np, "depth": 3}

    def mlp_static(p):
        assert p["depth"] == 3
        return mlp({k: v for k, v in p.items() if k != "depth"}, data)

    prep = ad.prepare_gradient(mlp_static, backend, with_static)
    for _ in range(2):
        g = ad.gradient(mlp_static, backend, with_static, prep=prep)
        assert g["depth"] is None and type(g["l0"]["w"]) is np.ndarray
        np.testing.assert_allclose(g["l0"]["w"], expected["l0"]["w"], rtol=1e-12)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ x\['depth'\] \(static\) 3 → 4"):
        ad.gradient(mlp_static, backend, {**p_np, "depth": 4}, prep=prep)

    # float32 leaves (no x64), a Python float leaf, tree outputs and blocks, ad.Args
    x32 = {"a": jnp.arange(3.0, dtype=jnp.float32), "s": 2.0}
    y, J = ad.value_and_jacobian(lambda x: {"v": x["a"] * x["s"], "w": x["a"][:2] ** 2}, backend, x32)
    np.testing.assert_allclose(J["v"]["a"], 2.0 * np.eye(3), rtol=1e-6)
    np.testing.assert_allclose(J["v"]["s"], [0.0, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(J["w"]["a"], [[0.0, 0, 0], [0, 2, 0]], rtol=1e-6)
    assert J["v"]["a"].dtype == jnp.float64  # float32 and float64 (the Python float) promote
    H = ad.hessian(lambda a, b: jnp.sum(a**2 * b), backend, ad.Args(jnp.ones(2, dtype=jnp.float32), 3.0))
    np.testing.assert_allclose(H[0][0], 6 * np.eye(2))
    np.testing.assert_allclose(H[0][1], [2.0, 2.0])
    ga, gb = ad.gradient(lambda a, b: jnp.sum(a * b), backend, ad.Args(jnp.ones(2), jnp.full(2, 3.0)))
    np.testing.assert_allclose(ga, [3.0, 3.0])

    # errors inside the compiled call are translated
    with pytest.raises(ad.FunctionNotDifferentiableError, match="tracer"):
        ad.gradient(lambda x: float(x["a"].sum()), backend, {"a": jnp.ones(2)})


def test_torch_tree_gradients_record_the_leaves_on_the_tape():
    """AutoTorch's gradient of a tree differentiates the leaves themselves (`_leafwise_tree`)."""
    torch = pytest.importorskip("torch")
    backend = ad.AutoTorch()

    def loss(p, data):
        assert p["n"] == 3
        return ((data @ p["w"] + p["b"]) ** 2).sum() + 0.0 * p["u"].sum() ** 2

    data = torch.from_numpy(DATA)
    p = {
        "w": torch.from_numpy(PARAMS["w"]),
        "b": torch.from_numpy(PARAMS["b"]).float(),
        "u": torch.ones(2, dtype=torch.float64),
        "n": 3,
        "unused": torch.ones(3, dtype=torch.float64),
    }
    expected_w, expected_b = 2 * DATA.T @ residual(), 2 * residual().sum(axis=0)
    prep = ad.prepare_gradient(loss, backend, p, ad.Constant(data))
    for _ in range(2):
        y, g = ad.value_and_gradient(loss, backend, p, ad.Constant(data), prep=prep)
        np.testing.assert_allclose(g["w"].numpy(), expected_w, rtol=1e-6)
        np.testing.assert_allclose(g["b"].numpy(), expected_b, rtol=1e-5)
        assert g["b"].dtype == torch.float32 and g["w"].dtype == torch.float64 and g["n"] is None
        np.testing.assert_array_equal(g["unused"].numpy(), np.zeros(3))  # unused leaves: zeros
        assert not g["w"].requires_grad and p["w"].grad is None
        with torch.no_grad():
            g = ad.gradient(loss, backend, p, ad.Constant(data), prep=prep)
        np.testing.assert_allclose(g["w"].numpy(), expected_w, rtol=1e-6)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ x\['n'\] \(static\) 3 → 4"):
        ad.gradient(loss, backend, {**p, "n": 4}, ad.Constant(data), prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ x\['b'\]  shape \(2,\) float32 → shape \(2,\) float64"):
        ad.gradient(loss, backend, {**p, "b": p["b"].double()}, ad.Constant(data), prep=prep)
    # NumPy leaves come back as NumPy arrays; Python float leaves (flat route) and ad.Args
    g = ad.gradient(lambda q: (q["a"] ** 2).sum() * q["s"], backend, {"a": np.ones(2), "s": 3.0})
    assert type(g["a"]) is np.ndarray
    np.testing.assert_allclose(g["a"], [6.0, 6.0])
    np.testing.assert_allclose(g["s"], 2.0)
    ga, gb = ad.gradient(lambda a, b: (a * b).sum(), backend, ad.Args(np.ones(2), np.full(2, 3.0)))
    np.testing.assert_allclose(ga, [3.0, 3.0])
    np.testing.assert_allclose(gb, [1.0, 1.0])


def test_a_prep_walks_plain_containers_as_optree_flattens_them():
    """`TreeLayout.accept` walks dicts, lists, tuples and `None` itself (`_walker`): the same leaves
    as optree's flattening, and every other structure is told apart."""
    from anydiff._core.trees import flatten, layout

    x = {"b": [np.ones(2), (np.zeros(1), None)], "a": {"z": np.ones(3), "y": 2.0, "k": 4}, "c": ()}
    lay = layout(x, "gradient")
    assert lay.walk is not None
    leaves = lay.accept(x, "gradient")
    assert [id(leaf) for leaf in leaves] == [id(leaf) for leaf in flatten(x)[0]]
    reordered = {"c": (), "a": {"k": 4, "y": 2.0, "z": x["a"]["z"]}, "b": x["b"]}  # key order does not count
    assert [id(leaf) for leaf in lay.accept(reordered, "gradient")] == [id(leaf) for leaf in leaves]
    others = [
        {**x, "b": [np.ones(2), [np.zeros(1), None]]},  # a list where a tuple was
        {**x, "b": [np.ones(2), (np.zeros(1), np.ones(1))]},  # a leaf where None was
        {**x, "a": {"z": {"w": np.ones(3)}, "y": 2.0, "k": 4}},  # a dict where a leaf was
        {**x, "a": {"z": np.ones(3), "y": 2.0}},  # a key less
        {**x, "a": {"z": np.ones(3), "y": 2.0, "j": 4}},  # another key
        {**x, "a": {"z": np.ones(3), "y": 2.0, "k": 5}},  # another static value
        {**x, "b": [np.ones(3), (np.zeros(1), None)]},  # another shape
    ]
    for other in others:
        with pytest.raises(ad.PreparationMismatchError, match="✗"):
            lay.accept(other, "gradient")
    assert layout({1: np.ones(1), 2: np.ones(1)}, "gradient").walk is None  # keys that are no strings
