"""Shared timing helpers for the benchmarks: interleaved measurement, paired ratios, tables."""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def one_core() -> int:
    """Run this process, and the threads it starts from now on, on one core (the last one it
    may use); that core's number."""
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def calls_per_sample(fn: Callable[[], Any], target: float = 0.02) -> int:
    """How many calls of `fn` take about `target` seconds (at least one)."""
    fn()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= target or number >= 1 << 20:
            return max(1, int(number * target / max(elapsed, 1e-9)))
        number *= 4


def interleaved(
    fns: Sequence[Callable[[], Any]],
    repeats: int = 15,
    target: float = 0.02,
    statistic: Callable[[list[float]], Any] = statistics.median,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Any]:
    """Median seconds per call of each function, measured in alternation so that the machine's
    drift (other processes, frequency changes) hits every function alike.

    Another `statistic` of each function's samples may be asked for: `min`, the least disturbed
    sample, says more than the median on a machine busy with other work. Another `clock` too:
    `time.process_time`, the CPU time of this process, leaves out the time other processes hold
    the cores (for work done in one thread, with nothing waited for).
    """
    numbers = [calls_per_sample(fn, target) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    order, shuffle = list(range(len(fns))), random.Random(0).shuffle
    for _ in range(repeats):
        # A new order each round (the same in every run): a place in the round can be worth a few
        # per cent (3 % for TensorFlow at 140 µs a call), and so can the function called just
        # before (a torch Jacobian of 8 MB after another route's, 5-7 %), which a fixed order,
        # or one rotated each round, would make fall on one function.
        shuffle(order)
        for i in order:
            fn, number = fns[i], numbers[i]
            start = clock()
            for _ in range(number):
                fn()
            samples[i].append((clock() - start) / number)
    return [statistic(s) for s in samples]


def paired_ratio(ours: Sequence[float], native: Sequence[float]) -> float:
    """The median, over the rounds of `interleaved` (`statistic=list`), of the ratio of two
    functions' samples taken in the same round.

    A drift of the machine (other processes, frequency changes) slows both samples of a round
    alike and cancels in their ratio, and the median leaves out the rounds one of them was
    disturbed in. In three runs of the same five JAX rows at n = 1 000, the paired ratio of a row
    moved by 0.01-0.08 (0.03 for most), the ratio of the minimums, one lucky sample of each, by
    0.06-0.22.
    """
    return statistics.median(a / b for a, b in zip(ours, native, strict=True))


def paired_interval(ours: Sequence[float], native: Sequence[float]) -> str:
    """A 95 % confidence interval of `paired_ratio`, as `"low-high"`: the order statistics of the
    per-round ratios that bracket their median with 95 % probability (the binomial distribution
    of how many fall below it; no assumption on their distribution, the rounds taken as
    independent). It says whether a row a little over its target is over it, or within the
    noise of its run: with 61 rounds it spans ranks 22-40 of 61.
    """
    ratios = sorted(a / b for a, b in zip(ours, native, strict=True))
    m = len(ratios)
    spread = 1.96 * math.sqrt(m)
    low, high = max(0, math.floor((m - spread) / 2) - 1), min(m - 1, math.ceil(1 + (m + spread) / 2) - 1)
    return f"{ratios[low]:.3f}-{ratios[high]:.3f}"


def fastest(
    routes: dict[str, Callable[[], Any]],
    repeats: int = 7,
    statistic: Callable[[list[float]], float] = statistics.median,
) -> tuple[str, Callable[[], Any]]:
    """The name and function of the fastest of several native routes for the same work."""
    times = interleaved(list(routes.values()), repeats=repeats, target=0.01, statistic=statistic)
    name = min(zip(times, routes, strict=True), key=lambda p: p[0])[1]
    return name, routes[name]


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, rule, *body])


def save(name: str, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"meta": {"cpu_count": os.cpu_count(), **(meta or {})}, "rows": rows}
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
