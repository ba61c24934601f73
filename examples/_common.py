"""What the examples share: picking backends by name, timing a prepared operator, running each
backend in its own process with a time limit, and printing tables.

Not an example itself; the examples import it from their own folder.
"""

from __future__ import annotations

import multiprocessing
import queue
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import anydiff as ad


def select_backends(names: str) -> list[ad.AbstractBackend]:
    """The installed backends named in `names` (`"AutoJAX,AutoTorch"`), or all of them for `""`."""
    installed = {type(b).__name__: b for b in ad.available_backends()}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in installed]
    if unknown:
        raise SystemExit(f"unknown or not installed: {', '.join(unknown)}; installed: {', '.join(installed)}")
    return [installed[n] for n in wanted] if wanted else list(installed.values())


@dataclass(frozen=True)
class Timing:
    """A prepared operator's result, its preparation time (prepare plus the first call, where JIT
    compilers compile) and the median time of one prepared call."""

    result: Any
    preparation: float
    call: float
    info: dict


def time_prepared(prepare: Callable[[], Any], call: Callable[[Any], Any], budget: float) -> Timing:
    """Prepare, call once, then repeat the prepared call for about `budget` seconds (at least 3 times)."""
    start = time.perf_counter()
    prep = prepare()
    result = call(prep)
    preparation = time.perf_counter() - start
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < 3 or time.perf_counter() - start < budget:
        t = time.perf_counter()
        call(prep)
        samples.append(time.perf_counter() - t)
    return Timing(result, preparation, statistics.median(samples), dict(prep.info))


def relative_error(result: Any, reference: np.ndarray) -> float:
    """Max-norm of the difference over the max-norm of the reference."""
    return float(np.max(np.abs(np.asarray(result) - reference)) / np.max(np.abs(reference)))


def _child(task: Callable[[Any, Any], dict], backend: Any, problems: Sequence[Any], results: Any) -> None:
    for problem in problems:
        try:
            row = task(backend, problem)
        except Exception as exc:  # reported in the table, like a wrong result
            row = {"status": f"failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:80]}"}
        results.put(row)


def run_isolated(
    task: Callable[[Any, Any], dict], backends: Iterable[Any], sweeps: Sequence[Sequence[Any]], timeout: float
) -> list[dict]:
    """`task(backend, problem) -> row` for every backend and every problem of every sweep.

    Each sweep lists problems of growing size, and runs in a process of its own per backend
    (spawned): a backend that spends more than `timeout` seconds on one problem is stopped, its
    row says so, and the larger problems of that sweep are not run for it. `timeout <= 0` runs
    everything in this process, without limit. Every row gets `backend` and `problem` keys.
    """
    rows = []
    for backend in backends:
        for problems in sweeps:
            rows += _sweep(task, backend, problems, timeout)
    return rows


def _sweep(task: Callable[[Any, Any], dict], backend: Any, problems: Sequence[Any], timeout: float) -> list[dict]:
    context = multiprocessing.get_context("spawn")  # forking a process running JAX or torch is unsafe
    results: Any = queue.Queue() if timeout <= 0 else context.Queue()
    process = None
    if timeout <= 0:
        _child(task, backend, problems, results)
    else:
        process = context.Process(target=_child, args=(task, backend, problems, results), daemon=True)
        process.start()
    rows, stopped = [], False
    for problem in problems:
        if stopped:
            row = {"status": "not run (timed out on a smaller problem)"}
        else:
            try:
                row = results.get(timeout=timeout if timeout > 0 else None)
            except queue.Empty:
                stopped, row = True, {"status": f"timed out (> {timeout:g} s)"}
        rows.append({"backend": repr(backend), "problem": problem, **row})
    if process is not None:
        process.kill()
        process.join()
    return rows


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            return f"{seconds / scale:.3g} {unit}"
    raise AssertionError("unreachable")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Columns aligned; a shorter row (a backend that did not run) ends with a note as long as it needs."""
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells if len(row) == len(headers)) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
