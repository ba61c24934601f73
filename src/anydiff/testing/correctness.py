"""`test_differentiation`: run scenarios on backends and report everything that went wrong.

For each compatible (backend, scenario) pair, `check` calls the operator's value form unprepared,
its plain form prepared, and the same prep at the scenario's second point; it compares each
result with the expected one (values, array kind, shape, dtype), checks that the prep refuses
another function with `PreparationMismatchError` and that no input was mutated, and counts the
evaluations of `f`. `test_differentiation` gathers the outcomes and raises one `AssertionError`
whose message is a table of every problem.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

import anydiff as ad

from ..extend import AbstractBackend, Cache, Constant, array_kind, dtype_name, implementation
from .scenarios import Scenario, default_scenarios

__all__ = [
    "Outcome",
    "Problem",
    "check",
    "finite_difference_schemes",
    "format_table",
    "incompatibility",
    "test_differentiation",
    "tolerances",
    "to_numpy",
]

# Relative error of one finite-difference level with the default step, by method and dtype:
# central differences balance an O(h²) truncation against an O(eps/h) rounding error (about
# eps^(2/3)), forward differences an O(h) one (about eps^(1/2)); the figures add a safety margin.
_FD_RTOL = {
    ("central", "float64"): 1e-6,
    ("central", "float32"): 1e-2,
    ("forward", "float64"): 1e-5,
    ("forward", "float32"): 5e-2,
}


class Problem(NamedTuple):
    """One thing that went wrong: the stage (`"unprepared"`, `"prepared"`, `"reused"`,
    `"mismatch"`, `"inputs"`), whether the result was `"wrong"` (a value off) or the call
    `"failed"` (an exception, a wrong kind, shape or dtype, a mutated input), and what."""

    stage: str
    category: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """What `check` found for one (backend, scenario) pair.

    Attributes:
        backend: `repr` of the backend.
        scenario: the scenario's label (`"gradient-vector"`).
        operator: the operator's name.
        status: `"works"`, `"wrong"` (a result is off by more than the tolerance), `"failed"`
            (an exception or a wrong kind, shape or dtype, a mutated input, a prep that accepted
            another function) or `"unsupported"` (the backend cannot do it; `message` says why).
        error: the largest relative error seen (max-norm of the difference over max-norm of the
            expected result), `None` when nothing was compared.
        problems: every problem, in order.
        message: why the pair is unsupported, or the first problem.
        calls: evaluations of `f` in one prepared call (JAX counts traces, so 0 once compiled).
        prep_calls: evaluations of `f` while preparing.
    """

    backend: str
    scenario: str
    operator: str
    status: str
    error: float | None = None
    problems: tuple[Problem, ...] = ()
    message: str = ""
    calls: int | None = None
    prep_calls: int | None = None


# -- small shared helpers ------------------------------------------------------------------------


def first_line(exc: BaseException) -> str:
    """`"TypeError: first line of the message"`."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], indent: str = "  ") -> str:
    """A plain-text table with left-aligned columns (numbers right-aligned)."""
    rows = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for cell, width in zip(cells, widths, strict=True):
            numeric = cell[:1].isdigit() or cell[:1] in "-+" and cell[1:2].isdigit()
            parts.append(cell.rjust(width) if numeric else cell.ljust(width))
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _is_sparse(value: Any) -> bool:
    import scipy.sparse

    if scipy.sparse.issparse(value):
        return True
    kind = array_kind(value)
    if kind is not None and kind.name == "torch":
        import torch

        return value.layout is not torch.strided
    return kind is None and hasattr(value, "todense")  # jax.experimental.sparse arrays


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy copy of any result: NumPy, JAX, torch arrays, floats, sparse matrices (densified)."""
    if _is_sparse(value):
        # scipy: `toarray`; torch: `to_dense`; jax.experimental.sparse: `todense`
        for densify in ("toarray", "to_dense", "todense"):
            if hasattr(value, densify):
                value = getattr(value, densify)()
                break
    kind = array_kind(value)
    array = kind.to_numpy(value) if kind is not None else np.asarray(value)
    return np.array(array, copy=True)


def _kind_name(value: Any) -> str:
    if type(value) is float:  # not `isinstance`: NumPy's float64 scalars are floats too
        return "float"
    if _is_sparse(value):
        import scipy.sparse

        return "scipy.sparse" if scipy.sparse.issparse(value) else f"sparse {type(value).__name__}"
    kind = array_kind(value)
    return kind.name if kind is not None else type(value).__name__


def _value_dtype(value: Any) -> str:
    if type(value) is float:
        return "float64"
    dtype = getattr(value, "dtype", None)
    return type(value).__name__ if dtype is None else dtype_name(dtype)  # "float64" for every kind


def _leaves(backend: AbstractBackend) -> list[AbstractBackend]:
    """The plain backends inside a combinator (the backend itself otherwise)."""
    inner = [getattr(backend, f.name) for f in dataclasses.fields(backend)]  # type: ignore[arg-type]
    parts = [v for v in inner if isinstance(v, AbstractBackend)]
    return [leaf for p in parts for leaf in _leaves(p)] if parts else [backend]


def finite_difference_schemes(backend: AbstractBackend, order: int) -> list[str]:
    """The finite-difference schemes stacked in computing a derivative of this order."""
    if order == 0:
        return []
    if isinstance(backend, ad.AutoFiniteDiff):
        return [] if backend.method == "complex" else [backend.method] * order
    if isinstance(backend, ad.SecondOrder):
        inner = finite_difference_schemes(backend.inner, 1)
        return inner if order == 1 else finite_difference_schemes(backend.outer, 1) + inner
    if isinstance(backend, ad.AutoSparse):
        return finite_difference_schemes(backend.dense, order)
    if isinstance(backend, ad.MixedMode):
        both = (finite_difference_schemes(backend.forward, order), finite_difference_schemes(backend.reverse, order))
        return max(both, key=len)
    return []


def tolerances(backend: AbstractBackend, order: int, dtype: str, rtol: float, atol: float) -> tuple[float, float]:
    """`(rtol, atol)` for a derivative of `order` (0: the value) computed by `backend` in `dtype`.

    Exact backends get `max(rtol, 1000 eps)`; one finite-difference level gets its scheme's error
    (central: 1e-6 in float64, 1e-2 in float32; forward: 1e-5, 5e-2); two stacked levels
    (finite differences over finite differences) the fourth root of the product. `atol` is at
    least `rtol / 1000`, for results that should be exactly zero.
    """
    base = max(rtol, 1000 * float(np.finfo(dtype).eps))
    levels = [_FD_RTOL[(m, dtype)] for m in finite_difference_schemes(backend, order)]
    if len(levels) == 1:
        base = max(base, levels[0])
    elif levels:
        base = max(base, math.prod(levels) ** (1 / (2 * len(levels))))
    return base, max(atol, base / 1000)


def _mutation(backend: AbstractBackend) -> bool:
    """Whether every library inside `backend` can run an `f` that writes into arrays."""
    for leaf in _leaves(backend):
        try:
            if not implementation(leaf).mutation:
                return False
        except Exception:  # not installed or not registered: let the call itself report it
            continue
    return True


def incompatibility(backend: AbstractBackend, scenario: Scenario) -> str | None:
    """Why `backend` cannot run `scenario` at all, or `None` when it should be tried."""
    op, order = scenario.operator, scenario.forms.order
    if not hasattr(ad, op):
        return f"this version of anydiff has no `ad.{op}`"
    if isinstance(backend, ad.AutoSparse) and op not in ("jacobian", "hessian"):
        return f"{backend!r} computes sparse jacobians and hessians only"
    if isinstance(backend, ad.MixedMode) and op != "jacobian":
        return f"{backend!r} computes sparse jacobians only"
    if isinstance(backend, ad.SecondOrder) and order == 1:
        return f"{backend!r} is for second-order operators"
    if any(isinstance(c, Cache) for c in scenario.contexts) and not _mutation(backend):
        return f"{backend!r} cannot run an `f` that writes into its `Cache`: its arrays are immutable"
    return None


# -- calling operators on scenarios --------------------------------------------------------------


class Counter:
    """`f` counting its evaluations; each instance is a distinct function for preps."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.f(*args)

    def take(self) -> int:
        """The count since the last `take`."""
        calls, self.calls = self.calls, 0
        return calls


def arguments(scenario: Scenario, f: Callable[..., Any], backend: AbstractBackend) -> tuple[tuple, dict]:
    """`(args, kwargs)` of `ad.<operator>(f, backend, x, [tangents,] *contexts, [y=])`."""
    args: tuple[Any, ...] = (f, backend, scenario.x)
    if scenario.forms.tangents is not None:
        args += (scenario.tangents,)
    return args + scenario.contexts, ({} if scenario.y is None else {"y": scenario.y})


def call(name: str, scenario: Scenario, f: Callable[..., Any], backend: AbstractBackend, prep: Any = None) -> Any:
    """`ad.<name>(...)` on the scenario's arguments (`name` an operator, value form or prepare)."""
    args, kwargs = arguments(scenario, f, backend)
    if prep is not None:
        kwargs["prep"] = prep
    return getattr(ad, name)(*args, **kwargs)


def wait(result: Any) -> Any:
    """Block until an asynchronous result (JAX) is computed; returns it."""
    for leaf in result if isinstance(result, tuple) else (result,):
        if isinstance(leaf, tuple):
            wait(leaf)
        elif hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return result


# -- comparing -----------------------------------------------------------------------------------


@dataclass
class _Checker:
    """Compares results of one pair and collects problems."""

    x: Any
    sparse: bool
    tolerance: Callable[[str], tuple[float, float]]  # output name -> (rtol, atol)
    problems: list[Problem] = dataclasses.field(default_factory=list)
    error: float | None = None

    def fail(self, stage: str, message: str, category: str = "failed") -> None:
        self.problems.append(Problem(stage, category, message))

    def outputs(self, stage: str, got: dict[str, Any], expected: Scenario) -> None:
        for name, value in got.items():
            want = getattr(expected, name)
            if want is not None:
                self.one(stage, name, value, want)

    def one(self, stage: str, label: str, got: Any, want: Any) -> None:
        """Compare one result; trees (tuples of batched results or of `ad.Args` arguments, lists,
        dicts, `None` at static leaves) leaf by leaf, each leaf labelled with its path."""
        if isinstance(want, (tuple, list)):
            if type(got) is not type(want) or len(got) != len(want):
                what = f"{type(want).__name__} of {len(want)}"
                self.fail(stage, f"{label}: expected a {what} (tangents, `ad.Args` or a tree); got {_kind_name(got)}")
                return
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                self.one(stage, f"{label}[{i}]", g, w)
            return
        if isinstance(want, dict):
            if not isinstance(got, dict) or got.keys() != want.keys():
                keys = sorted(got) if isinstance(got, dict) else _kind_name(got)
                self.fail(stage, f"{label}: expected a dict with keys {sorted(want)}; got {keys}")
                return
            for key, w in want.items():
                self.one(stage, f"{label}[{key!r}]", got[key], w)
            return
        if want is None or got is None:
            if got is not want:
                wanted = "None (a static leaf)" if want is None else "an array"
                self.fail(stage, f"{label}: expected {wanted}; got {_kind_name(got)}")
            return
        want = np.asarray(want)
        expected_kind = "numpy" if type(self.x) is float else _kind_name(self.x)
        kind = _kind_name(got)
        if _is_sparse(got):
            if not self.sparse:
                self.fail(stage, f"{label}: a sparse matrix ({kind}) where a dense array was expected")
            elif expected_kind == "numpy" and kind != "scipy.sparse":
                self.fail(stage, f"{label}: NumPy input should give a scipy.sparse matrix; got {kind}")
            x_size = math.prod(np.shape(self.x))
            want = want.reshape(-1, x_size)
        elif kind != expected_kind:
            self.fail(stage, f"{label}: array kind {kind}, expected {expected_kind} (the kind of `x`)")
        if _value_dtype(got) != want.dtype.name:
            self.fail(stage, f"{label}: dtype {_value_dtype(got)}, expected {want.dtype.name}")
        array = to_numpy(got)
        if array.shape != want.shape:
            self.fail(stage, f"{label}: shape {array.shape}, expected {want.shape}")
            return
        rtol, atol = self.tolerance(label.split("[")[0])
        difference = float(np.max(np.abs(array - want), initial=0.0))
        scale = float(np.max(np.abs(want), initial=0.0))
        relative = difference / scale if scale > 0 else difference
        if not np.all(np.isfinite(array)):
            relative = math.inf
        self.error = relative if self.error is None else max(self.error, relative)
        if not relative <= (atol + rtol * scale) / (scale or 1.0):
            self.fail(stage, f"{label}: relative error {relative:.1e} > tolerance {rtol:.0e}", "wrong")


def _snapshot(value: Any) -> Any:
    if isinstance(value, (tuple, list, ad.Args)):
        return tuple(_snapshot(v) for v in value)
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, (float, int, str)) or value is None:
        return value
    return to_numpy(value) if array_kind(value) is not None else value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))
    return a is b or a == b


def _inputs(s: Scenario) -> dict[str, Any]:
    """What must not change: `x`, tangents, the output buffer and the `Constant` contexts."""
    constants = tuple(c.value for c in s.contexts if isinstance(c, Constant))
    return {"x": s.x, "tangents": s.tangents, "y": s.y, "constants": constants}


def _flat_point(x: Any) -> Any:
    """`x`, or for a tree its differentiable leaves raveled (of the tree's kind and promoted
    dtype): what results' kind, dtype and flat size follow."""
    if type(x) is float or array_kind(x) is not None:
        return x
    try:
        return ad.ravel(x)[0]
    except Exception:  # not a valid tree: the calls report it
        return x


def _shifted(s: Scenario) -> Scenario:
    """A second point derived from `x` (`1.1 x + 0.05`, leaf by leaf), for scenarios that carry none."""
    if type(s.x) is float or array_kind(s.x) is not None:
        x = s.x * 1.1 + 0.05
    else:
        v, unravel = ad.ravel(s.x)
        x = unravel(v * 1.1 + 0.05)
    return s.replace(x=x, value=None, first=None, result=None, second_point=None)


def check(backend: AbstractBackend, scenario: Scenario, *, rtol: float = 1e-5, atol: float = 1e-8) -> Outcome:
    """`check(backend, scenario) -> Outcome`: run one pair through every stage; never raises.

    Example:
        >>> import anydiff as ad
        >>> from anydiff.testing import default_scenarios
        >>> from anydiff.testing.correctness import check
        >>> check(ad.AutoFiniteDiff(), default_scenarios()[0]).status
        'works'
    """
    forms = scenario.forms
    outcome = Outcome(repr(backend), scenario.label, forms.name, "unsupported")
    reason = incompatibility(backend, scenario)
    if reason is not None:
        return dataclasses.replace(outcome, message=reason)

    point = _flat_point(scenario.x)
    dtype = _value_dtype(point)
    order_of = {"value": 0, "first": forms.order - 1, "result": forms.order}
    checker = _Checker(
        point,
        sparse=isinstance(backend, ad.AutoSparse),
        tolerance=lambda name: tolerances(backend, order_of[name], dtype, rtol, atol),
    )
    second = scenario.second_point
    before = [_snapshot(_inputs(s)) for s in (scenario, second) if s is not None]
    f = Counter(scenario.f)
    calls = prep_calls = None

    def named(result: Any) -> dict[str, Any]:
        return dict(zip(forms.outputs, result, strict=True))

    # The value form runs the same kernel with or without a prep, so each form is compiled
    # once (JAX): the value form unprepared, the plain form prepared, then reused.
    stage = "unprepared"
    try:
        checker.outputs(stage, named(call(forms.value_form, scenario, f, backend)), scenario)
        stage = "prepared"
        f.take()
        prep = call(f"prepare_{forms.name}", scenario, f, backend)
        prep_calls = f.take()
        checker.outputs(stage, {"result": call(forms.name, scenario, f, backend, prep)}, scenario)
        calls = f.take()
        stage = "reused"
        if second is None:
            # No closed form at a derived point: an unprepared call there is the reference, with
            # a function object of its own so that anydiff cannot answer it from a cached prep.
            second = _shifted(scenario)
            second = second.replace(**named(call(forms.value_form, second, Counter(scenario.f), backend)))
        checker.outputs(stage, {"result": call(forms.name, second, f, backend, prep)}, second)
        stage = "mismatch"
        try:
            call(forms.name, scenario, Counter(scenario.f), backend, prep)
        except ad.PreparationMismatchError:
            pass
        else:
            checker.fail(stage, "a prep used with another function did not raise PreparationMismatchError")
    except ad.UnsupportedError as exc:
        return dataclasses.replace(outcome, message=first_line(exc))
    except Exception as exc:
        checker.fail(stage, first_line(exc))

    after = [_snapshot(_inputs(s)) for s in (scenario, scenario.second_point) if s is not None]
    for old, new in zip(before, after, strict=True):
        for name in old:
            if not _same(old[name], new[name]):
                checker.fail("inputs", f"`{name}` was mutated")

    problems = tuple(checker.problems)
    status = "works"
    if problems:
        status = "failed" if any(p.category == "failed" for p in problems) else "wrong"
    return dataclasses.replace(
        outcome,
        status=status,
        error=checker.error,
        problems=problems,
        message=problems[0].message if problems else "",
        calls=calls,
        prep_calls=prep_calls,
    )


def test_differentiation(
    backends: AbstractBackend | Iterable[AbstractBackend],
    scenarios: Iterable[Scenario] | None = None,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    excluded: Iterable[str] = (),
    allow_unsupported: bool = True,
) -> list[Outcome]:
    """`test_differentiation(backends, scenarios=None, *, rtol=1e-5, atol=1e-8, excluded=()) -> list[Outcome]`.

    Runs every compatible (backend, scenario) pair: the value form unprepared (`value_and_<op>`,
    checking the value and every derivative), the operator prepared, and the same prep reused at
    the scenario's second point (or, when it has none, at `1.1 x + 0.05`, compared with an
    unprepared call there). The value form runs the same kernel with or without a prep, so each
    kernel is compiled once per pair (JAX). Checks values, array kind, shape
    and dtype of every result, that no input was mutated, and that the prep refuses another
    function with `ad.PreparationMismatchError`; counts the evaluations of `f`.

    Tolerances are relative to the largest expected entry, and widened where the backend cannot
    do better: see `anydiff.testing.correctness.tolerances` (float32, finite differences).

    Args:
        backends: one backend or several.
        scenarios: by default `default_scenarios()`.
        rtol: relative tolerance for exact backends in float64.
        atol: absolute tolerance, for results that should be exactly zero.
        excluded: operators (`"hessian"`) or scenario labels (`"gradient-vector"`) to skip.
        allow_unsupported: when False, a pair the backend cannot do (`ad.UnsupportedError`, or
            an incompatible scenario) is a failure too.

    Returns:
        One `Outcome` per pair, when nothing failed.

    Raises:
        AssertionError: with a table of every problem of every failing pair.

    Example:
        >>> import anydiff as ad
        >>> from anydiff.testing import default_scenarios, test_differentiation
        >>> outcomes = test_differentiation(ad.AutoFiniteDiff(), default_scenarios()[:3])
        >>> [o.status for o in outcomes]
        ['works', 'works', 'works']
    """
    if isinstance(backends, AbstractBackend):
        backends = [backends]
    scenarios = default_scenarios() if scenarios is None else list(scenarios)
    excluded = set(excluded)
    outcomes = [
        check(b, s, rtol=rtol, atol=atol)
        for b in backends
        for s in scenarios
        if s.operator not in excluded and s.label not in excluded
    ]
    bad = [
        o for o in outcomes if o.status in ("wrong", "failed") or (o.status == "unsupported" and not allow_unsupported)
    ]
    if bad:
        raise AssertionError(failure_report(bad, len(outcomes), rtol, atol))
    return outcomes


# pytest would otherwise collect the imported function as a test in every module importing it
test_differentiation.__test__ = False  # type: ignore[attr-defined]


def failure_report(bad: Sequence[Outcome], total: int, rtol: float, atol: float) -> str:
    """The table `test_differentiation` raises with: one row per problem."""
    rows = []
    for o in bad:
        problems = o.problems or (Problem("-", o.status, o.message),)
        for i, p in enumerate(problems):
            first = i == 0
            rows.append(
                (o.backend if first else "", o.scenario if first else "", o.status if first else "", p.stage, p.message)
            )
    header = (
        f"test_differentiation: {len(bad)} of {total} (backend, scenario) pairs went wrong "
        f"(rtol={rtol:g}, atol={atol:g})"
    )
    return header + "\n" + format_table(("backend", "scenario", "status", "stage", "problem"), rows)
