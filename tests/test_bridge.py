"""`DifferentiateWith`: one library's function inside another's program, derivatives by a substitute.

Three kinds of checks:
- the scenario suite (analytic derivatives) run by a caller backend (`AutoJAX`, `AutoTorch`: its
  own `jit`, `grad`, `jacfwd`, `hessian`, ... route) on functions wrapped for each substitute;
- the caller library's transforms (JAX: `jvp`, `vjp`, `grad`, `jacfwd`, `jacrev`, `hessian`,
  `jit`, `vmap`; torch: `torch.func`, `autograd.grad` with double backward, dual numbers) through
  the wrapped function, against the same transforms of the function itself;
- contexts, preparation reuse, threads, errors.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff.testing import default_scenarios, test_differentiation

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

FD, JAX, TORCH = ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch()
SUBSTITUTES = [FD, JAX, TORCH]

# One or two scenarios per operator and variant, enough to cross every rule of the bridge.
LABELS = {
    "pushforward-vector-to-vector-batched",
    "pullback-scalar-to-matrix-batched",
    "derivative-scalar",
    "gradient-matrix",
    "jacobian-vector-to-vector",
    "second_derivative-vector",
    "hvp-vector-batched",
    "hessian-matrix",
    "hvp-vector-constant",
    "pullback-scalar-to-vector-cache",
    "gradient-vector-float32",
    "hessian-matrix-float32",
}
# A caller whose library is the substitute's calls `f` itself (`test_same_library_is_transparent`).
PAIRS = [(caller, s) for caller in (JAX, TORCH) for s in SUBSTITUTES if s != caller]


def wrapped(scenario, substitute):
    """The scenario with its function wrapped, at both of its points."""
    dw = ad.DifferentiateWith(scenario.f, substitute)
    second = scenario.second_point
    return scenario.replace(f=dw, second_point=None if second is None else second.replace(f=dw))


def g(x, scale=1.0):
    """Vector to vector, written once for every library."""
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x) * scale


def numpy_only(x):
    return np.sin(np.asarray(x)) * 2.0


# -- the scenario suite, caller backend x substitute ------------------------------------------------


@pytest.mark.parametrize(("caller", "substitute"), PAIRS, ids=repr)
def test_scenarios_through_the_bridge(caller, substitute):
    scenarios = [wrapped(s, substitute) for s in default_scenarios() if s.label in LABELS]
    # JAX arrays cannot be written into, so a JAX substitute cannot run an `f` that fills a Cache.
    excluded = {s.label for s in scenarios if s.name.endswith("cache")} if substitute == JAX else set()
    if substitute == FD:  # second differences in float32 are good to ~1e-4
        excluded |= {s.label for s in scenarios if s.name.endswith("float32")}
        test_differentiation(caller, [s for s in scenarios if s.name.endswith("float32")], rtol=2e-3)
    outcomes = test_differentiation(caller, scenarios, excluded=excluded)
    assert {o.status for o in outcomes} <= {"works", "unsupported"}


def test_same_library_is_transparent():
    seen = []

    def f(x, c):
        seen.append(type(x))
        return x * c

    with jax.enable_x64(True):
        jax.jit(jax.grad(lambda x: ad.DifferentiateWith(f, JAX)(x, 2.0).sum()))(jnp.ones(2))
    torch.func.grad(lambda x: ad.DifferentiateWith(f, TORCH)(x, ad.Constant(2.0)).sum())(torch.ones(2))
    assert [issubclass(t, jax.core.Tracer) for t in seen] == [True, False]
    assert issubclass(seen[1], torch.Tensor)


# -- JAX transforms ----------------------------------------------------------------------------------

# Eager and under `jit`; the references (JAX differentiating `g` itself) always under `jit`, which
# compiles once instead of op by op.
JAX_TRANSFORMS = {
    "grad": jax.grad,
    "jacfwd": jax.jacfwd,
    "hessian": jax.hessian,
    "jit(jacrev)": lambda f: jax.jit(jax.jacrev(f)),
    "jit(hessian)": lambda f: jax.jit(jax.hessian(f)),
    "jit(jacrev(jacrev))": lambda f: jax.jit(jax.jacrev(jax.jacrev(f))),
    "jit(jacfwd(jacfwd))": lambda f: jax.jit(jax.jacfwd(jax.jacfwd(f))),
    "jit(vmap(grad))": lambda f: jax.jit(lambda x: jax.vmap(jax.grad(f))(jnp.stack([x, 2 * x]))),
}


def tolerance(substitute, order):
    if substitute == FD:
        return {1: 1e-7, 2: 1e-4}[order]
    return 1e-10


@pytest.mark.parametrize("substitute", [FD, TORCH], ids=repr)
def test_jax_transforms_match_jax_itself(substitute):
    dw = ad.DifferentiateWith(g, substitute)
    with jax.enable_x64(True):
        x = jnp.linspace(0.1, 1.0, 4)
        for name, transform in JAX_TRANSFORMS.items():
            order = 2 if any(s in name for s in ("hessian", "(jac")) else 1
            got = transform(lambda x: jnp.sum(dw(x) ** 2))(x)
            want = jax.jit(transform(lambda x: jnp.sum(g(x) ** 2)))(x)
            assert type(got) is type(want) and got.dtype == jnp.float64, name
            np.testing.assert_allclose(got, want, rtol=tolerance(substitute, order), err_msg=name)
        t = jnp.cos(x)
        for name, (got, want) in {
            "jvp": (jax.jvp(dw, (x,), (t,)), jax.jit(lambda x, t: jax.jvp(g, (x,), (t,)))(x, t)),
            "vjp": (jax.vjp(dw, x)[1](t), jax.jit(lambda x, t: jax.vjp(g, x)[1](t))(x, t)),
            "jit(vmap)": (jax.jit(jax.vmap(dw))(jnp.stack([x, t])), jax.jit(jax.vmap(g))(jnp.stack([x, t]))),
            "linearize": (jax.linearize(dw, x)[1](t), jax.jit(lambda x, t: jax.linearize(g, x)[1](t))(x, t)),
        }.items():
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                np.testing.assert_allclose(a, b, rtol=tolerance(substitute, 1), err_msg=name)


def test_jax_float32_and_eager_call_give_jax_arrays():
    dw = ad.DifferentiateWith(g, TORCH)
    x = jnp.linspace(0.1, 1.0, 3, dtype=jnp.float32)
    y = dw(x)
    assert isinstance(y, jax.Array) and y.dtype == jnp.float32
    np.testing.assert_allclose(y, g(x), rtol=1e-6)


def positive_only(x):
    """A simulation that refuses a zero, as at the zeros `jit` evaluates `f` at for its shape."""
    if bool((x == 0).any()):
        raise ValueError("x must be nonzero")
    return x * x


def test_repeated_eager_jax_calls_run_compiled_without_evaluating_at_zeros():
    # From the second eager call with the same shapes on, the call runs as a compiled program;
    # its result's shape comes from the first call, not from `f` at zeros (which raises here).
    dw = ad.DifferentiateWith(positive_only, TORCH)
    with jax.enable_x64(True):
        for dtype in (jnp.float32, jnp.float64):
            x = jnp.linspace(0.5, 1.5, 3, dtype=dtype)
            for _ in range(3):
                y, pull = jax.vjp(dw, x)
                (grad,) = pull(jnp.ones(3, dtype=dtype))
                assert y.dtype == dtype and grad.dtype == dtype
                np.testing.assert_allclose(y, x * x, rtol=1e-6)
                np.testing.assert_allclose(grad, 2 * x, rtol=1e-6)
            with pytest.raises(ValueError, match="nonzero"):
                jax.jit(dw)(jnp.ones(4, dtype=dtype))  # a new shape under `jit`: f at zeros


# -- torch transforms --------------------------------------------------------------------------------

TORCH_TRANSFORMS = {
    "grad": torch.func.grad,
    "jacfwd": torch.func.jacfwd,
    "jacrev": torch.func.jacrev,
    "hessian": torch.func.hessian,
    "jacrev(jacrev)": lambda f: torch.func.jacrev(torch.func.jacrev(f)),
    "jacfwd(jacfwd)": lambda f: torch.func.jacfwd(torch.func.jacfwd(f)),
    "vmap(grad)": lambda f: lambda x: torch.func.vmap(torch.func.grad(f))(torch.stack([x, 2 * x])),
}


@pytest.mark.parametrize("substitute", [FD, JAX], ids=repr)
def test_torch_transforms_match_torch_itself(substitute):
    dw = ad.DifferentiateWith(g, substitute)
    x = torch.linspace(0.1, 1.0, 4, dtype=torch.float64)
    for name, transform in TORCH_TRANSFORMS.items():
        order = 2 if any(s in name for s in ("hessian", "(jac")) else 1
        got = transform(lambda x: torch.sum(dw(x) ** 2))(x)
        want = transform(lambda x: torch.sum(g(x) ** 2))(x)
        assert got.dtype == torch.float64, name
        torch.testing.assert_close(got, want, rtol=tolerance(substitute, order), atol=1e-12, msg=name)
    t = torch.cos(x)
    torch.testing.assert_close(torch.func.jvp(dw, (x,), (t,)), torch.func.jvp(g, (x,), (t,)))
    torch.testing.assert_close(torch.func.vjp(dw, x)[1](t), torch.func.vjp(g, x)[1](t))


@pytest.mark.parametrize("substitute", [FD, JAX], ids=repr)
def test_torch_autograd_double_backward_and_dual_numbers(substitute):
    dw = ad.DifferentiateWith(g, substitute)
    x0 = torch.linspace(0.1, 1.0, 4, dtype=torch.float64)
    results = []
    for fn in (dw, g):
        x = x0.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.sum(fn(x) ** 2), x, create_graph=True)
        (hv,) = torch.autograd.grad(grad @ torch.cos(x0), x)  # double backward: H @ cos(x0)
        with torch.autograd.forward_ad.dual_level():
            dual = torch.autograd.forward_ad.make_dual(x0, torch.cos(x0))
            tangent = torch.autograd.forward_ad.unpack_dual(fn(dual)).tangent
        results.append((grad.detach(), hv, tangent))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=tolerance(substitute, 2), atol=1e-12)


def test_third_order_in_both_callers():
    # Reverse over forward over reverse: transposes a second-order node in a tangent that is not
    # its last (the generic `Transpose`).
    def third(f):
        return jax.jit(jax.jacrev(jax.jacfwd(jax.grad(f))))

    with jax.enable_x64(True):
        dw = ad.DifferentiateWith(g, TORCH)
        x = jnp.linspace(0.1, 1.0, 3)
        got, want = third(lambda x: jnp.sum(dw(x) ** 2))(x), third(lambda x: jnp.sum(g(x) ** 2))(x)
        np.testing.assert_allclose(got, want, rtol=1e-10)
    dw = ad.DifferentiateWith(g, JAX)
    x = torch.linspace(0.1, 1.0, 3, dtype=torch.float64)
    third_torch = lambda f: torch.func.jacrev(torch.func.hessian(f))  # noqa: E731
    got, want = third_torch(lambda x: torch.sum(dw(x) ** 2))(x), third_torch(lambda x: torch.sum(g(x) ** 2))(x)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_tensorflow_tapes_forward_accumulator_and_graphs():
    tf = pytest.importorskip("tensorflow")
    results = {}
    for name, fn in (("bridged", ad.DifferentiateWith(g, TORCH)), ("tensorflow", g)):
        x = tf.constant(np.linspace(0.1, 1.0, 4))
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(fn(x) ** 2)
            grad = inner.gradient(loss, x)
            directional = tf.reduce_sum(grad * tf.cos(x))
        with tf.autodiff.ForwardAccumulator(x, tf.cos(x)) as accumulator:
            y = fn(x)

        @tf.function(autograph=False)
        def graph_gradient(x, fn=fn):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(fn(x) ** 2)
            return tape.gradient(loss, x)

        results[name] = [grad, outer.gradient(directional, x), accumulator.jvp(y), graph_gradient(x)]
    for got, want in zip(results["bridged"], results["tensorflow"], strict=True):
        assert isinstance(got, tf.Tensor) and got.dtype == tf.float64
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10)


def test_tensorflow_variables_alone_and_in_trees_get_their_gradient():
    tf = pytest.importorskip("tensorflow")
    a, b = np.linspace(0.1, 1.0, 3), np.arange(1.0, 4.0)
    product = ad.DifferentiateWith(lambda p: p["a"] * p["b"], JAX)
    params = {"a": tf.Variable(a), "b": tf.constant(b)}
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(product(params))
    grads = tape.gradient(loss, params)
    np.testing.assert_allclose(grads["a"].numpy(), b, rtol=1e-12)  # d(a·b)/da, on the variable
    assert grads["b"] is None  # a constant the tape does not watch
    sine = ad.DifferentiateWith(lambda x: ad.namespace(x).sin(x), JAX)
    v = tf.Variable(a)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sine(v))
    np.testing.assert_allclose(tape.gradient(loss, v).numpy(), np.cos(a), rtol=1e-12)


@pytest.mark.parametrize("substitute", [JAX, TORCH], ids=repr)
def test_array_x_with_a_tree_output_in_jax_and_torch_programs(substitute):
    def f(x):
        return {"double": 2 * x, "energy": ad.namespace(x).sum(x**2)}

    dw = ad.DifferentiateWith(f, substitute)
    x = np.linspace(0.1, 1.0, 3)
    want = 2 + 2 * x  # the gradient of sum(double) + energy
    with jax.enable_x64(True):
        for program in (lambda v: dw(v), jax.jit(lambda v: dw(v))):
            y = program(jnp.asarray(x))
            np.testing.assert_allclose(np.asarray(y["double"]), 2 * x, rtol=1e-12)
            loss = lambda v, program=program: jnp.sum(program(v)["double"]) + program(v)["energy"]  # noqa: E731
            np.testing.assert_allclose(np.asarray(jax.grad(loss)(jnp.asarray(x))), want, rtol=1e-12)
    t = torch.tensor(x, requires_grad=True)
    y = dw(t)
    (torch.sum(y["double"]) + y["energy"]).backward()
    np.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(dw(x)["energy"], np.sum(x**2), rtol=1e-12)  # NumPy in, NumPy leaves out


# -- NumPy callers -----------------------------------------------------------------------------------


def test_numpy_call_gives_numpy_and_python_float_works():
    dw = ad.DifferentiateWith(g, TORCH)
    x = np.linspace(0.1, 1.0, 3)
    np.testing.assert_allclose(dw(x), g(x))
    assert type(dw(x)) is np.ndarray
    y = ad.DifferentiateWith(lambda x: x**2, FD)(3.0)
    assert type(y) is np.ndarray and y.dtype == np.float64 and y == 9.0


# -- contexts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("substitute", [FD, TORCH], ids=repr)
def test_jax_contexts_of_any_kind_reach_f(substitute):
    def f(x, c):
        return x * c["scale"] + c["shift"][0]

    dw = ad.DifferentiateWith(f, substitute)
    with jax.enable_x64(True):
        x = jnp.linspace(0.1, 1.0, 3)
        for scale in (np.float64(3.0), jnp.asarray(3.0), torch.tensor(3.0, dtype=torch.float64)):
            c = {"scale": scale, "shift": (np.ones(3), "label")}
            for form in (c, ad.Constant(c)):
                grad = jax.jit(jax.grad(lambda x, form=form: jnp.sum(dw(x, form) ** 2)))(x)
                np.testing.assert_allclose(grad, 2 * (3 * x + 1) * 3, rtol=1e-7)
        # vmap over a context array, which f sees one element at a time
        scales = jnp.asarray([1.0, 2.0])
        got = jax.vmap(lambda s: dw(x, {"scale": s, "shift": (jnp.zeros(3),)}))(scales)
        np.testing.assert_allclose(got, scales[:, None] * x[None], rtol=1e-12)


def test_torch_context_and_contexts_get_no_gradient():
    dw = ad.DifferentiateWith(g, FD)
    x = torch.linspace(0.1, 1.0, 3, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    y = dw(x, ad.Constant(scale))
    torch.testing.assert_close(y, g(x.detach(), 2.0))
    grad_x, grad_scale = torch.autograd.grad(y.sum(), (x, scale), allow_unused=True)
    torch.testing.assert_close(grad_x, torch.func.grad(lambda x: g(x, 2.0).sum())(x.detach()))
    assert grad_scale is None


def test_torch_records_the_bridge_only_where_torch_differentiates():
    # A call nothing differentiates skips the autograd.Function (and its cost): no graph node.
    dw = ad.DifferentiateWith(g, JAX)
    x = torch.linspace(0.1, 1.0, 3, dtype=torch.float64)
    leaf = x.clone().requires_grad_(True)
    plain, recorded = dw(x), dw(leaf)
    with torch.no_grad():
        unrecorded = dw(leaf)
    assert plain.grad_fn is None and unrecorded.grad_fn is None and recorded.grad_fn is not None
    for y in (plain, recorded.detach(), unrecorded):
        torch.testing.assert_close(y, g(x))


def test_torch_tape_keeps_jax_residuals():
    # On torch's tape alone, a JAX substitute's forward pass keeps its residuals (`jax.vjp`) for the
    # backward pass, once `f`'s result has been checked for these shapes; differentiated again
    # (`create_graph`), the backward pass is the Function's rules.
    dw = ad.DifferentiateWith(g, JAX)
    x0 = torch.linspace(0.1, 1.0, 4, dtype=torch.float64)
    two = torch.tensor(2.0, dtype=torch.float64)
    u = torch.cos(x0)
    for contexts, scale in (((), 1.0), ((ad.Constant(two),), 2.0)):
        x = x0.clone().requires_grad_(True)
        want = torch.autograd.grad(g(x, scale) @ u, x, create_graph=True)[0]
        want2 = torch.autograd.grad(want.sum(), x)[0]
        ys = [dw(x, *contexts) for _ in range(3)]  # the first checks `f`'s result
        assert [type(y.grad_fn).__name__ for y in ys[1:]] == ["_TapedBackward"] * 2
        for y in reversed(ys):  # each backward pass uses its own forward pass's residuals
            torch.testing.assert_close(y, g(x0, scale))
            torch.testing.assert_close(torch.autograd.grad(y @ u, x, retain_graph=True)[0], want.detach())
        grad = torch.autograd.grad(ys[-1] @ u, x, create_graph=True)[0]
        torch.testing.assert_close(grad, want.detach())
        torch.testing.assert_close(torch.autograd.grad(grad.sum(), x)[0], want2)


@pytest.mark.parametrize("substitute", [FD, JAX], ids=repr)
def test_torch_dual_numbers_along_x_alone_skip_the_function(substitute):
    # Dual numbers along `x` alone (torch's own, or those of one `torch.func.jvp`) that nothing else
    # records take the value and the tangent from one `value_and_pushforward` of the substitute.
    fwad = torch.autograd.forward_ad
    dw = ad.DifferentiateWith(g, substitute)
    x = torch.linspace(0.1, 1.0, 4, dtype=torch.float64)
    t, two = torch.cos(x), torch.tensor(2.0, dtype=torch.float64)
    x0, t0 = x.clone(), t.clone()
    cumsum = torch.cumsum
    for scale, contexts in ((1.0, ()), (2.0, (ad.Constant(two),))):
        want = (scale * g(x), scale * (torch.cos(x) * t * cumsum(x, 0) + torch.sin(x) * cumsum(t, 0)))
        for _ in range(2):  # the first call with these shapes checks `f`'s result, the next ones not
            with fwad.dual_level():
                dual = fwad.unpack_dual(dw(fwad.make_dual(x, t), *contexts))
            for y, ty in ((dual.primal, dual.tangent), torch.func.jvp(lambda x, c=contexts: dw(x, *c), (x,), (t,))):
                torch.testing.assert_close((y, ty), want, rtol=tolerance(substitute, 1), atol=1e-12)
                assert y.grad_fn is None and ty.grad_fn is None
                y += 1.0  # the results are the caller's own: no view of `x` or `t`
                ty += 1.0
            torch.testing.assert_close((x, t), (x0, t0), rtol=0, atol=0)
    # Left to the Function's rules: forward over reverse (the tangent requires grad), and the
    # tangent of a `vmap` inside the `jvp`.
    leaf = x.clone().requires_grad_(True)
    with fwad.dual_level():
        tangents = [fwad.unpack_dual(fn(fwad.make_dual(leaf, t))).tangent for fn in (dw, g)]
    got, want = (torch.autograd.grad(ty.sum(), leaf)[0] for ty in tangents)
    torch.testing.assert_close(got, want, rtol=tolerance(substitute, 2), atol=1e-12)
    xs, ts = torch.stack([x, 2 * x]), torch.stack([t, -t])
    got, want = (torch.func.jvp(torch.func.vmap(fn), (xs,), (ts,)) for fn in (dw, g))
    torch.testing.assert_close(got, want, rtol=tolerance(substitute, 1), atol=1e-12)


def test_tangent_on_a_context_is_an_error():
    dw = ad.DifferentiateWith(g, TORCH)
    with pytest.raises(ad.UnsupportedError, match=r"differentiates `f` in `x` only.*contexts.*stop_gradient"):
        jax.grad(lambda s: jnp.sum(dw(jnp.ones(3), s)))(2.0)


# -- preparation, threads, inputs ------------------------------------------------------------------


def test_preps_built_once_per_shape_and_reused():
    dw = ad.DifferentiateWith(g, TORCH)
    grad = jax.grad(lambda x: jnp.sum(dw(x) ** 2))
    for x in (jnp.ones(3), jnp.zeros(3), jnp.arange(3.0), jnp.ones(4)):
        np.testing.assert_allclose(grad(x), jax.grad(lambda x: jnp.sum(g(x) ** 2))(x), rtol=1e-6)
    (base,) = dw._bases.values()
    shapes = [key[0][0] for key in base.pull()._preps]
    assert sorted(shapes) == [(3,), (4,)]


def test_threads_share_one_wrapped_function():
    dw = ad.DifferentiateWith(g, TORCH)
    grad = jax.grad(lambda x: jnp.sum(dw(x) ** 2))
    points = [jnp.linspace(0.1, 1.0, 5) * (i + 1) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(grad, points))
    for x, got in zip(points, results, strict=True):
        np.testing.assert_allclose(got, jax.grad(lambda x: jnp.sum(g(x) ** 2))(x), rtol=1e-6)


def test_inputs_are_never_mutated():
    x_np = np.linspace(0.1, 1.0, 4)
    c_np = np.full(4, 2.0)
    x_t, c_t = torch.from_numpy(x_np.copy()), torch.from_numpy(c_np.copy())
    for substitute in (FD, JAX):
        dw = ad.DifferentiateWith(lambda x, c: g(x) * c, substitute)
        torch.func.hessian(lambda x, dw=dw: dw(x, c_t).sum())(x_t)
        dw(x_np, ad.Constant(c_np))
    np.testing.assert_array_equal(x_t.numpy(), x_np)
    np.testing.assert_array_equal(c_t.numpy(), c_np)
    np.testing.assert_array_equal(c_np, np.full(4, 2.0))


def test_numpy_only_use_imports_no_ad_library():
    code = (
        "import sys, numpy as np, anydiff as ad; "
        "print(ad.DifferentiateWith(np.sin, ad.AutoFiniteDiff())(np.zeros(2)).tolist(), "
        "[m for m in ('jax', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[0.0, 0.0] []"


# -- cross-library second order ---------------------------------------------------------------------


JAX_REVERSE = ad.AutoJAX(mode="reverse")


def quartic_torch(x, a):  # torch only: JAX cannot trace it
    return torch.sum(a * x**4)


def quartic_jax(x, a):  # JAX only
    return jnp.sum(a * x**4)


@pytest.mark.parametrize(
    ("pair", "f", "strategy"),
    [
        (ad.SecondOrder(JAX, TORCH), quartic_torch, "forward-over-reverse"),
        (ad.SecondOrder(JAX_REVERSE, ad.AutoTorch(mode="forward")), quartic_torch, "reverse-over-forward"),
        (ad.SecondOrder(JAX_REVERSE, ad.AutoTorch(mode="reverse")), quartic_torch, "reverse-over-reverse"),
        (ad.SecondOrder(TORCH, JAX), quartic_jax, "forward-over-reverse"),
    ],
    ids=lambda p: repr(p) if isinstance(p, ad.SecondOrder) else "",
)
def test_second_order_pairs_of_two_libraries(pair, f, strategy):
    a, x, v = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.5, -1.0])
    hessian = np.diag(12 * a * x**2)
    prep = ad.prepare_hvp(f, pair, x, v, ad.Constant(a))
    assert prep.info["strategy"] == strategy
    np.testing.assert_allclose(ad.hvp(f, pair, x, (v, 2 * v), ad.Constant(a), prep=prep)[1], 2 * hessian @ v)
    np.testing.assert_allclose(ad.hessian(f, pair, x, ad.Constant(a)), hessian)
    t = np.array(0.7)  # d²/dt² Σ aᵢ (t aᵢ)⁴ = 12 t² Σ aᵢ⁵
    second = ad.second_derivative(lambda t, a: f(t * a, a), pair, t, ad.Constant(a))
    np.testing.assert_allclose(second, 12 * t**2 * np.sum(a**5))


# -- errors ------------------------------------------------------------------------------------------


def test_substitute_that_cannot_run_f_explains_itself():
    # JAX cannot trace NumPy calls: the primal call already fails, from torch.
    message = r"DifferentiateWith\(numpy_only, AutoJAX\(\)\): `f` turned a JAX tracer"
    with pytest.raises(ad.FunctionNotDifferentiableError, match=message):
        ad.DifferentiateWith(numpy_only, JAX)(torch.ones(3))
    # torch runs NumPy on plain tensors but cannot differentiate it: reverse, forward, under jit.
    dw = ad.DifferentiateWith(numpy_only, TORCH)
    message = r"DifferentiateWith\(numpy_only, AutoTorch\(\)\) could not differentiate `f` with AutoTorch\(\)"
    for run in (
        lambda: jax.grad(lambda x: dw(x).sum())(jnp.ones(3)),
        lambda: jax.jit(jax.grad(lambda x: dw(x).sum()))(jnp.ones(3)),  # fails while tracing
        lambda: jax.jvp(dw, (jnp.ones(3),), (jnp.ones(3),)),
    ):
        with pytest.raises(ad.FunctionNotDifferentiableError, match=message):
            run()


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"DifferentiateWith: `f` must be callable; got int"):
        ad.DifferentiateWith(3, FD)
    with pytest.raises(TypeError, match=r"first-order backend .* got str.*`ad.DifferentiateWith\(f, backend\)`"):
        ad.DifferentiateWith(g, "torch")
    with pytest.raises(TypeError, match=r"first-order backend .* got SecondOrder"):
        ad.DifferentiateWith(g, ad.SecondOrder(JAX, TORCH))
    dw = ad.DifferentiateWith(g, FD)
    with pytest.raises(TypeError, match=r"`x` must be a NumPy, JAX or torch array .* got str"):
        dw("1.0")  # (a list is a tree: tests/test_trees.py)
    with pytest.raises(TypeError, match=r"`x` must have a real floating-point dtype .* got int64"):
        dw(np.arange(3))
    with pytest.raises(TypeError, match=r"`f` must return one array; it returned str"):
        ad.DifferentiateWith(lambda x: "x", FD)(torch.ones(2))  # (a tuple is a tree: see above)
    with pytest.raises(TypeError, match=r"`f` must return a real floating-point array; it returned dtype bool"):
        ad.DifferentiateWith(lambda x: x > 0, FD)(np.ones(2))
