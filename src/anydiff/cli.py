"""The `anydiff` command: which backends are installed, which work for a function, which is fastest.

    anydiff backends                       installed backends, their versions, whether they run
    anydiff compare                        the built-in scenarios on every installed backend
    anydiff compare mymodule:f --x 100     your function at a random x of shape (100,)

`compare` runs each backend in its own process (`multiprocessing`, spawn), one operator after
the other, so that a backend that crashes or hangs (`--timeout`) is reported and the others go
on. For each operator it prints a table: whether the backend works (its results agree with the
reference) or is wrong (with the size of the error), is unsupported or failed (with the first
line of the error), the median time of a prepared call, the preparation time (prepare plus the
first call, where JIT compilers compile; one-time costs such as importing the library are paid
beforehand on a tiny problem), and the speed relative to the fastest backend that works; then a
recommendation.

The reference is the closed form for the built-in scenarios. For a function of yours it is the
consensus of the automatic-differentiation backends: the result shared by the largest group of
exact (non finite-difference) backends that agree with each other to their tolerance; a tie, or a
single backend, is settled by finite differences (`AutoFiniteDiff()`); when no exact backend
agrees with finite differences, or none ran, finite differences are the reference. The table
says which reference was used.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import anydiff as ad

from . import AutoSparse, check_available
from .extend import AbstractBackend, registered_backends
from .testing.benchmark import BenchmarkRecord, Records, format_seconds, run_prepared
from .testing.correctness import call, finite_difference_schemes, first_line, format_table, tolerances
from .testing.scenarios import OPERATORS, Scenario, comparison_scenarios, sparse_scenarios

__all__ = ["Comparison", "main"]

_STARTUP_SECONDS = 60.0
_STATUS_MARK = {"works": "✓", "wrong": "✗", "unsupported": "–", "failed": "!", "ok": "✓"}


@dataclass(frozen=True)
class Comparison:
    """One row of `anydiff compare`: a backend on one operator (scenario).

    `status` is `"works"`, `"wrong"`, `"unsupported"` or `"failed"`; `error` the relative error
    against `reference`; `relative` the time per call over the fastest backend that works.
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


# -- running backends in isolated processes ------------------------------------------------------


def _worker(connection: Any, backend: AbstractBackend, scenarios: list[Scenario], budget: float, log: str) -> None:
    """In the child process: import the backend's library, then run and report each scenario."""
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(descriptor, 1)  # library chatter would scramble the parent's progress display
    os.dup2(descriptor, 2)
    warnings.simplefilter("ignore")
    try:
        check_available(backend)  # import the library
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
        record, outputs = run_prepared(backend, scenario, budget=budget, outputs=True)
        connection.send(("done", i, record, outputs))
    connection.close()


class Progress:
    """The live display on stderr: one line per backend with a mark per operator.

    On a terminal the lines are redrawn in place; otherwise each backend prints one line when
    it finishes.
    """

    def __init__(self, backends: Sequence[AbstractBackend], columns: int, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.names = [repr(b) for b in backends]
        self.marks = {name: ["·"] * columns for name in self.names}
        self.notes = dict.fromkeys(self.names, "waiting")
        self.width = max(len(n) for n in self.names)
        self.drawn = 0

    def update(self, backend: str, column: int | None, mark: str | None, note: str) -> None:
        if column is not None and mark is not None:
            self.marks[backend][column] = mark
        self.notes[backend] = note
        if self.live:
            self.draw()

    def finish(self, backend: str, seconds: float) -> None:
        self.notes[backend] = f"done in {seconds:.1f} s"
        if self.live:
            self.draw()
        else:
            marks = "".join(self.marks[backend])
            print(f"  {backend:<{self.width}}  {marks}  {self.notes[backend]}", file=self.stream, flush=True)

    def draw(self) -> None:
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        lines = [f"  {n:<{self.width}}  {''.join(self.marks[n])}  {self.notes[n]}" for n in self.names]
        self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self.stream.flush()
        self.drawn = len(lines)


def _run_backend(
    backend: AbstractBackend,
    scenarios: list[Scenario],
    *,
    budget: float,
    timeout: float,
    progress: Progress,
) -> list[tuple[BenchmarkRecord, dict[str, Any] | None]]:
    """Run every scenario on `backend` in a child process, restarting it after a crash or hang."""
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
            target=_worker, args=(sender, backend, [scenarios[i] for i in batch], budget, log), daemon=True
        )
        process.start()
        sender.close()
        current: int | None = None
        problem: str | None = None
        ready = False
        began = time.monotonic()
        progress.update(name, None, None, "starting")
        while True:
            waited = time.monotonic() - began
            # Starting Python and importing the library (TensorFlow: seconds) gets at least a minute.
            limit = timeout if ready else max(timeout, _STARTUP_SECONDS)
            if waited > limit:
                problem = f"timed out after {limit:g} s" + ("" if ready else " while importing its library")
                break
            if not receiver.poll(min(0.2, limit - waited)):
                if current is not None:
                    label = scenarios[batch[current]].label
                    progress.update(name, None, None, f"{label} ({time.monotonic() - began:.1f} s)")
                continue
            try:
                message = receiver.recv()
            except EOFError:
                process.join(5)
                problem = f"crashed (exit code {process.exitcode})" + _last_line(log)
                break
            if message[0] == "start":
                current, began = message[1], time.monotonic()
                progress.update(name, batch[current], "…", scenarios[batch[current]].label)
            elif message[0] == "done":
                _, i, record, outputs = message
                results[batch[i]] = (record, outputs)
                progress.update(name, batch[i], _STATUS_MARK[record.status], "")
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
                progress.update(name, i, "!", problem)
            pending = batch[batch.index(failed[-1]) + 1 :]
        process.join(5)
        receiver.close()
        Path(log).unlink(missing_ok=True)
    progress.finish(name, time.monotonic() - start)
    return results


def _last_line(log: str) -> str:
    try:
        lines = [line for line in Path(log).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:200]}" if lines else ""


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
        status, error = record.status, None
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
    text = f"for {subject}: {best.backend}, {_ratio(ratio)} faster than {runner.backend}"
    extra = (best.prep_time or 0.0) - (runner.prep_time or 0.0)
    saved = runner.time - best.time  # type: ignore[operator]
    if extra > 0 and saved > 0:
        calls = math.ceil(extra / saved)
        text += f"; its longer preparation (+{format_seconds(extra)}) pays off after {calls:,} calls"
        if calls > 1000:
            text += f": for fewer, {runner.backend}"
    return text


# -- presenting ----------------------------------------------------------------------------------


def _ratio(relative: float) -> str:
    return f"{relative:.1f}×" if relative < 10 else f"{relative:.0f}×"


def _error_text(error: float | None) -> str:
    if error is None:
        return ""
    return "0" if error == 0 else f"{error:.1e}"


def _time_text(row: Comparison) -> str:
    if row.time is None:
        return ""
    if row.samples > 1 and row.time_low is not None and row.time_high is not None:
        return f"{format_seconds(row.time)} ± {format_seconds((row.time_high - row.time_low) / 2)}"
    return format_seconds(row.time)


def report(groups: list[tuple[Scenario, str, list[Comparison]]]) -> str:
    """The tables and recommendations, one block per scenario."""
    blocks = []
    for scenario, subject, rows in groups:
        table_rows = []
        for r in rows:
            note = r.message if r.status in ("failed", "unsupported") else ""
            table_rows.append(
                (
                    r.backend,
                    f"{_STATUS_MARK[r.status]} {r.status}",
                    _error_text(r.error),
                    _time_text(r),
                    format_seconds(r.prep_time) if r.prep_time is not None else "",
                    _ratio(r.relative) if r.relative is not None else "",
                    "" if r.calls is None else r.calls,
                    note[:90] + ("…" if len(note) > 90 else ""),
                )
            )
        reference = rows[0].reference if rows else ""
        header = f"{scenario.operator} of {_describe(scenario)}   (reference: {reference})"
        table = format_table(
            ("backend", "result", "error", "time per call", "preparation", "vs best", "f-calls", "note"), table_rows
        )
        blocks.append(f"{header}\n{table}\n  → {recommendation(rows, subject)}")
    return "\n\n".join(blocks)


def _describe(scenario: Scenario) -> str:
    x = np.asarray(scenario.x)
    return f"{scenario.name} at x: {x.dtype.name} {'scalar' if x.shape == () else x.shape}"


def plot(groups: list[tuple[Scenario, str, list[Comparison]]], path: str | Path, title: str) -> None:
    """A two-panel chart (time per prepared call, preparation time), log scale, one band per operator."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    backends = list(dict.fromkeys(r.backend for _, _, rows in groups for r in rows))
    palette = colormaps["tab10"]
    colors = {b: palette(i % 10) for i, b in enumerate(backends)}
    height = 0.8 / max(1, len(backends))
    figure = Figure(figsize=(12, 1.4 + len(groups) * (0.28 * len(backends) + 0.3)), layout="constrained")
    time_axis, prep_axis = figure.subplots(1, 2, sharey=True)
    panels = (
        (time_axis, "time", "time per prepared call  (median; whisker: interquartile range)"),
        (prep_axis, "prep_time", "preparation  (prepare + first call, where JITs compile)"),
    )
    for axis, field, label in panels:
        values = [v for _, _, rows in groups for r in rows if (v := getattr(r, field))]
        for g in range(1, len(groups), 2):
            axis.axhspan(g - 0.5, g + 0.5, color="0.96", zorder=0)
        axis.set_title(label, fontsize=10, loc="left")
        axis.spines[["top", "right"]].set_visible(False)
        if not values:
            continue
        low, high = min(values), max(values)
        axis.set_xscale("log")
        axis.set_xlim(low / 3, high * 60)
        axis.xaxis.set_major_locator(LogLocator(base=10))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_seconds(v)))
        axis.grid(axis="x", which="major", linestyle=":", color="0.7", zorder=1)
        for g, (_, _, rows) in enumerate(groups):
            for b, row in enumerate(rows):
                y = g + (b - (len(rows) - 1) / 2) * height
                value = getattr(row, field)
                if value is None or row.status in ("failed", "unsupported"):
                    axis.text(
                        low / 2.6, y, f"{row.backend}: {row.status}", va="center", fontsize=7, color="0.5",
                        style="italic",
                    )
                    continue
                wrong = row.status == "wrong"
                color = colors[row.backend]
                axis.barh(y, value, height=height * 0.8, color=color, alpha=0.3 if wrong else 0.9,
                          hatch="///" if wrong else None, edgecolor=color, zorder=2)
                end = value
                if field == "time" and row.samples > 1 and row.time_low is not None:
                    axis.plot([row.time_low, row.time_high], [y, y], color="0.25", linewidth=0.9, zorder=3)
                    end = max(value, row.time_high or value)
                text, weight = format_seconds(value), "normal"
                if field == "time" and row.relative is not None:
                    fastest = row.relative <= 1.0
                    text += "  fastest" if fastest else f"  {_ratio(row.relative)}"
                    weight = "bold" if fastest else "normal"
                if wrong:
                    text += f"  WRONG (error {row.error:.0e})"
                axis.text(end * 1.3, y, text, va="center", fontsize=7, color="0.1", fontweight=weight, zorder=4)
    one_function = len({s.name for s, _, _ in groups}) == 1
    labels = [s.operator if one_function else f"{s.operator}\n{s.name}" for s, _, _ in groups]
    time_axis.set_yticks(range(len(groups)), labels, fontsize=9)
    time_axis.tick_params(axis="y", length=0)
    time_axis.set_ylim(len(groups) - 0.5, -0.5)
    figure.suptitle(title, fontsize=13, fontweight="bold", x=0.01, ha="left")
    figure.legend(
        handles=[Patch(color=colors[b], label=b) for b in backends], loc="outside lower center",
        ncols=min(len(backends), 5), frameon=False, fontsize=9,
    )
    figure.savefig(path, dpi=150)


# -- parsing the command line --------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses: `"AutoJAX(), SecondOrder(AutoJAX(), AutoTorch())"`."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _import_target(target: str) -> Any:
    """`module:attribute` or `path/to/file.py:attribute` -> the object (the module's directory
    goes on `sys.path`, which the worker processes inherit, so they can import it too)."""
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise SystemExit(f"anydiff: expected `module:function` (e.g. `mymodule:f`); got {target!r}.")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        directory, module_name = str(path.parent), path.stem
    else:
        directory = os.getcwd()
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(
            f"anydiff: cannot import `{module_name}` ({exc}). Run from its directory or pass a path."
        ) from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"anydiff: `{module_name}` has no attribute `{attribute}`.") from None
    return obj


def parse_backends(text: str) -> list[AbstractBackend]:
    """Backends from `--backends`: names (`AutoJAX`, `jax`), expressions (`AutoFiniteDiff(method='forward')`,
    `SecondOrder(AutoJAX(), AutoTorch())`) or `module:name` of a backend defined elsewhere."""
    public = {name: getattr(ad, name) for name in ad.__all__}
    by_short = {name.lower().removeprefix("auto"): obj for name, obj in public.items() if name.startswith("Auto")}
    backends = []
    for item in _split_top_level(text):
        if ":" in item and "(" not in item:
            value = _import_target(item)
        elif item.isidentifier():
            value = public.get(item) or by_short.get(item.lower().removeprefix("auto"))
            if value is None:
                known = ", ".join(sorted(n for n in public if n.startswith("Auto")))
                raise SystemExit(f"anydiff: unknown backend {item!r}; known: {known}.")
        else:
            try:
                value = eval(compile(ast.parse(item, mode="eval"), "--backends", "eval"), {"__builtins__": {}}, public)
            except Exception as exc:
                raise SystemExit(f"anydiff: cannot read backend {item!r}: {first_line(exc)}") from None
        if isinstance(value, type) and issubclass(value, AbstractBackend):
            value = value()
        if not isinstance(value, AbstractBackend):
            raise SystemExit(f"anydiff: {item!r} is not a backend; got {type(value).__name__}.")
        backends.append(value)
    return backends


def parse_shape(text: str) -> tuple[int, ...]:
    """`"100"` -> `(100,)`, `"10,20"` -> `(10, 20)`, `"scalar"` or `"()"` -> `()`."""
    if text.strip() in ("scalar", "()", ""):
        return ()
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"anydiff: `--x` must be a shape such as 100 or 10,20 (or `scalar`); got {text!r}.") from None
    if any(n <= 0 for n in shape):
        raise SystemExit(f"anydiff: `--x` sizes must be positive; got {text!r}.")
    return shape


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
    """One scenario per applicable operator for the user's `f`, at a random `x` in [0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.uniform(0.5, 1.5, shape), dtype=dtype)
    try:
        y = np.asarray(f(x))
    except Exception as exc:
        raise SystemExit(
            f"anydiff: calling {name} on a NumPy array of shape {shape} failed ({first_line(exc)}); "
            "compare evaluates `f` on NumPy once to learn its output shape. Write `f` with "
            "`xp = ad.namespace(x)` so that it runs on every kind of array."
        ) from None
    found = applicable_operators(shape, y.shape)
    if operators is not None:
        missing = [op for op in operators if op not in found]
        if missing:
            raise SystemExit(
                f"anydiff: {', '.join(missing)} do not apply to {name} from shape {shape} to {y.shape}; "
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anydiff",
        description="One interface to every automatic-differentiation system in Python: which backends "
        "work for your function, and which is fastest.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("backends", help="list the backends: installed, usable, versions")
    listing.add_argument("names", nargs="*", help="only these backends (AutoJAX, torch, ...); default: all")
    compare = commands.add_parser(
        "compare",
        help="run every operator on every installed backend: correctness, time, preparation",
        description=__doc__.split("\n\n", 2)[2],  # type: ignore[union-attr]
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = compare.add_argument
    add("function", nargs="?", help="`module:function` or `path/file.py:function`; default: built-in scenarios")
    add("--x", default=None, help="shape of x: 100, 10,20 or scalar (built-ins: the vector size, default 10)")
    add("--dtype", default="float64", choices=("float64", "float32"))
    add("--operators", default=None, help=f"comma-separated subset of: {', '.join(OPERATORS)}")
    add("--backends", default=None, help="comma-separated: AutoJAX, torch, AutoFiniteDiff(method='forward'), ...")
    add("--sparse", action="store_true", help="also AutoSparse(backend) for jacobian, hessian (and sparse built-ins)")
    add("--timeout", type=float, default=120.0, help="seconds a backend may spend on one operator (default 120)")
    add("--budget", type=float, default=0.1, help="seconds of timing per backend and operator (default 0.1)")
    add("--seed", type=int, default=0, help="seed of the random x and tangents")
    add("--plot", metavar="PNG", help="write a chart of the times")
    add("--json", metavar="PATH", help="write the results as JSON")
    add("--csv", metavar="PATH", help="write the results as CSV")
    return parser


# -- the commands --------------------------------------------------------------------------------


def _version(library: str) -> str:
    distributions = importlib.metadata.packages_distributions().get(library, [library])
    try:
        return importlib.metadata.version(distributions[0])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _probe_worker(connection: Any, backend: AbstractBackend) -> None:
    """In a child process: whether the backend's library imports and runs (output silenced)."""
    descriptor = os.open(os.devnull, os.O_WRONLY)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    try:
        connection.send("usable" if check_available(backend) else "installed, cannot run here")
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


def backends_command(names: Sequence[str] = ()) -> int:
    """`anydiff backends [NAME ...]`: registered backends, whether installed and usable, versions."""
    wanted = {type(b) for b in parse_backends(",".join(names))} if names else None
    rows, installed = [], []
    for backend_type, library in registered_backends().items():
        if wanted is not None and backend_type not in wanted:
            continue
        try:
            backend: AbstractBackend = backend_type()
        except TypeError:  # combinators (SecondOrder, AutoSparse) need their parts
            continue
        if library is not None and importlib.util.find_spec(library) is None:
            rows.append([repr(backend), library, "", f"not installed: pip install 'anydiff[{backend.extra}]'"])
            continue
        rows.append([repr(backend), library or "(none)", _version(library) if library else ad.__version__, ""])
        installed.append((len(rows) - 1, backend))
    for (row, _), status in zip(installed, probe([b for _, b in installed]), strict=True):
        rows[row][3] = status
    print(f"anydiff {ad.__version__}: backends")
    print(format_table(("backend", "library", "version", "status"), rows))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """`anydiff compare ...`: run, print the tables, write the outputs."""
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("anydiff: --plot needs matplotlib: pip install 'anydiff[plot]'.") from None
    operators = None if args.operators is None else [op.strip() for op in args.operators.split(",") if op.strip()]
    unknown = [op for op in operators or () if op not in OPERATORS]
    if unknown:
        raise SystemExit(f"anydiff: unknown operators {', '.join(unknown)}; known: {', '.join(OPERATORS)}.")
    backends = ad.available_backends() if args.backends is None else parse_backends(args.backends)
    if args.sparse:
        backends += [AutoSparse(b) for b in list(backends)]
    if args.function is None:
        size = parse_shape(args.x or "10")
        if len(size) != 1:
            raise SystemExit("anydiff: for the built-in scenarios `--x` is the vector size, e.g. --x 100.")
        scenarios = comparison_scenarios(size[0])
        if args.sparse:
            scenarios += sparse_scenarios(max(6, size[0]))
        if args.dtype != "float64":
            from .testing.scenarios import with_dtype

            scenarios = [with_dtype(s, args.dtype) for s in scenarios]
        scenarios = [s for s in scenarios if operators is None or s.operator in operators]
        title = f"anydiff compare: built-in scenarios, vectors of {size[0]}"
        subjects = [f"{s.operator} of {s.name} at this size" for s in scenarios]
    else:
        if args.x is None:
            raise SystemExit("anydiff: give the shape of x for your function, e.g. `--x 100` or `--x 10,20`.")
        f = _import_target(args.function)
        name = args.function.rpartition(":")[2]
        shape = parse_shape(args.x)
        scenarios = user_scenarios(f, name, shape, args.dtype, operators, args.seed)
        title = f"anydiff compare: {name} at x: {args.dtype} {shape}"
        subjects = [f"{s.operator} of {name} at this size" for s in scenarios]
    scenarios = [s for s in scenarios if hasattr(ad, s.operator)]
    if not scenarios or not backends:
        raise SystemExit("anydiff: nothing to compare (no scenario or no backend selected).")

    print(f"{title}: {len(scenarios)} operators × {len(backends)} backends", file=sys.stderr)
    progress = Progress(backends, len(scenarios))
    runs = {
        repr(b): _run_backend(b, scenarios, budget=args.budget, timeout=args.timeout, progress=progress)
        for b in backends
    }
    groups = []
    for j, (scenario, subject) in enumerate(zip(scenarios, subjects, strict=True)):
        pairs = [(b, *runs[repr(b)][j]) for b in backends]
        groups.append((scenario, subject, judge(scenario, pairs)))
    print(report(groups))
    records = Records(row for _, _, rows in groups for row in rows)
    if args.json:
        document = {
            "anydiff": ad.__version__,
            "title": title,
            "results": records.to_dicts(),
            "recommendations": [recommendation(rows, subject) for _, subject, rows in groups],
        }
        Path(args.json).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.csv:
        records.to_csv(args.csv)
    if args.plot:
        plot(groups, args.plot, title)
    written = [p for p in (args.json, args.csv, args.plot) if p]
    if written:
        print(f"\nwrote {', '.join(written)}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of `anydiff` and `python -m anydiff`; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # ✓ and × on terminals that cannot show them
    args = _parser().parse_args(argv)
    if args.command == "backends":
        return backends_command(args.names)
    return compare_command(args)
