"""The main suite: every scenario of `anydiff.testing` on every installed backend.

Derivatives are checked against closed forms (the scenarios), against each other through the
dot-product identity ⟨u, J v⟩ = ⟨Jᵀ u, v⟩, and against finite differences; never against the
backend itself. A backend whose library is not installed is skipped with its `pip install`.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import implementation
from anydiff.extend import array_kind
from anydiff.testing import (
    Scenario,
    default_scenarios,
    sparse_scenarios,
    test_differentiation,
    tree_scenarios,
    with_kind,
)
from anydiff.testing.correctness import tolerances

# Every plain backend of the API that this version of anydiff defines.
_API_BACKENDS = (
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoTorch",
    "AutoTensorFlow",
    "AutoAutograd",
    "AutoMLX",
    "AutoTinygrad",
    "AutoSymPy",
    "AutoCasADi",
    "AutoPyTensor",
)
_INSTALLED = {type(b) for b in ad.available_backends()}
BACKENDS = [getattr(ad, name)() for name in _API_BACKENDS if hasattr(ad, name)]


def _skip_reason(backend: ad.AbstractBackend) -> str | None:
    if type(backend) not in _INSTALLED:
        return f"{backend!r} is not installed: pip install 'anydiff[{type(backend).extra}]'"
    return None


def _kinds() -> list[str]:
    return [kind for kind in ("jax", "torch") if importlib.util.find_spec(kind) is not None]


def _scenarios() -> list[Scenario]:
    """Default, sparse and tree scenarios, plus a few with JAX and torch inputs."""
    defaults, trees = default_scenarios(), tree_scenarios()
    by_label = {s.label: s for s in defaults + trees}
    foreign = [
        with_kind(by_label[label], kind)
        for kind in _kinds()
        # tangents in a tuple, a NumPy constant beside a foreign `x`, second order; a tree with a
        # static leaf (an int, not converted), a tree-valued output
        for label in (
            "pushforward-vector-to-vector-batched",
            "second_derivative-vector-constant",
            "hessian-dict-static",
            "pullback-dict-to-dict",
        )
    ]
    return defaults + sparse_scenarios() + trees + foreign


SCENARIOS = _scenarios()
TREE_LABELS = {s.label for s in tree_scenarios()}
# Backends that compile each scenario's function (seconds each) run a sample of the tree
# scenarios by default, all of them with ANYDIFF_FULL_MATRIX=1.
FULL = os.environ.get("ANYDIFF_FULL_MATRIX") == "1"
COMPILING = ("AutoTensorFlow()", "AutoTinygrad()", "AutoPyTensor()")
TREE_SAMPLE = ("gradient-dict-static", "hessian-args", "jacobian-dict-to-dict")

# Pairs that fail today because of a limitation of the backend, each with its reason; strict,
# so that the test starts failing (and the entry must go) once the backend is fixed.
# (Empty since torch's Jacobians of few rows come from the tape, which takes an `f` writing into a
# captured tensor, a `Cache`, that `torch.func` refuses.)
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def _needs_mutation(scenario: Scenario) -> bool:
    return scenario.y is not None or any(isinstance(c, ad.Cache) for c in scenario.contexts)


def _pairs() -> list:
    params = []
    for backend in BACKENDS:
        reason = _skip_reason(backend)
        for scenario in SCENARIOS:
            sampled = scenario.label in TREE_SAMPLE or scenario.label not in TREE_LABELS
            if repr(backend) in COMPILING and not FULL and not sampled:
                continue
            marks = [pytest.mark.skip(reason=reason)] if reason else []
            known = KNOWN_FAILURES.get((repr(backend), scenario.label))
            if known is not None:
                marks.append(pytest.mark.xfail(reason=known, raises=AssertionError, strict=True))
            params.append(pytest.param(backend, scenario, marks=marks, id=f"{backend!r}-{scenario.label}"))
    return params


def _sparse_pairs() -> list:
    """`ad.AutoSparse` over each installed core backend, on the sparse scenarios (once exported)."""
    if not hasattr(ad, "AutoSparse"):
        return []
    core = (ad.AutoFiniteDiff, ad.AutoJAX, ad.AutoTorch)
    sparse = [ad.AutoSparse(b) for b in BACKENDS if isinstance(b, core) and not _skip_reason(b)]
    return [pytest.param(b, s, id=f"{b!r}-{s.label}") for b in sparse for s in sparse_scenarios()]


@pytest.mark.parametrize(("backend", "scenario"), _pairs() + _sparse_pairs())
def test_scenario(backend: ad.AbstractBackend, scenario: Scenario) -> None:
    if not ad.check_available(backend):
        pytest.skip(f"{backend!r} is installed but cannot run here")
    # Only functions that write into arrays may be unsupported, and only on immutable arrays.
    expected_unsupported = _needs_mutation(scenario) and not implementation(backend).mutation
    (outcome,) = test_differentiation(backend, [scenario], allow_unsupported=expected_unsupported)
    if outcome.status == "unsupported":
        pytest.skip(outcome.message)


# One scenario per operator, for the variants of a backend that compile `f` on request.
_COMPILED_LABELS = (
    "pushforward-vector-to-vector-batched",
    "pullback-scalar-to-matrix-batched",
    "derivative-scalar",
    "gradient-matrix",
    "jacobian-vector-to-vector",
    "second_derivative-vector",
    "hvp-vector-batched",
    "hessian-matrix",
)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compiled_f() -> None:
    # `AutoTorch(compile=True)` runs `f` through `torch.compile`, through which dual numbers
    # lost their tangents (wrong pushforwards and derivatives, no error) before it used
    # `torch.func.jvp` for them.
    backend = ad.AutoTorch(compile=True)
    if reason := _skip_reason(backend):
        pytest.skip(reason)
    scenarios = [s for s in default_scenarios() if s.label in _COMPILED_LABELS]
    assert len(scenarios) == len(_COMPILED_LABELS)
    outcomes = test_differentiation(backend, scenarios, allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}


# -- derivatives against each other: dot products and finite differences -----------------------


def same_shape(x):
    """`sin(x) · Σx² + x³`: a dense Jacobian, output shaped like `x`."""
    xp = ad.namespace(x)
    return xp.sin(x) * xp.sum(x**2) + x**3


def outer(x):
    """`x cos(x)ᵀ`: vector to matrix."""
    xp = ad.namespace(x)
    return xp.reshape(x, (-1, 1)) * xp.reshape(xp.cos(x), (1, -1))


def scalar(x):
    """`Σ tanh(x) · Σ x²`: a scalar with a dense Hessian."""
    xp = ad.namespace(x)
    return xp.sum(xp.tanh(x)) * xp.sum(x**2)


_RNG = np.random.default_rng(7)
_DOT_CASES = [
    pytest.param(same_shape, _RNG.uniform(-1, 1, (5,)), id="vector-to-vector"),
    pytest.param(same_shape, _RNG.uniform(-1, 1, (2, 3)), id="matrix-to-matrix"),
    pytest.param(outer, _RNG.uniform(-1, 1, (4,)), id="vector-to-matrix"),
    pytest.param(scalar, _RNG.uniform(-1, 1, (3, 2)), id="matrix-to-scalar"),
]
_AD_BACKENDS = [
    pytest.param(b, id=repr(b), marks=[pytest.mark.skip(reason=r)] if (r := _skip_reason(b)) else [])
    for b in BACKENDS
]


@pytest.mark.parametrize("backend", _AD_BACKENDS)
@pytest.mark.parametrize(("f", "x"), _DOT_CASES)
def test_dot_product_identity(backend: ad.AbstractBackend, f, x: np.ndarray) -> None:
    """⟨u, J v⟩ = ⟨Jᵀ u, v⟩ for two tangents v and two cotangents u (one batched call each)."""
    rng = np.random.default_rng(0)
    y = f(x)
    vs = tuple(rng.standard_normal(x.shape) for _ in range(2))
    us = tuple(np.asarray(rng.standard_normal(np.shape(y))) for _ in range(2))
    jvs = ad.pushforward(f, backend, x, vs)
    jtus = ad.pullback(f, backend, x, us)
    rtol, atol = tolerances(backend, 1, "float64", 1e-10, 1e-12)
    for u, jtu in zip(us, jtus, strict=True):
        for v, jv in zip(vs, jvs, strict=True):
            left, right = float(np.sum(u * jv)), float(np.sum(jtu * v))
            assert abs(left - right) <= atol + rtol * max(abs(left), abs(right)), (left, right)


@pytest.mark.parametrize("backend", [p for p in _AD_BACKENDS if not isinstance(p.values[0], ad.AutoFiniteDiff)])
@pytest.mark.parametrize(("f", "x"), _DOT_CASES)
def test_agrees_with_finite_differences(backend: ad.AbstractBackend, f, x: np.ndarray) -> None:
    """The Jacobian (gradient and Hessian for scalar outputs) matches central differences."""
    reference = ad.AutoFiniteDiff()
    operators = [ad.jacobian] if np.shape(f(x)) else [ad.gradient, ad.hessian]
    for order, operator in enumerate(operators, start=1):
        expected = operator(f, reference, x)
        got = operator(f, backend, x)
        rtol, _ = tolerances(reference, order, "float64", 1e-5, 0.0)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)))


# -- trees: the checker compares results leaf by leaf --------------------------------------------


def _dict_energy(x):
    xp = ad.namespace(x["w"])
    return xp.sum(x["w"] ** 2) * x["n"]


def _dict_scenario(result) -> Scenario:
    x = {"w": np.array([1.0, 2.0]), "n": 3}
    return Scenario("gradient", _dict_energy, x, value=np.array(15.0), result=result, name="dict")


def test_a_tree_result_is_checked_leaf_by_leaf_with_its_path() -> None:
    backend = ad.AutoFiniteDiff()
    (outcome,) = test_differentiation(backend, [_dict_scenario({"w": np.array([6.0, 12.0]), "n": None})])
    assert outcome.status == "works"
    with pytest.raises(AssertionError, match=r"result\['w'\]: relative error"):
        test_differentiation(backend, [_dict_scenario({"w": np.array([6.0, 13.0]), "n": None})])
    with pytest.raises(AssertionError, match=r"result\['n'\]: expected an array; got NoneType"):
        test_differentiation(backend, [_dict_scenario({"w": np.array([6.0, 12.0]), "n": np.array(0.0)})])
    with pytest.raises(AssertionError, match=r"result\['w'\]: expected None \(a static leaf\); got numpy"):
        test_differentiation(backend, [_dict_scenario({"w": None, "n": None})])
    with pytest.raises(AssertionError, match=r"result: expected a dict with keys \['n', 'v', 'w'\]"):
        test_differentiation(backend, [_dict_scenario({"w": np.array([6.0, 12.0]), "v": None, "n": None})])


def test_tree_scenarios_keep_static_leaves_through_kinds_and_dtypes() -> None:
    from anydiff.testing import with_dtype

    scenario = next(s for s in tree_scenarios() if s.label == "hvp-dict-static")
    assert scenario.tangents["n"] is None and scenario.result["n"] is None
    single = with_dtype(scenario, "float32")
    assert single.x["n"] == 3 and single.x["w"].dtype == np.float32 and single.result["b"].dtype == np.float32
    for kind in _kinds():
        converted = with_kind(scenario, kind)
        assert converted.x["n"] == 3 and array_kind(converted.x["w"]).name == kind
        assert converted.tangents["n"] is None and isinstance(converted.result["w"], np.ndarray)


@pytest.mark.parametrize("args", [False, True], ids=["tuple", "Args"])
def test_a_batch_as_long_as_a_tuple_x_is_a_batch(args: bool) -> None:
    a, b = np.array([1.0, 2.0]), np.array([0.5, -1.0, 3.0])
    tangent = (np.ones(2), np.zeros(3))

    def f(*x):
        first, second = x if args else x[0]
        return ad.namespace(first).sum(first**2) + ad.namespace(second).sum(second**3)

    x = ad.Args(a, b) if args else (a, b)
    # f's derivative along (1, 1, 0, 0, 0) is 2 (a₀ + a₁) = 6, once per tangent of the batch
    results = ad.pushforward(f, ad.AutoFiniteDiff(), x, (tangent, tangent))
    np.testing.assert_allclose(np.asarray(results, dtype=float), [6.0, 6.0], rtol=1e-6)
