"""The toolkit itself: `anydiff.testing` must catch wrong derivatives, mutated inputs, stale or
permissive preps, and report what a backend cannot do without failing."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.registry import _REGISTRY
from anydiff.extend import GRADIENT, JACOBIAN, Kernels, implementation
from anydiff.testing import (
    Scenario,
    benchmark_differentiation,
    default_scenarios,
    sparse_scenarios,
    test_differentiation,
    with_cache,
    with_closure,
    with_constant,
    with_dtype,
    with_kind,
    with_output_buffer,
)
from anydiff.testing.correctness import tolerances

# -- a deliberately wrong backend, registered for these tests only -------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoPerturbed(ad.AbstractBackend):
    """Central differences in NumPy, scaled by `scale`; `refuse` names operators it rejects,
    `stale=True` makes a gradient prep return the gradient of the prep point forever, and
    `mutate=True` writes into `x`."""

    scale: float = 1.0
    refuse: tuple[str, ...] = ()
    stale: bool = False
    mutate: bool = False
    extra: ClassVar[str] = "test"


class PerturbedImpl(ad.BackendImpl):
    mutation = True

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        h = 1e-6
        y = f(x, *contexts)
        ty = np.stack([(f(x + h * t, *contexts) - f(x - h * t, *contexts)) / (2 * h) for t in tangents])
        if self.backend.mutate:
            x[...] = x + 1.0
        return y, ty * self.backend.scale

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: Any) -> Kernels:
        if "jacobian" in self.backend.refuse:
            raise ad.UnsupportedError(f"{self.backend!r} has no jacobian; use `ad.AutoFiniteDiff()`.")
        return JACOBIAN.generic(self, f, x, tangents, contexts, spec)

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: Any) -> Kernels:
        kernels = GRADIENT.generic(self, f, x, tangents, contexts, spec)
        if not self.backend.stale:
            return kernels
        frozen = kernels.with_value(x, *contexts)
        return Kernels(lambda x, *c: frozen[1], lambda x, *c: frozen)

    native = {JACOBIAN: native_jacobian, GRADIENT: native_gradient}


@pytest.fixture
def perturbed() -> Iterator[type[AutoPerturbed]]:
    ad.register_backend(AutoPerturbed, PerturbedImpl)
    yield AutoPerturbed
    del _REGISTRY[AutoPerturbed]  # keep `available_backends()` clean for the other tests
    implementation.cache_clear()


def _pick(*labels: str) -> list[Scenario]:
    by_label = {s.label: s for s in default_scenarios()}
    return [by_label[label] for label in labels]


FIRST_ORDER = (
    "pushforward-vector-to-vector-batched",
    "pullback-scalar-to-matrix",
    "derivative-vector",
    "gradient-matrix",
    "jacobian-matrix-to-vector",
    "jacobian-vector-to-matrix-inplace-constant",
)


def test_correct_test_backend_passes(perturbed: type[AutoPerturbed]) -> None:
    outcomes = test_differentiation(perturbed(), _pick(*FIRST_ORDER))
    assert [o.status for o in outcomes] == ["works"] * len(FIRST_ORDER)


def test_wrong_derivatives_are_caught_with_a_readable_table(perturbed: type[AutoPerturbed]) -> None:
    with pytest.raises(AssertionError) as info:
        test_differentiation(perturbed(scale=1.001), _pick(*FIRST_ORDER))
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == (
        "test_differentiation: 6 of 6 (backend, scenario) pairs went wrong (rtol=1e-05, atol=1e-08)"
    )
    assert lines[1].split() == ["backend", "scenario", "status", "stage", "problem"]
    first_row = r"\n  AutoPerturbed\(scale=1.001\)  pushforward-vector-to-vector-batched +wrong +unprepared"
    assert re.search(first_row, message)
    assert "result[2]: relative error 1.0e-03 > tolerance 1e-05" in message
    # every stage of every pair is listed, and the value itself is not blamed
    for stage in ("unprepared", "prepared", "reused"):
        assert f"  {stage}  " in message
    assert "value:" not in message


def test_unsupported_is_reported_not_failed_unless_asked(perturbed: type[AutoPerturbed]) -> None:
    backend = perturbed(refuse=("jacobian",))
    scenarios = _pick("jacobian-matrix-to-vector", "gradient-vector")
    outcomes = test_differentiation(backend, scenarios)
    assert [o.status for o in outcomes] == ["unsupported", "works"]
    assert outcomes[0].message == (
        "UnsupportedError: AutoPerturbed(refuse=('jacobian',)) has no jacobian; use `ad.AutoFiniteDiff()`."
    )
    with pytest.raises(AssertionError, match=r"1 of 2 .*\n.*\n.*jacobian-matrix-to-vector\s+unsupported"):
        test_differentiation(backend, scenarios, allow_unsupported=False)


def test_stale_prep_is_caught_at_the_second_point(perturbed: type[AutoPerturbed]) -> None:
    scenario = _pick("gradient-vector")[0]
    (outcome,) = test_differentiation(perturbed(), [scenario])
    assert outcome.status == "works"
    with pytest.raises(AssertionError) as info:
        test_differentiation(perturbed(stale=True), [scenario])
    header, *rows = str(info.value).splitlines()[1:]
    stage = header.index("stage")
    assert [row[stage:].split()[0] for row in rows] == ["reused"]  # unprepared and prepared are right
    # without a closed-form second point, a derived one is compared with an unprepared call
    with pytest.raises(AssertionError, match="reused +result: relative error"):
        test_differentiation(perturbed(stale=True), [scenario.replace(second_point=None)])


def test_mutated_inputs_are_detected(perturbed: type[AutoPerturbed]) -> None:
    x = np.linspace(0.1, 1.0, 4)
    original = x.copy()
    scenario = Scenario("gradient", lambda x: (x**2).sum(), x, value=np.sum(x**2), result=2 * x, name="square")
    with pytest.raises(AssertionError, match=r"inputs +`x` was mutated"):
        test_differentiation(perturbed(mutate=True), [scenario])
    assert np.array_equal(scenario.x, original + 2.0)  # the unprepared and the prepared call wrote into it


def test_mutated_constant_is_detected() -> None:
    def f(x: Any, a: Any) -> Any:
        y = (a * x**2).sum()
        a[...] = a + 1.0
        return y

    x, a = np.array([1.0, 2.0]), np.array([3.0, 3.0])
    scenario = Scenario("gradient", f, x, contexts=(ad.Constant(a),), name="mutating")
    with pytest.raises(AssertionError, match=r"inputs +`constants` was mutated"):
        test_differentiation(ad.AutoFiniteDiff(), [scenario])


def test_a_prep_that_accepts_another_function_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ad.Prep, "check", lambda self, *args: None)  # a core that forgets to check
    with pytest.raises(AssertionError, match="mismatch +a prep used with another function did not raise"):
        test_differentiation(ad.AutoFiniteDiff(), _pick("gradient-vector"))


def test_function_evaluations_are_counted() -> None:
    (outcome,) = test_differentiation(ad.AutoFiniteDiff(), _pick("gradient-vector"))
    assert outcome.calls == 11  # central differences: f(x) and 2 per input
    (outcome,) = test_differentiation(ad.AutoFiniteDiff(method="forward"), _pick("gradient-vector"))
    assert outcome.calls == 6


def test_excluded_operators_and_labels() -> None:
    scenarios = _pick("gradient-vector", "gradient-matrix", "jacobian-vector-to-vector")
    outcomes = test_differentiation(ad.AutoFiniteDiff(), scenarios, excluded=("jacobian", "gradient-matrix"))
    assert [o.scenario for o in outcomes] == ["gradient-vector"]


# -- tolerances ----------------------------------------------------------------------------------


def test_tolerances_widen_for_float32_and_finite_differences() -> None:
    fd, exact = ad.AutoFiniteDiff(), ad.AutoJAX()
    assert tolerances(exact, 1, "float64", 1e-5, 1e-8) == (1e-5, 1e-8)
    assert tolerances(exact, 2, "float32", 1e-5, 1e-8)[0] == pytest.approx(1000 * np.finfo(np.float32).eps)
    assert tolerances(fd, 0, "float64", 1e-5, 1e-8)[0] == 1e-5  # the value itself is exact
    assert tolerances(fd, 1, "float32", 1e-5, 1e-8)[0] == 1e-2
    assert tolerances(fd, 2, "float64", 1e-5, 1e-8)[0] == pytest.approx(1e-3)  # central over central
    assert tolerances(ad.AutoFiniteDiff(method="complex"), 1, "float64", 1e-5, 1e-8)[0] == 1e-5
    assert tolerances(ad.SecondOrder(fd, exact), 2, "float64", 1e-8, 0.0)[0] == 1e-6  # one level
    assert tolerances(ad.SecondOrder(exact, fd), 1, "float64", 1e-8, 0.0)[0] == 1e-6  # the inner one
    assert tolerances(exact, 2, "float64", 1e-14, 0.0)[0] == pytest.approx(2.2e-13, rel=0.01)  # 1000 eps


# -- scenarios and modifiers ---------------------------------------------------------------------


def test_default_scenarios_cover_every_operator_and_kind() -> None:
    scenarios = default_scenarios()
    assert {s.operator for s in scenarios} == {
        "pushforward", "pullback", "derivative", "gradient", "jacobian", "second_derivative", "hvp", "hessian",
    }
    labels = {s.label for s in scenarios}
    for x in ("scalar", "vector", "matrix"):
        for y in ("scalar", "vector", "matrix"):
            assert f"pushforward-{x}-to-{y}" in labels and f"pullback-{x}-to-{y}" in labels
    assert len(labels) == len(scenarios)  # labels are unique pytest ids
    assert all(s.second_point is not None and s.second_point.second_point is None for s in scenarios)
    assert any(isinstance(s.tangents, tuple) for s in scenarios)
    assert {type(c) for s in scenarios for c in s.contexts} == {ad.Constant, ad.Cache}
    assert any(s.y is not None for s in scenarios)
    assert {np.asarray(s.x).dtype.name for s in scenarios} == {"float32", "float64"}


def test_modifiers_keep_results_right() -> None:
    base = _pick("jacobian-vector-to-vector")[0]
    variants = [
        with_constant(base, np.asarray(3.0)),
        with_closure(base, 0.5),
        with_cache(base),
        with_output_buffer(base),
        with_cache(with_constant(with_output_buffer(base), 2.0)),
        with_dtype(with_constant(base, np.asarray(2.0)), "float32"),
    ]
    assert [v.label for v in variants] == [
        "jacobian-vector-to-vector-constant",
        "jacobian-vector-to-vector-closure",
        "jacobian-vector-to-vector-cache",
        "jacobian-vector-to-vector-inplace",
        "jacobian-vector-to-vector-inplace-constant-cache",
        "jacobian-vector-to-vector-constant-float32",
    ]
    constant = variants[0]
    np.testing.assert_allclose(constant.result, 3 * base.result)
    np.testing.assert_allclose(constant.second_point.result, -2.25 * base.second_point.result)
    assert constant.second_point.contexts[0].value == -2.25
    assert variants[5].contexts[0].value.dtype == np.float32
    test_differentiation(ad.AutoFiniteDiff(), variants)


def test_with_kind_converts_inputs_only() -> None:
    torch = pytest.importorskip("torch")
    scenario = with_kind(_pick("pullback-scalar-to-matrix-batched-constant")[0], "torch")
    assert isinstance(scenario.x, torch.Tensor) and all(isinstance(t, torch.Tensor) for t in scenario.tangents)
    assert isinstance(scenario.contexts[0].value, np.ndarray)  # anydiff converts contexts itself
    assert isinstance(scenario.result[0], np.ndarray)
    test_differentiation(ad.AutoFiniteDiff(), [scenario])


def test_sparse_scenarios_are_right_on_finite_differences() -> None:
    scenarios = sparse_scenarios(size=9)
    assert [s.label for s in scenarios] == [
        f"{op}-{name}" for op in ("jacobian", "hessian") for name in ("banded", "block", "arrowhead", "stencil")
    ]
    assert np.shape(scenarios[3].x) == (3, 3)
    test_differentiation(ad.AutoFiniteDiff(), scenarios)


def test_scenario_errors() -> None:
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"^Scenario: `operator` must be one of \['derivative', .*\]; got 'grad'\.$"):
        Scenario("grad", sum, x)
    with pytest.raises(ValueError, match=r"^Scenario: hvp needs `tangents`; got tangents=None\.$"):
        Scenario("hvp", sum, x)
    with pytest.raises(ValueError, match=r"^Scenario: gradient does not take two-argument functions"):
        Scenario("gradient", sum, x, y=np.zeros(()))
    with pytest.raises(TypeError, match=r"^Scenario: `contexts` must be a tuple of `ad.Constant"):
        Scenario("gradient", sum, x, contexts=(2.0,))
    with pytest.raises(ValueError, match=r"^with_output_buffer: gradient does not take two-argument"):
        with_output_buffer(_pick("gradient-vector")[0])
    with pytest.raises(ValueError, match=r"^with_dtype: `dtype` must be float32 or float64; got int64\.$"):
        with_dtype(_pick("gradient-vector")[0], "int64")
    with pytest.raises(ValueError, match=r"^with_kind: `kind` must be one of \[.*'numpy'.*\]; got 'cupy'\.$"):
        with_kind(_pick("gradient-vector")[0], "cupy")


# -- benchmark -----------------------------------------------------------------------------------


def test_benchmark_records_table_csv_json(perturbed: type[AutoPerturbed], tmp_path: Any) -> None:
    scenarios = _pick("gradient-vector", "jacobian-matrix-to-vector")
    records = benchmark_differentiation(
        [ad.AutoFiniteDiff(), perturbed(refuse=("jacobian",))], scenarios, budget=0.005
    )
    assert [(r.backend, r.scenario, r.prepared, r.status) for r in records] == [
        ("AutoFiniteDiff()", "gradient-vector", True, "ok"),
        ("AutoFiniteDiff()", "gradient-vector", False, "ok"),
        ("AutoFiniteDiff()", "jacobian-matrix-to-vector", True, "ok"),
        ("AutoFiniteDiff()", "jacobian-matrix-to-vector", False, "ok"),
        ("AutoPerturbed(refuse=('jacobian',))", "gradient-vector", True, "ok"),
        ("AutoPerturbed(refuse=('jacobian',))", "gradient-vector", False, "ok"),
        ("AutoPerturbed(refuse=('jacobian',))", "jacobian-matrix-to-vector", True, "unsupported"),
        ("AutoPerturbed(refuse=('jacobian',))", "jacobian-matrix-to-vector", False, "unsupported"),
    ]
    gradient = records[0]
    assert gradient.calls == 11 and gradient.prep_calls is not None and gradient.prep_time > 0
    assert 0 < gradient.time_low <= gradient.time <= gradient.time_high and gradient.samples >= 1
    assert records[1].prep_time is None  # unprepared calls prepare every time

    table = records.table()
    assert table.splitlines()[0].split()[:4] == ["backend", "scenario", "calls", "with"]
    assert "unsupported: UnsupportedError: AutoPerturbed(refuse=('jacobian',)) has no jacobian" in table

    records.to_csv(tmp_path / "r.csv")
    header = (tmp_path / "r.csv").read_text().splitlines()[0]
    assert header == (
        "backend,scenario,operator,prepared,time,time_low,time_high,samples,calls,prep_time,prep_calls,status,message"
    )
    loaded = json.loads(records.to_json(tmp_path / "r.json"))
    assert loaded == json.loads((tmp_path / "r.json").read_text())
    assert loaded[0]["calls"] == 11 and loaded[6]["status"] == "unsupported"


def test_measure_takes_three_samples_unless_calls_are_slow() -> None:
    import time

    from anydiff.testing.benchmark import measure

    fast = measure(lambda: None, budget=0.01)
    assert fast.samples >= 3 and 0 <= fast.low <= fast.median <= fast.high
    slow = measure(lambda: time.sleep(0.05), budget=0.01)
    assert slow.samples == 1 and slow.median >= 0.05


def test_sparse_results_are_compared_densified() -> None:
    """What `AutoSparse` returns: a `(y.size, x.size)` scipy matrix for NumPy input."""
    import scipy.sparse

    from anydiff.testing.correctness import _Checker

    x = np.ones((2, 3))
    expected = np.arange(24.0).reshape(4, 2, 3)  # a dense Jacobian, y.shape + x.shape
    checker = _Checker(x, sparse=True, tolerance=lambda name: (1e-5, 1e-8))
    checker.one("prepared", "result", scipy.sparse.csr_array(expected.reshape(4, 6)), expected)
    assert checker.problems == [] and checker.error == 0.0
    checker.one("prepared", "result", scipy.sparse.csr_array(expected.reshape(4, 6) * 1.1), expected)
    assert [p.message for p in checker.problems] == ["result: relative error 1.0e-01 > tolerance 1e-05"]
    dense = _Checker(x, sparse=False, tolerance=lambda name: (1e-5, 1e-8))
    dense.one("prepared", "result", scipy.sparse.csr_array(expected.reshape(4, 6)), expected)
    assert dense.problems[0].message == "result: a sparse matrix (scipy.sparse) where a dense array was expected"
