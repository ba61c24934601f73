"""`benchmark_differentiation`: time scenarios on backends, prepared and unprepared.

Each call is timed in samples of about a millisecond (several calls per sample when a call is
faster), within a time budget per pair, with the garbage collector paused; asynchronous results
(JAX) are waited for. Records report the median time per call with its interquartile range, the
preparation time (prepare plus the first call, which is where JAX compiles) and the number of
evaluations of `f`.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import io
import json
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anydiff as ad

from ..extend import AbstractBackend
from .correctness import Counter, call, first_line, format_table, incompatibility, to_numpy, wait
from .scenarios import Scenario, default_scenarios

__all__ = ["BenchmarkRecord", "Records", "Timing", "benchmark_differentiation", "measure", "run_prepared"]


@dataclass(frozen=True)
class BenchmarkRecord:
    """One (backend, scenario, operator, prepared) measurement.

    Attributes:
        backend: `repr` of the backend.
        scenario: the scenario's label.
        operator: the operator's name.
        prepared: whether the calls passed a prep.
        time: median seconds per call (`None` when the call could not run).
        time_low: 25th percentile of the samples.
        time_high: 75th percentile of the samples.
        samples: number of timed samples.
        calls: evaluations of `f` in one call (JAX counts traces: 0 per compiled call).
        prep_time: seconds to prepare plus the first call (prepared records only).
        prep_calls: evaluations of `f` while preparing and in the first call.
        status: `"ok"`, `"unsupported"` or `"failed"`.
        message: why it is unsupported or failed (the first line of the error).
    """

    backend: str
    scenario: str
    operator: str
    prepared: bool
    time: float | None = None
    time_low: float | None = None
    time_high: float | None = None
    samples: int = 0
    calls: int | None = None
    prep_time: float | None = None
    prep_calls: int | None = None
    status: str = "ok"
    message: str = ""


def format_seconds(seconds: float | None) -> str:
    """`"3.1 µs"`, `"41 ms"`, `"1.2 s"` (three significant digits at most)."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


class Records(list):
    """A list of dataclass records (`BenchmarkRecord`, ...) that prints as a table and exports.

    Example:
        >>> import anydiff as ad
        >>> from anydiff.testing import benchmark_differentiation, default_scenarios
        >>> records = benchmark_differentiation(ad.AutoFiniteDiff(), default_scenarios()[:1], budget=0.001)
        >>> records[0].prepared, records[0].calls
        (True, 3)
        >>> records.to_csv().splitlines()[0][:33]
        'backend,scenario,operator,prepare'
    """

    def to_dicts(self) -> list[dict[str, Any]]:
        """Each record as a dict of its fields."""
        return [dataclasses.asdict(r) for r in self]

    def to_json(self, path: str | Path | None = None) -> str:
        """The records as a JSON list of objects; also written to `path` when given."""
        text = json.dumps(self.to_dicts(), indent=1, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """The records as CSV with a header row; also written to `path` when given."""
        buffer = io.StringIO()
        rows = self.to_dicts()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        if path is not None:
            Path(path).write_text(buffer.getvalue(), encoding="utf-8")
        return buffer.getvalue()

    def table(self) -> str:
        """A readable table: times with their spread, preparation, f-calls, status."""
        rows = []
        for r in self:
            spread = "" if r.time is None else f" [{format_seconds(r.time_low)} – {format_seconds(r.time_high)}]"
            rows.append(
                (
                    r.backend,
                    r.scenario,
                    "prepared" if r.prepared else "unprepared",
                    format_seconds(r.time) + spread,
                    format_seconds(r.prep_time) if r.prepared else "",
                    "" if r.calls is None else r.calls,
                    r.status if r.status == "ok" else f"{r.status}: {r.message}",
                )
            )
        headers = ("backend", "scenario", "calls with", "time per call [IQR]", "preparation", "f-calls", "status")
        return format_table(headers, rows)

    def __str__(self) -> str:
        return self.table()


@dataclass(frozen=True)
class Timing:
    """Median seconds per call, its interquartile range, and the number of samples."""

    median: float
    low: float
    high: float
    samples: int


def measure(fn: Callable[[], Any], budget: float = 0.1) -> Timing:
    """`measure(fn, budget=0.1) -> Timing`: time `fn()` for about `budget` seconds.

    Samples last about a millisecond (several calls each when a call is faster). At least three
    samples are taken unless that would take more than three times the budget (slow calls).
    """

    def sample(number: int) -> float:
        start = time.perf_counter()
        for _ in range(number):
            wait(fn())
        return (time.perf_counter() - start) / number

    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        first = sample(1)
        samples = [first] if first >= 1e-3 else []  # a fast first call is a warm-up, not a sample
        number = max(1, min(1000, int(1e-3 / max(first, 1e-9))))
        while True:
            elapsed = time.perf_counter() - start
            if (len(samples) >= 3 and elapsed >= budget) or (samples and elapsed >= 3 * budget):
                break
            samples.append(sample(number))
    finally:
        if enabled:
            gc.enable()
    if len(samples) == 1:
        return Timing(samples[0], samples[0], samples[0], 1)
    low, _, high = statistics.quantiles(samples, n=4, method="inclusive")
    return Timing(statistics.median(samples), low, high, len(samples))


def _outputs(scenario: Scenario, result: Any) -> dict[str, Any]:
    """The value form's results by name, as NumPy arrays (tuples for batched tangents)."""

    def convert(v: Any) -> Any:
        return tuple(convert(u) for u in v) if isinstance(v, tuple) else to_numpy(v)

    return {name: convert(v) for name, v in zip(scenario.forms.outputs, result, strict=True)}


def run_prepared(
    backend: AbstractBackend, scenario: Scenario, *, budget: float = 0.1, outputs: bool = False
) -> tuple[BenchmarkRecord, dict[str, Any] | None]:
    """`(record, outputs)`: time preparation and prepared calls of one pair; never raises.

    With `outputs=True` also returns the value form's results as NumPy arrays (by name:
    `"value"`, `"first"`, `"result"`), for comparisons across backends.
    """
    record = BenchmarkRecord(repr(backend), scenario.label, scenario.operator, prepared=True)
    reason = incompatibility(backend, scenario)
    if reason is not None:
        return dataclasses.replace(record, status="unsupported", message=reason), None
    f = Counter(scenario.f)
    op = scenario.operator
    try:
        start = time.perf_counter()
        prep = call(f"prepare_{op}", scenario, f, backend)
        wait(call(op, scenario, f, backend, prep))
        prep_time = time.perf_counter() - start
        prep_calls = f.take()
        wait(call(op, scenario, f, backend, prep))
        calls = f.take()
        timing = measure(lambda: call(op, scenario, f, backend, prep), budget)
        results = None
        if outputs:
            results = _outputs(scenario, call(scenario.forms.value_form, scenario, f, backend, prep))
    except ad.UnsupportedError as exc:
        return dataclasses.replace(record, status="unsupported", message=first_line(exc)), None
    except Exception as exc:
        return dataclasses.replace(record, status="failed", message=first_line(exc)), None
    return (
        dataclasses.replace(
            record,
            time=timing.median,
            time_low=timing.low,
            time_high=timing.high,
            samples=timing.samples,
            calls=calls,
            prep_time=prep_time,
            prep_calls=prep_calls,
        ),
        results,
    )


def _run_unprepared(backend: AbstractBackend, scenario: Scenario, budget: float) -> BenchmarkRecord:
    record = BenchmarkRecord(repr(backend), scenario.label, scenario.operator, prepared=False)
    reason = incompatibility(backend, scenario)
    if reason is not None:
        return dataclasses.replace(record, status="unsupported", message=reason)
    f = Counter(scenario.f)
    try:
        wait(call(scenario.operator, scenario, f, backend))
        calls = f.take()
        timing = measure(lambda: call(scenario.operator, scenario, f, backend), budget)
    except ad.UnsupportedError as exc:
        return dataclasses.replace(record, status="unsupported", message=first_line(exc))
    except Exception as exc:
        return dataclasses.replace(record, status="failed", message=first_line(exc))
    return dataclasses.replace(
        record, time=timing.median, time_low=timing.low, time_high=timing.high, samples=timing.samples, calls=calls
    )


def benchmark_differentiation(
    backends: AbstractBackend | Iterable[AbstractBackend],
    scenarios: Iterable[Scenario] | None = None,
    *,
    budget: float = 0.1,
    prepared: Iterable[bool] = (True, False),
    excluded: Iterable[str] = (),
) -> Records:
    """`benchmark_differentiation(backends, scenarios=None, *, budget=0.1) -> Records`.

    Times every compatible (backend, scenario) pair, with a prep (after preparing, whose time is
    recorded with the first call) and without (each call prepares again). Pairs that cannot run
    get a record with `status` `"unsupported"` or `"failed"`; nothing raises.

    Args:
        backends: one backend or several.
        scenarios: by default `default_scenarios()`.
        budget: seconds of timing per (pair, prepared) record; slower calls are timed once.
        prepared: which kinds of calls to time: `(True,)` for prepared calls only.
        excluded: operators or scenario labels to skip.

    Returns:
        `Records`, a list of `BenchmarkRecord` with `.table()`, `.to_csv()` and `.to_json()`.
    """
    if isinstance(backends, AbstractBackend):
        backends = [backends]
    scenarios = default_scenarios() if scenarios is None else list(scenarios)
    excluded, kinds = set(excluded), tuple(prepared)
    records = Records()
    for backend in backends:
        for scenario in scenarios:
            if scenario.operator in excluded or scenario.label in excluded:
                continue
            if True in kinds:
                records.append(run_prepared(backend, scenario, budget=budget)[0])
            if False in kinds:
                records.append(_run_unprepared(backend, scenario, budget))
    return records
