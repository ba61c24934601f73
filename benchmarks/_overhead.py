"""What the overhead benchmarks of one backend against its library's own calls share.

A benchmark names, per size and operator, the native routes a user of the library would write
for the same work (`{route name: call}`); `row` times them all and the prepared anydiff call in
alternation in one process, keeps the route with the smallest minimum, and reports the ratios
of the medians and of the minimums (the least disturbed samples, on which the targets are
checked).

Targets (issue 21, as for the other backends): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

from _timing import fmt_time, interleaved

import anydiff as ad

#: the columns of the printed table (after any the benchmark puts first)
COLUMNS = ["n", "operator", "native route", "native", "anydiff", "ratio", "ratio of minimums", "target", "met"]


def energy(x: Any) -> Any:
    """A scalar function: `Σ sin² x`."""
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def stretch(x: Any) -> Any:
    """A vector function with a dense Jacobian: `sin x · cumsum x`."""
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def prepared_call(operator: str, backend: Any, x: Any, t: Any) -> Callable[[], Any]:
    """The prepared anydiff call of `operator` (of `energy` for scalar operators, else `stretch`)."""
    f = energy if operator in ("gradient", "value_and_gradient", "hessian") else stretch
    call = getattr(ad, operator)
    if operator in ("pushforward", "pullback"):
        prep = getattr(ad, f"prepare_{operator}")(f, backend, x, t)
        return lambda: call(f, backend, x, t, prep=prep)
    prep = getattr(ad, f"prepare_{operator.removeprefix('value_and_')}")(f, backend, x)
    return lambda: call(f, backend, x, prep=prep)


def row(
    n: int,
    operator: str,
    natives: dict[str, Callable[[], Any]],
    mine: Callable[[], Any],
    *,
    repeats: int,
    target_seconds: float,
    checked: bool = True,
    **labels: Any,
) -> dict[str, Any]:
    """One row of the table: the fastest native route against `mine`, timed in alternation.

    `checked=False` for a size the targets do not speak of; `labels` go first in the row.
    """
    # Every native route is timed in the same alternation as `mine` and the one with the smallest
    # minimum kept: picked beforehand from a few samples, a route slowed down by chance then made
    # the ratio look better than it is (0.70 for a TensorFlow pullback in one run).
    *found, (ours_median, ours_min) = interleaved(
        [*natives.values(), mine],
        repeats=repeats,
        target=target_seconds,
        statistic=lambda s: (statistics.median(s), min(s)),
    )
    (native_median, native_min), route = min(zip(found, natives, strict=True), key=lambda p: p[0][1])
    target = 1.10 if n <= 10 else 1.02
    ratio, ratio_min = ours_median / native_median, ours_min / native_min
    print(
        f"  {' '.join(map(str, labels.values()))} n={n:<5} {operator:19} {ratio:.3f} {ratio_min:.3f}", file=sys.stderr
    )
    return {
        **labels,
        "n": n,
        "operator": operator,
        "native route": route,
        "native": fmt_time(native_median),
        "anydiff": fmt_time(ours_median),
        "ratio": f"{ratio:.3f}",
        "ratio of minimums": f"{ratio_min:.3f}",
        "target": f"<= {target}" if checked else "-",
        "met": ("yes" if ratio_min <= target else "no") if checked else "-",
        "native_s": native_median,
        "anydiff_s": ours_median,
        "native_min_s": native_min,
        "anydiff_min_s": ours_min,
    }
