"""The engine of `anydiff compare`: run backends side by side, judge them, recommend one.

    from anydiff.testing.comparison import compare_differentiation
    from anydiff.testing.scenarios import comparison_scenarios

    rows = compare_differentiation([ad.AutoJAX(), ad.AutoTorch()], comparison_scenarios(100))

Each backend runs in its own process (`multiprocessing`, spawn), one scenario after the other, so
that a backend that crashes, hangs (`timeout`, seconds per scenario) or exhausts its memory
(`memory`, bytes of address space per process, set with `resource.setrlimit`) is reported and the
others go on. Each scenario gives one `Comparison` per backend: whether it works (its results
agree with the reference; noted when it ran uncompiled because `f`'s program was above the
backend's `max_program_size`) or is wrong (with the size of the error), is unsupported, too big to
compile (refused by the size guard), timed out, out of memory, or failed (with the first line of
the error),
the median time of a prepared call, the preparation time (prepare plus the first call, where JIT
compilers compile; one-time costs such as importing the library are paid beforehand on a tiny
problem), and the speed relative to the fastest backend that works.

The reference is the closed form for the built-in scenarios. For any other function it is the
consensus of the automatic-differentiation backends: the result shared by the largest group of
exact (non finite-difference) backends that agree with each other to their tolerance; a tie, or a
single backend, is settled by finite differences (`AutoFiniteDiff()`); when no exact backend
agrees with finite differences, or none ran, finite differences are the reference. Each row says
which reference was used.

This module presents nothing: the `anydiff` command (`anydiff.cli`) draws the progress, prints the
tables and plots the times.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import resource
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import anydiff as ad

from ..extend import AbstractBackend
from .benchmark import BenchmarkRecord, format_seconds, run_prepared
from .correctness import call, finite_difference_schemes, first_line, tolerances
from .scenarios import OPERATORS, Scenario, comparison_scenarios

__all__ = [
    "STATUS_MARK",
    "Comparison",
    "Listener",
    "applicable_operators",
    "compare_differentiation",
    "format_ratio",
    "judge",
    "probe",
    "recommendation",
    "relative_error",
    "run_backend",
    "user_scenarios",
]

#: Seconds a worker may take to start Python and import its backend's library (TensorFlow: several),
#: when that is more than the per-scenario timeout.
STARTUP_SECONDS = 60.0

#: The mark of each status, for progress displays and tables (`"ok"`: a run not yet judged).
STATUS_MARK = {
    "works": "✓",
    "wrong": "✗",
    "unsupported": "–",
    "too big": "–",
    "timed out": "!",
    "out of memory": "!",
    "failed": "!",
    "ok": "✓",
}

#: In the size guard's refusal (`anydiff._core.guard`): `f`'s program is too big to compile.
_TOO_BIG = "traces to a program of more than"
#: In the messages of a process that ran out of its memory budget.
_OUT_OF_MEMORY = ("MemoryError", "bad_alloc", "out of memory", "Cannot allocate memory")


@dataclass(frozen=True)
class Comparison:
    """One row of `anydiff compare`: a backend on one operator (scenario).

    `status` is `"works"`, `"wrong"`, `"unsupported"`, `"too big"` (to compile: refused at
    preparation by the size guard), `"timed out"`, `"out of memory"` or `"failed"`; `message` why
    (for `"works"`: empty, or that it ran uncompiled); `error` the relative error against
    `reference`; `relative` the time per call over the fastest backend that works.
    Times are in seconds; see `BenchmarkRecord` for the others.
    """

    backend: str
    operator: str
    scenario: str
    status: str
    error: float | None
    message: str
    time: float | None
    time_low: float | None
    time_high: float | None
    samples: int
    calls: int | None
    prep_time: float | None
    prep_calls: int | None
    relative: float | None
    reference: str


class Listener(Protocol):
    """What `run_backend` tells as it goes (the command line draws it as a progress display).

    `update(backend, column, mark, note)`: scenario `column` of `backend` (`repr`) now shows `mark`
    (`"…"` running, a `STATUS_MARK`), or only the note changed (`column` and `mark` are `None`).
    `finish(backend, seconds)`: every scenario of `backend` is done.
    """

    def update(self, backend: str, column: int | None, mark: str | None, note: str) -> None: ...

    def finish(self, backend: str, seconds: float) -> None: ...


class _Silent:
    """A `Listener` that ignores everything."""

    def update(self, backend: str, column: int | None, mark: str | None, note: str) -> None:
        pass

    def finish(self, backend: str, seconds: float) -> None:
        pass


# -- running backends in isolated processes ------------------------------------------------------


def _worker(
    connection: Any, backend: AbstractBackend, scenarios: list[Scenario], budget: float, log: str, memory: int | None
) -> None:
    """In the child process: import the backend's library, then run and report each scenario."""
    if memory is not None:  # allocations past it fail (MemoryError) instead of swapping the machine
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(descriptor, 1)  # library chatter would scramble the parent's progress display
    os.dup2(descriptor, 2)
    warnings.simplefilter("ignore")
    try:
        ad.check_available(backend)  # import the library
    except Exception:  # reported per operator below
        pass
    connection.send(("ready",))
    # One-time costs (the first use of a transform) are not the preparation of an operator: pay
    # them on a tiny problem first, within the operator's time limit.
    tiny = {s.operator: s for s in comparison_scenarios(2)}
    warm: set[str] = set()
    for i, scenario in enumerate(scenarios):
        connection.send(("start", i))
        if scenario.operator not in warm:
            warm.add(scenario.operator)
            small = tiny[scenario.operator]
            try:
                call(small.forms.value_form, small, small.f, backend)
            except Exception:  # reported on the real scenario
                pass
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ad.ProgramSizeWarning)
            record, outputs = run_prepared(backend, scenario, budget=budget, outputs=True)
        if record.status == "ok" and any(issubclass(w.category, ad.ProgramSizeWarning) for w in caught):
            note = "ran uncompiled: `f`'s program is above the backend's max_program_size"
            record = dataclasses.replace(record, message=note)
        connection.send(("done", i, record, outputs))
    connection.close()


def run_backend(
    backend: AbstractBackend,
    scenarios: list[Scenario],
    *,
    budget: float,
    timeout: float,
    memory: int | None = None,
    listener: Listener | None = None,
) -> list[tuple[BenchmarkRecord, dict[str, Any] | None]]:
    """Run every scenario on `backend` in a child process, restarting it after a crash or hang.

    `memory` bounds the process's address space (bytes; `None`: no bound). Returns
    `(record, outputs)` per scenario, in order; `outputs` is `None` when nothing ran.
    """
    listener = listener or _Silent()
    context = multiprocessing.get_context("spawn")
    name = repr(backend)
    results: list[Any] = [None] * len(scenarios)
    pending = list(range(len(scenarios)))
    start = time.monotonic()
    while pending:
        batch, pending = pending, []
        receiver, sender = context.Pipe(duplex=False)
        with tempfile.NamedTemporaryFile(prefix="anydiff-", suffix=".log", delete=False) as handle:
            log = handle.name
        process = context.Process(
            target=_worker,
            args=(sender, backend, [scenarios[i] for i in batch], budget, log, memory),
            daemon=True,
        )
        process.start()
        sender.close()
        current: int | None = None
        problem: str | None = None
        ready = False
        began = time.monotonic()
        listener.update(name, None, None, "starting")
        while True:
            waited = time.monotonic() - began
            # Starting Python and importing the library (TensorFlow: seconds) gets at least a minute.
            limit = timeout if ready else max(timeout, STARTUP_SECONDS)
            if waited > limit:
                problem = f"timed out after {limit:g} s" + ("" if ready else " while importing its library")
                break
            if not receiver.poll(min(0.2, limit - waited)):
                if current is not None:
                    label = scenarios[batch[current]].label
                    listener.update(name, None, None, f"{label} ({time.monotonic() - began:.1f} s)")
                continue
            try:
                message = receiver.recv()
            except EOFError:
                process.join(5)
                problem = f"crashed (exit code {process.exitcode})" + _last_line(log)
                if memory is not None and any(mark in problem for mark in _OUT_OF_MEMORY):
                    problem = f"out of memory (its budget: {_format_bytes(memory)}): {problem}"
                break
            if message[0] == "start":
                current, began = message[1], time.monotonic()
                listener.update(name, batch[current], "…", scenarios[batch[current]].label)
            elif message[0] == "done":
                _, i, record, outputs = message
                results[batch[i]] = (record, outputs)
                listener.update(name, batch[i], STATUS_MARK[record.status], "")
                current = None
                if i == len(batch) - 1:
                    break
            else:  # "ready": the library is imported; the timeout now counts per operator
                ready, began = True, time.monotonic()
        if problem is not None:
            process.kill()
            # A backend that cannot even start fails everything left; otherwise only the operator
            # it was running, and a fresh process takes the rest.
            left = [i for i in batch if results[i] is None]
            failed = left if not ready else [batch[current]] if current is not None else left[:1]
            for i in failed:
                scenario = scenarios[i]
                results[i] = (
                    BenchmarkRecord(name, scenario.label, scenario.operator, True, status="failed", message=problem),
                    None,
                )
                listener.update(name, i, STATUS_MARK["failed"], problem)
            pending = batch[batch.index(failed[-1]) + 1 :]
        process.join(5)
        receiver.close()
        Path(log).unlink(missing_ok=True)
    listener.finish(name, time.monotonic() - start)
    return results


def _last_line(log: str) -> str:
    try:
        lines = [line for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:200]}" if lines else ""


def compare_differentiation(
    backends: Sequence[AbstractBackend],
    scenarios: Sequence[Scenario],
    *,
    budget: float = 0.1,
    timeout: float = 120.0,
    memory: int | None = None,
    listener: Listener | None = None,
) -> list[list[Comparison]]:
    """Run every scenario on every backend, each backend in its own process; judge the results.

    Returns one list of rows per scenario, in order, with one `Comparison` per backend, in order.
    `budget` is the seconds of timing per backend and scenario, `timeout` the seconds a backend may
    spend on one scenario (starting its process gets at least a minute), `memory` the bytes of
    address space each backend's process may use (`None`: no bound).
    """
    scenarios = list(scenarios)
    runs = {
        repr(b): run_backend(b, scenarios, budget=budget, timeout=timeout, memory=memory, listener=listener)
        for b in backends
    }
    return [judge(scenario, [(b, *runs[repr(b)][j]) for b in backends]) for j, scenario in enumerate(scenarios)]


# -- which backends run here ---------------------------------------------------------------------


def _probe_worker(connection: Any, backend: AbstractBackend) -> None:
    """In a child process: whether the backend's library imports and runs (output silenced)."""
    descriptor = os.open(os.devnull, os.O_WRONLY)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    try:
        connection.send("usable" if ad.check_available(backend) else "installed, cannot run here")
    except Exception as exc:
        connection.send(f"broken: {first_line(exc)}")


def probe(backends: Sequence[AbstractBackend], timeout: float = 120.0, parallel: int = 2) -> list[str]:
    """The status of each backend, each probed in its own process (`parallel` at a time)."""
    context = multiprocessing.get_context("spawn")
    statuses = [""] * len(backends)
    queue = list(enumerate(backends))
    running: list[tuple[int, Any, Any, float]] = []
    while queue or running:
        while queue and len(running) < parallel:
            i, backend = queue.pop(0)
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_probe_worker, args=(sender, backend), daemon=True)
            process.start()
            sender.close()
            running.append((i, process, receiver, time.monotonic()))
        for entry in list(running):
            i, process, receiver, started = entry
            if receiver.poll(0.05):
                try:
                    statuses[i] = receiver.recv()
                except EOFError:
                    process.join(5)
                    statuses[i] = f"broken: importing it crashed (exit code {process.exitcode})"
            elif time.monotonic() - started > timeout:
                process.kill()
                statuses[i] = f"broken: importing it took more than {timeout:g} s"
            else:
                continue
            process.join(5)
            receiver.close()
            running.remove(entry)
    return statuses


# -- scenarios for a function of the user's ------------------------------------------------------


def applicable_operators(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> list[str]:
    """The operators that apply to an `f` from `x_shape` to `y_shape`, in the usual order."""
    found = ["pushforward", "pullback"]
    if x_shape == ():
        found += ["derivative", "second_derivative"]
    if y_shape == ():
        found += ["gradient", "hvp"] + (["hessian"] if x_shape else [])
    if x_shape and y_shape:
        found.append("jacobian")
    return [op for op in OPERATORS if op in found]


def user_scenarios(
    f: Callable[..., Any], name: str, shape: tuple[int, ...], dtype: str, operators: list[str] | None, seed: int
) -> list[Scenario]:
    """One scenario per applicable operator for the user's `f`, at a random `x` in [0.5, 1.5).

    Raises `ValueError` when `f` fails on a NumPy `x` (its output shape is learnt that way) or an
    operator asked for does not apply to it.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.uniform(0.5, 1.5, shape), dtype=dtype)
    try:
        y = np.asarray(f(x))
    except Exception as exc:
        raise ValueError(
            f"calling {name} on a NumPy array of shape {shape} failed ({first_line(exc)}); "
            "compare evaluates `f` on NumPy once to learn its output shape. Write `f` with "
            "`xp = ad.namespace(x)` so that it runs on every kind of array."
        ) from None
    found = applicable_operators(shape, y.shape)
    if operators is not None:
        missing = [op for op in operators if op not in found]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} do not apply to {name} from shape {shape} to {y.shape}; "
                f"these do: {', '.join(found)}."
            )
        found = [op for op in found if op in operators]
    scenarios = []
    for op in found:
        tangents = None
        if OPERATORS[op].tangents is not None:
            tangent_shape = shape if OPERATORS[op].tangents == "x" else y.shape
            tangents = np.asarray(rng.standard_normal(tangent_shape), dtype=dtype)
        scenarios.append(Scenario(op, f, x, tangents, name=name))
    return scenarios


# -- judging the results -------------------------------------------------------------------------


def relative_error(got: Any, want: Any) -> float:
    """Max-norm error of `got` relative to `want` (tuples elementwise); `inf` if shapes differ.

    A 2-D `got` of the same size as `want` (a sparse Jacobian or Hessian) is compared flattened.
    """
    if isinstance(want, tuple):
        if not isinstance(got, tuple) or len(got) != len(want):
            return math.inf
        return max((relative_error(g, w) for g, w in zip(got, want, strict=True)), default=0.0)
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        if got.ndim != 2 or got.size != want.size:
            return math.inf
        want = want.reshape(got.shape)
    if not np.all(np.isfinite(got)):
        return math.inf
    difference = float(np.max(np.abs(got - want), initial=0.0))
    scale = float(np.max(np.abs(want), initial=0.0))
    return difference / scale if scale > 0 else difference


def _output_error(outputs: dict[str, Any], reference: dict[str, Any]) -> float:
    errors = [relative_error(v, reference[k]) for k, v in outputs.items() if reference.get(k) is not None]
    return max(errors, default=0.0)


def _tolerance(backend: AbstractBackend, scenario: Scenario) -> float:
    dtype = np.asarray(scenario.x).dtype.name
    return tolerances(backend, scenario.forms.order, dtype, 1e-5, 1e-8)[0]


def _reference(
    scenario: Scenario, runs: list[tuple[AbstractBackend, BenchmarkRecord, dict[str, Any] | None]]
) -> tuple[dict[str, Any] | None, str, float]:
    """`(reference outputs, description, its tolerance)` for one scenario (see the module doc)."""
    if scenario.result is not None:
        expected = {name: getattr(scenario, name) for name in scenario.forms.outputs}
        return expected, "analytic", 0.0
    ran = [(b, out) for b, record, out in runs if record.status == "ok" and out is not None]
    order = scenario.forms.order
    exact = [(b, out) for b, out in ran if not finite_difference_schemes(b, order)]
    approximate = [(b, out) for b, out in ran if finite_difference_schemes(b, order)]

    def agree(a: tuple[AbstractBackend, dict], b: tuple[AbstractBackend, dict]) -> bool:
        return _output_error(a[1], b[1]) <= max(_tolerance(a[0], scenario), _tolerance(b[0], scenario))

    confirmed = {repr(b) for b, out in exact if any(agree((b, out), fd) for fd in approximate)}
    groups = [[other for other in exact if agree(candidate, other)] for candidate in exact]
    groups.sort(key=lambda g: (len(g), repr(g[0][0]) in confirmed), reverse=True)
    if groups and len(groups[0]) >= 2:
        names = ", ".join(repr(b) for b, _ in groups[0])
        return groups[0][0][1], f"consensus of {names}", _tolerance(groups[0][0][0], scenario)
    for b, out in exact:
        if repr(b) in confirmed:
            return out, f"{b!r}, confirmed by finite differences", _tolerance(b, scenario)
    if approximate:
        b, out = approximate[0]
        note = " (no exact backend agrees with them)" if exact else ""
        return out, f"finite differences, {b!r}{note}", _tolerance(b, scenario)
    if exact:
        b, out = exact[0]
        return out, f"{b!r} alone (nothing to confirm it)", _tolerance(b, scenario)
    return None, "none: no backend computed it", 0.0


def judge(
    scenario: Scenario, runs: list[tuple[AbstractBackend, BenchmarkRecord, dict[str, Any] | None]]
) -> list[Comparison]:
    """The rows of one scenario: each run compared with the reference, speeds relative to the best."""
    reference, description, reference_tolerance = _reference(scenario, runs)
    rows = []
    for backend, record, outputs in runs:
        status, error = _status(record.status, record.message), None
        if status == "ok":
            status = "works"
            if reference is not None and outputs is not None:
                error = _output_error(outputs, reference)
                if not error <= max(_tolerance(backend, scenario), reference_tolerance):
                    status = "wrong"
        rows.append(
            Comparison(
                backend=record.backend,
                operator=record.operator,
                scenario=record.scenario,
                status=status,
                error=error,
                message=record.message,
                time=record.time,
                time_low=record.time_low,
                time_high=record.time_high,
                samples=record.samples,
                calls=record.calls,
                prep_time=record.prep_time,
                prep_calls=record.prep_calls,
                relative=None,
                reference=description,
            )
        )
    times = [r.time for r in rows if r.status == "works" and r.time]
    best = min(times, default=None)
    return [dataclasses.replace(r, relative=None if best is None or r.time is None else r.time / best) for r in rows]


def _status(status: str, message: str) -> str:
    """A run's status, refined by its message: too big to compile, timed out, out of memory."""
    if status == "unsupported" and _TOO_BIG in message:
        return "too big"
    if status == "failed":
        if message.startswith("timed out"):
            return "timed out"
        if any(mark in message for mark in _OUT_OF_MEMORY):
            return "out of memory"
    return status


def _format_bytes(size: int) -> str:
    """`"1.5 GB"`, `"512 MB"`: a memory budget as messages write it."""
    return f"{size / 2**30:g} GB" if size >= 2**30 else f"{size / 2**20:g} MB"


def format_ratio(relative: float) -> str:
    """`"3.1×"`, `"42×"`: a speed ratio as the tables and recommendations write it."""
    return f"{relative:.1f}×" if relative < 10 else f"{relative:.0f}×"


def recommendation(rows: Sequence[Comparison], subject: str) -> str:
    """`"for gradient of f at this size: AutoJAX(), 3.1× faster than AutoTorch()"` and the like."""
    works = sorted((r for r in rows if r.status == "works" and r.time is not None), key=lambda r: r.time)  # type: ignore[arg-type, return-value]
    if not works:
        return f"for {subject}: no backend computed it correctly"
    best = works[0]
    if len(works) == 1:
        return f"for {subject}: {best.backend}, the only backend that works"
    runner = works[1]
    ratio = runner.time / best.time  # type: ignore[operator]
    if ratio < 1.1:  # a tie per call: the one quicker to prepare
        quick, other = sorted((best, runner), key=lambda r: r.prep_time or 0.0)
        return f"for {subject}: {quick.backend}, as fast per call as {other.backend} and quicker to prepare"
    text = f"for {subject}: {best.backend}, {format_ratio(ratio)} faster than {runner.backend}"
    extra = (best.prep_time or 0.0) - (runner.prep_time or 0.0)
    saved = runner.time - best.time  # type: ignore[operator]
    if extra > 0 and saved > 0:
        calls = math.ceil(extra / saved)
        text += f"; its longer preparation (+{format_seconds(extra)}) pays off after {calls:,} calls"
        if calls > 1000:
            text += f": for fewer, {runner.backend}"
    return text
