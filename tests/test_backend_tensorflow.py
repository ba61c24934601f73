"""AutoTensorFlow: every operator against closed forms and finite differences, the array-API
namespace over TensorFlow, array kinds, errors, and the scenario suite.

TensorFlow takes seconds to import and each graph a fraction of a second to trace, so the tests
share module-level preps, and run the configurations without graphs (`function=False`) where
the routes are the same code.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation, with_kind
from anydiff.testing.scenarios import Mixing
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed: pip install 'anydiff[tensorflow]'")

GRAPH = ad.AutoTensorFlow()
EAGER = ad.AutoTensorFlow(function=False)
FORWARD = ad.AutoTensorFlow(mode="forward", function=False)
REVERSE = ad.AutoTensorFlow(mode="reverse", function=False)
BACKENDS = [GRAPH, EAGER, FORWARD, REVERSE]
FD = ad.AutoFiniteDiff()

X = np.array([0.3, -0.7, 1.1, 0.4, -0.2])
X2 = np.array([-0.5, 0.8, 0.1, -1.3, 0.6])  # a second point, to reuse preps
T = np.array([0.5, -1.0, 2.0, 0.25, 1.5])
U = np.array([1.0, 0.5, -0.5, 2.0, -1.0])


def curve_derivative(t):
    return np.array([np.cos(t), 3 * t**2])


def curve_second_derivative(t):
    return np.array([-np.sin(t), 6 * t])


def close(got, want, rtol=1e-12, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


# -- every operator, every configuration ---------------------------------------------------------

# (operator, f, x, tangents, {output name: closed form at x})
CASES = {
    "gradient": (energy, X, None, lambda x: energy_gradient(x)),
    "jacobian": (stretch, X, None, lambda x: stretch_jacobian(x)),
    "pushforward": (stretch, X, T, lambda x: stretch_jacobian(x) @ T),
    "pullback": (stretch, X, U, lambda x: U @ stretch_jacobian(x)),
    "derivative": (curve, 0.7, None, lambda t: curve_derivative(t)),
    "second_derivative": (curve, 0.7, None, lambda t: curve_second_derivative(t)),
    "hvp": (energy, X, T, lambda x: energy_hessian(x) @ T),
    "hessian": (energy, X, None, lambda x: energy_hessian(x)),
}


@pytest.fixture(scope="module")
def preps():
    """One prep per (operator, backend), built on first use and shared by the tests."""
    built = {}

    def get(operator, backend):
        if (operator, backend) not in built:
            f, x, tangents, _ = CASES[operator]
            args = (x,) if tangents is None else (x, tangents)
            built[operator, backend] = getattr(ad, f"prepare_{operator}")(f, backend, *args)
        return built[operator, backend]

    return get


# Forward mode alone computes HVPs and Hessians by the generic forward-over-forward fallback
# (tested with the second-order operators), at 25 eager passes of 0.1 s: left out for time.
PAIRS = [(op, b) for op in CASES for b in BACKENDS if not (b is FORWARD and op in ("hvp", "hessian"))]


@pytest.mark.parametrize(("operator", "backend"), PAIRS, ids=[f"{op}-{b!r}" for op, b in PAIRS])
def test_operator_matches_closed_form_at_two_points(preps, operator, backend):
    f, x, tangents, expected = CASES[operator]
    prep = preps(operator, backend)
    for point in (x, X2 if isinstance(x, np.ndarray) else -1.3):
        args = (point,) if tangents is None else (point, tangents)
        result = getattr(ad, operator)(f, backend, *args, prep=prep)
        assert isinstance(result, np.ndarray) and result.dtype == np.float64
        close(result, expected(np.asarray(point)))


@pytest.mark.parametrize("operator", list(CASES))
def test_value_forms_share_the_prep(preps, operator):
    f, x, tangents, expected = CASES[operator]
    forms = {
        "gradient": "value_and_gradient",
        "jacobian": "value_and_jacobian",
        "pushforward": "value_and_pushforward",
        "pullback": "value_and_pullback",
        "derivative": "value_and_derivative",
        "second_derivative": "value_derivative_and_second_derivative",
        "hvp": "gradient_and_hvp",
        "hessian": "value_gradient_and_hessian",
    }
    args = (x,) if tangents is None else (x, tangents)
    *firsts, result = getattr(ad, forms[operator])(f, GRAPH, *args, prep=preps(operator, GRAPH))
    close(result, expected(np.asarray(x)))
    value = f(np.asarray(x)) if operator != "hvp" else energy_gradient(X)
    close(firsts[0], value)


def test_agrees_with_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))

    def f(x):
        xp = ad.namespace(x)
        return xp.tanh(xp.matmul(x, xp.matrix_transpose(x))) * xp.mean(x**2, axis=1)

    close(ad.jacobian(f, GRAPH, x), ad.jacobian(f, FD, x), rtol=1e-7)


def test_batched_tangents_vectorised_and_looped():
    # More than three tangents are vectorised with `tf.vectorized_map` inside the graph.
    jac = stretch_jacobian(X)
    for k in (2, 5):
        tangents = tuple(T * (i + 1) for i in range(k))
        for result, t in zip(ad.pushforward(stretch, GRAPH, X, tangents), tangents, strict=True):
            close(result, jac @ t)
        for result, u in zip(ad.pullback(stretch, GRAPH, X, tangents), tangents, strict=True):
            close(result, u @ jac)
        hessian = energy_hessian(X)
        for result, t in zip(ad.hvp(energy, GRAPH, X, tangents), tangents, strict=True):
            close(result, hessian @ t)


def test_prepared_calls_enter_the_graph_by_its_flat_entry():
    # After the first call (which traces), a native kernel's graph is entered by the concrete
    # function's flat list of tensors, unchecked by TensorFlow: the prep's check guards it.
    scale = tf.constant(2 * X)  # captured by the graphs

    def scaled(x):
        return stretch(x) * scale

    jac = np.diag(2 * X) @ stretch_jacobian(X)
    for x, t, u in ((X, T, U), (tf.constant(X), tf.constant(T), tf.constant(U))):
        preps = {op: getattr(ad, f"prepare_{op}")(scaled, GRAPH, x, t) for op in ("pushforward", "pullback")}
        gradient_prep = ad.prepare_gradient(energy, GRAPH, x)
        for _ in range(2):
            close(ad.pushforward(scaled, GRAPH, x, t, prep=preps["pushforward"]), jac @ T)
            close(ad.value_and_pullback(scaled, GRAPH, x, u, prep=preps["pullback"])[1], U @ jac)
            close(ad.gradient(energy, GRAPH, x, prep=gradient_prep), energy_gradient(X))
        with pytest.raises(ad.PreparationMismatchError, match="shape"):
            ad.gradient(energy, GRAPH, x[:3], prep=gradient_prep)
        with pytest.raises(ValueError, match=r"pushforward: .* must have the shape"):
            ad.pushforward(scaled, GRAPH, x, t[:3], prep=preps["pushforward"])
    kernel = implementation(GRAPH).native_gradient(energy, tf.constant(X), None, (), None).plain
    assert kernel(tf.constant(X)) is not None and kernel.flat is not None


def test_prep_info_names_the_route(preps):
    assert preps("gradient", GRAPH).info == {"mode": "reverse", "route": "GradientTape in tf.function"}
    assert preps("jacobian", GRAPH).info["mode"] == "forward"  # square: columns
    assert preps("gradient", FORWARD).info["mode"] == "forward"
    assert preps("hessian", GRAPH).info["strategy"] == "reverse-over-reverse"
    assert preps("hvp", GRAPH).info["strategy"] == "forward-over-reverse"


# -- array kinds, dtypes, contexts, inputs -------------------------------------------------------


def test_tensorflow_in_tensorflow_out_and_float32_kept():
    for dtype in (tf.float64, tf.float32):
        x = tf.constant(X, dtype=dtype)
        y, g = ad.value_and_gradient(energy, EAGER, x)
        assert isinstance(g, tf.Tensor) and g.dtype == dtype and y.dtype == dtype
        close(g, energy_gradient(X), rtol=1e-12 if dtype == tf.float64 else 1e-5)


def test_torch_tensors_come_back_as_torch_tensors():
    torch = pytest.importorskip("torch")
    g = ad.gradient(energy, EAGER, torch.tensor(X))
    assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
    close(g.numpy(), energy_gradient(X))
    strided = torch.tensor(np.repeat(X, 2))[::2]  # TensorFlow's DLPack import refuses strides
    close(ad.gradient(energy, EAGER, strided).numpy(), energy_gradient(X))


def test_other_backends_accept_tensorflow_tensors():
    g = ad.gradient(energy, FD, tf.constant(X))
    assert isinstance(g, tf.Tensor)
    close(g, energy_gradient(X), rtol=1e-7)


def test_contexts_are_converted_and_may_change_between_calls():
    def f(x, a, scale):
        xp = ad.namespace(x)
        return scale * xp.sum(a * xp.sin(x))

    a = np.linspace(1.0, 2.0, 5)
    prep = ad.prepare_gradient(f, GRAPH, X, ad.Constant(a), ad.Constant(2.0))
    for a_now, scale in ((a, 2.0), (a[::-1].copy(), 2.0), (a, -3.0)):  # a Python number retraces
        g = ad.gradient(f, GRAPH, X, ad.Constant(a_now), ad.Constant(scale), prep=prep)
        close(g, scale * a_now * np.cos(X))


def test_inputs_are_not_mutated():
    x, t = X.copy(), T.copy()
    ad.pushforward(stretch, EAGER, x, t)
    ad.hvp(energy, EAGER, x, (t, t))
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(t, T)


def test_function_independent_of_x_has_zero_derivatives():
    def constant(x):
        return ad.namespace(x).asarray(2.0, dtype=x.dtype)

    close(ad.gradient(constant, EAGER, X), np.zeros(5))
    close(ad.pushforward(lambda x: x * 0.0 + 1.0, EAGER, X, T), np.zeros(5))


# -- the array-API namespace --------------------------------------------------------------------

A = np.array([[2.0, 0.5, 0.1], [0.5, 3.0, 0.2], [0.1, 0.2, 1.5]])  # symmetric positive definite
V = np.array([0.3, -0.6, 0.9])
W = np.array([-0.4, 0.2, 0.7])

# (label, function of (xp, a, v, w)): each is compared with the same call on NumPy's namespace.
NAMESPACE_CASES = [
    *[
        (name, lambda xp, a, v, w, name=name: getattr(xp, name)(v * 0.9))
        for name in (
            "abs",
            "acos",
            "asin",
            "asinh",
            "atan",
            "atanh",
            "ceil",
            "cos",
            "cosh",
            "exp",
            "expm1",
            "floor",
            "negative",
            "positive",
            "round",
            "sign",
            "sin",
            "sinh",
            "square",
            "tan",
            "tanh",
            "trunc",
            "signbit",
            "isfinite",
            "isnan",
            "isinf",
            "real",
            "conj",
        )
    ],
    *[
        (name, lambda xp, a, v, w, name=name: getattr(xp, name)(xp.abs(v) + 1.1))
        for name in (
            "acosh",
            "log",
            "log1p",
            "log2",
            "log10",
            "sqrt",
            "reciprocal",
        )
    ],
    *[
        (name, lambda xp, a, v, w, name=name: getattr(xp, name)(v, w))
        for name in (
            "add",
            "subtract",
            "multiply",
            "divide",
            "atan2",
            "hypot",
            "logaddexp",
            "maximum",
            "minimum",
            "copysign",
            "remainder",
            "floor_divide",
            "equal",
            "not_equal",
            "less",
            "less_equal",
            "greater",
            "greater_equal",
        )
    ],
    ("pow", lambda xp, a, v, w: xp.pow(xp.abs(v), w)),
    ("scalar first", lambda xp, a, v, w: xp.add(2.0, xp.multiply(3, v))),
    ("promotion", lambda xp, a, v, w: xp.add(v, xp.asarray(w, dtype=xp.float32))),
    ("where", lambda xp, a, v, w: xp.where(v > 0, v, 0.5)),
    ("clip", lambda xp, a, v, w: xp.clip(v, min=-0.5, max=0.5)),
    ("sum axis keepdims", lambda xp, a, v, w: xp.sum(a, axis=1, keepdims=True)),
    ("mean", lambda xp, a, v, w: xp.mean(a, axis=(0, 1))),
    ("prod", lambda xp, a, v, w: xp.prod(a, axis=0)),
    ("max min", lambda xp, a, v, w: xp.max(a, axis=0) - xp.min(a)),
    ("std var", lambda xp, a, v, w: xp.std(a, axis=0, correction=1) + xp.var(a)),
    ("cumulative_sum", lambda xp, a, v, w: xp.cumulative_sum(a, axis=1, include_initial=True)),
    ("cumulative_prod", lambda xp, a, v, w: xp.cumulative_prod(v)),
    ("argmax argmin", lambda xp, a, v, w: xp.stack([xp.argmax(a), xp.argmin(a, axis=0)[0]])),
    ("sort descending", lambda xp, a, v, w: xp.sort(a, axis=0, descending=True)),
    ("argsort", lambda xp, a, v, w: xp.argsort(v)),
    ("concat", lambda xp, a, v, w: xp.concat([v, w, xp.reshape(a, (-1,))])),
    ("concat axis None", lambda xp, a, v, w: xp.concat([a, a], axis=None)),
    ("stack axis", lambda xp, a, v, w: xp.stack([v, w], axis=1)),
    ("reshape permute", lambda xp, a, v, w: xp.permute_dims(xp.reshape(a, (1, 3, 3)), (2, 0, 1))),
    ("moveaxis", lambda xp, a, v, w: xp.moveaxis(xp.reshape(a, (3, 3, 1)), 0, -1)),
    ("flip roll", lambda xp, a, v, w: xp.roll(xp.flip(a, axis=0), 2) + xp.roll(a, -1, axis=1)),
    ("squeeze expand_dims", lambda xp, a, v, w: xp.squeeze(xp.expand_dims(v, axis=0), axis=0)),
    ("tile repeat", lambda xp, a, v, w: xp.concat([xp.reshape(xp.tile(v, (2, 1)), (-1,)), xp.repeat(v, 2)])),
    ("take", lambda xp, a, v, w: xp.take(a, xp.asarray([2, 0]), axis=1)),
    ("take_along_axis", lambda xp, a, v, w: xp.take_along_axis(a, xp.argsort(a, axis=1), axis=1)),
    ("indexing", lambda xp, a, v, w: a[1:, ::-1][..., None][:, 0, 0] + v[-1]),
    ("matmul", lambda xp, a, v, w: xp.matmul(a, v) + xp.matmul(v, a) + xp.matmul(v, w) + xp.matmul(a, a)[0]),
    ("vecdot tensordot", lambda xp, a, v, w: xp.vecdot(a, v) + xp.tensordot(a, a, axes=2)),
    ("matrix_transpose", lambda xp, a, v, w: xp.matrix_transpose(a + xp.reshape(v, (3, 1)))),
    (
        "vector_norm",
        lambda xp, a, v, w: xp.stack([xp.linalg.vector_norm(v, ord=o) for o in (2, 1, math.inf, -math.inf, 0, 3)]),
    ),
    (
        "matrix_norm",
        lambda xp, a, v, w: xp.stack(
            [xp.linalg.matrix_norm(a, ord=o) for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)]
        ),
    ),
    ("det inv solve", lambda xp, a, v, w: xp.linalg.det(a) + xp.linalg.solve(a, v) + xp.linalg.inv(a)[0]),
    ("cholesky", lambda xp, a, v, w: xp.linalg.cholesky(a, upper=True)),
    ("eigh", lambda xp, a, v, w: xp.linalg.eigh(a).eigenvalues + xp.linalg.eigvalsh(a)),
    ("svdvals slogdet", lambda xp, a, v, w: xp.linalg.svdvals(a) + xp.linalg.slogdet(a).logabsdet),
    ("trace diagonal", lambda xp, a, v, w: xp.linalg.trace(a, offset=1) + xp.linalg.diagonal(a, offset=-1)),
    ("outer cross", lambda xp, a, v, w: xp.linalg.outer(v, w) + xp.linalg.cross(v, w)),
    ("matrix_power", lambda xp, a, v, w: xp.linalg.matrix_power(a, 3) + xp.linalg.matrix_power(a, -2)),
    ("matrix_rank", lambda xp, a, v, w: xp.linalg.matrix_rank(a)),
    (
        "creation",
        lambda xp, a, v, w: xp.concat(
            [
                xp.arange(3, dtype=xp.float64),
                xp.linspace(0.0, 1.0, 4, endpoint=False),
                xp.full((2,), 1.5),
                xp.zeros(2),
                xp.ones_like(v),
                xp.asarray([1.0, 2.0]),
                xp.reshape(xp.eye(2, 3, k=1), (-1,)),
            ]
        ),
    ),
    ("tril triu", lambda xp, a, v, w: xp.tril(a, k=-1) + xp.triu(a, k=1)),
    ("meshgrid broadcast", lambda xp, a, v, w: xp.meshgrid(v, w)[0] + xp.broadcast_arrays(v, a)[0]),
    ("nonzero", lambda xp, a, v, w: xp.nonzero(xp.tril(a))[1]),
    ("unique", lambda xp, a, v, w: xp.sort(xp.unique_values(xp.round(a)))),
    ("searchsorted", lambda xp, a, v, w: xp.searchsorted(xp.sort(v), w)),
    ("diff", lambda xp, a, v, w: xp.diff(v, prepend=xp.asarray([0.0]), n=2)),
    ("unstack", lambda xp, a, v, w: xp.unstack(a, axis=1)[2]),
    (
        "count_nonzero all any",
        lambda xp, a, v, w: xp.stack(
            [xp.count_nonzero(xp.tril(a)), xp.astype(xp.all(a > 0), xp.int64), xp.astype(xp.any(v > 1), xp.int64)]
        ),
    ),
]


@pytest.mark.parametrize(("label", "case"), NAMESPACE_CASES, ids=[c[0] for c in NAMESPACE_CASES])
def test_namespace_matches_numpy(label, case):
    import array_api_compat.numpy as npx

    xp = ad.namespace(tf.constant(A))
    got = case(xp, *(tf.constant(a) for a in (A, V, W)))
    want = case(npx, A, V, W)
    assert isinstance(got, tf.Tensor)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_namespace_defaults_follow_numpy():
    xp = ad.namespace(tf.constant(X))
    assert xp.asarray(1.0).dtype == xp.float64 and xp.zeros(2).dtype == xp.float64
    assert xp.arange(3).dtype == xp.int64
    assert xp.isdtype(xp.float64, "real floating") and not xp.isdtype(xp.int64, ("bool", "real floating"))
    assert xp.result_type(xp.float32, xp.float64) == xp.float64
    assert xp.finfo(xp.float32).eps == np.finfo(np.float32).eps


@pytest.mark.parametrize("backend", [GRAPH, EAGER], ids=repr)
def test_namespace_works_under_tapes_and_in_graphs(backend):
    # Every differentiable case above, differentiated through: gradients of `sum(case)` in `v`.
    cases = [
        "atanh",
        "logaddexp",
        "hypot",
        "std var",
        "cumulative_prod",
        "vector_norm",
        "det inv solve",
        "cholesky",
        "matrix_power",
        "take_along_axis",
        "flip roll",
        "clip",
        "where",
        "diff",
    ]
    found = dict(NAMESPACE_CASES)

    def f(v, label):
        xp = ad.namespace(v)
        a = xp.asarray(A) + xp.linalg.outer(v, v) * 0.01
        return xp.sum(found[label](xp, a, v, xp.asarray(W)))

    for label in cases if backend is EAGER else cases[:3]:
        g = ad.gradient(f, backend, V, ad.Constant(label))
        close(g, ad.gradient(f, FD, V, ad.Constant(label)), rtol=1e-6, atol=1e-8)


def test_namespace_registered_for_graph_tensors():
    seen = []

    @tf.function(autograph=False)
    def traced(x):
        seen.append(ad.namespace(x))
        return x

    traced(tf.constant(X))
    assert seen == [ad.namespace(tf.constant(X))]


# -- errors ------------------------------------------------------------------------------------


def test_numpy_inside_f_is_explained():
    def uses_numpy(x):
        return ad.namespace(x).sum(np.sin(x))

    def uses_float(x):
        return float(x[0]) * ad.namespace(x).sum(x)

    for f in (uses_numpy, uses_float):
        with pytest.raises(ad.FunctionNotDifferentiableError, match=r"gradient: `f` took a value out of a TensorFlow"):
            ad.gradient(f, GRAPH, X)


def test_returning_numpy_is_explained():
    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"`f` must return a TensorFlow tensor; it returned"):
        ad.gradient(lambda x: np.sum(np.sin(x)), GRAPH, X)


def test_python_branch_on_a_traced_value_is_explained():
    def branches(x):
        xp = ad.namespace(x)
        return xp.sum(x) if xp.sum(x) > 0 else -xp.sum(x)

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"replace Python branches .* by `xp.where`"):
        ad.gradient(branches, GRAPH, X)
    close(ad.gradient(branches, EAGER, X), np.ones(5))  # eagerly, the branch is taken on a value


def test_matrix_vector_operator_is_explained():
    def mixes(x):
        xp = ad.namespace(x)
        return xp.ones((2, 5), dtype=x.dtype) @ x

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"TensorFlow's `@` multiplies matrices only.*matmul"):
        ad.jacobian(mixes, EAGER, X)


def test_dtype_mix_is_explained():
    def mixes(x):
        return tf.reduce_sum(x * tf.constant(2.0))  # a float32 constant

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"combined tensors of different dtypes.*never promote"):
        ad.gradient(mixes, EAGER, X)


def test_two_argument_functions_are_unsupported():
    def writes(y, x):
        y[...] = x

    with pytest.raises(ad.UnsupportedError, match=r"AutoTensorFlow\(\) cannot differentiate a two-argument"):
        ad.jacobian(writes, GRAPH, X, y=np.zeros(5))


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # `import tensorflow` now fails
    monkeypatch.delitem(sys.modules, "anydiff._libraries.tensorflow.impl", raising=False)
    implementation.cache_clear()
    try:
        with pytest.raises(ad.BackendNotInstalledError, match=r"pip install 'anydiff\[tensorflow\]'"):
            ad.gradient(energy, GRAPH, X)
        assert not ad.check_available(GRAPH)
    finally:
        implementation.cache_clear()


# -- DifferentiateWith -------------------------------------------------------------------------


def test_other_libraries_differentiate_through_tensorflow():
    # TensorFlow as the substitute (TensorFlow programs as callers: tests/test_bridge.py).
    torch = pytest.importorskip("torch")
    step = ad.DifferentiateWith(stretch, GRAPH)
    loss = lambda p: step(p).sum()  # noqa: E731
    p0 = torch.tensor(X)
    close(step(p0).numpy(), stretch(X))
    close(torch.func.grad(loss)(p0).numpy(), np.ones(5) @ stretch_jacobian(X))


# -- the scenario suite ---------------------------------------------------------------------------


def _mixes(f):
    """Whether a scenario's function is a `Mixing` problem (possibly wrapped by a modifier)."""
    while not isinstance(f, Mixing):
        if not hasattr(f, "f"):
            return False
        f = f.f
    return True


def test_scenarios():
    # `Mixing` computes `A @ v` with a vector `v`, which TensorFlow's `@` refuses (see
    # `test_matrix_vector_operator_is_explained`); every other default scenario must pass.
    scenarios = [s for s in default_scenarios() if not _mixes(s.f)]
    outcomes = test_differentiation([GRAPH], scenarios)
    assert {o.status for o in outcomes} == {"works", "unsupported"}
    unsupported = {o.scenario for o in outcomes if o.status == "unsupported"}
    assert all("cache" in label or "inplace" in label for label in unsupported)


def test_scenarios_on_tensorflow_tensors():
    # TensorFlow in, TensorFlow out; eagerly, as the conversions do not depend on graphs.
    scenarios = [
        with_kind(s, "tensorflow")
        for s in default_scenarios()
        # writing into a `Cache` or a buffer `y` needs mutable arrays
        if not _mixes(s.f) and s.y is None and not any(isinstance(c, ad.Cache) for c in s.contexts)
    ]
    test_differentiation([EAGER], scenarios, allow_unsupported=False)


def test_sparse_scenarios():
    # Eagerly: the compressed products are the same code with graphs.
    outcomes = test_differentiation([ad.AutoSparse(EAGER)], sparse_scenarios(), allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}
