"""What the overhead benchmarks of one backend against its library's own calls share.

A benchmark names, per size and operator, the native routes a user of the library would write
for the same work (`{route name: call}`); `row` times them all and the prepared anydiff call in
alternation in one process, keeps the route with the smallest median, and reports the ratio of
the medians and the paired ratio (`_timing.paired_ratio`: the median of the ratios of samples
taken in the same round, the steadiest on a shared machine), on which the targets are checked,
with its 95 % confidence interval (`_timing.paired_interval`).

Targets (issue 21, as for the other backends): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from typing import Any

from _timing import fmt_time, interleaved, paired_interval, paired_ratio

import anydiff as ad

#: the columns of the printed table (after any the benchmark puts first)
COLUMNS = [
    "n", "operator", "native route", "native", "anydiff", "ratio", "paired ratio", "95% interval", "target", "met"
]  # fmt: skip


def energy(x: Any) -> Any:
    """A scalar function: `Σ sin² x`."""
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def stretch(x: Any) -> Any:
    """A vector function with a dense Jacobian: `sin x · cumsum x`."""
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def tangent_of(operator: str, t: Any) -> Any:
    """The tangent a call of `operator` takes: `t` for pushforward and pullback, else `None`."""
    return t if operator in ("pushforward", "pullback") else None


def prepared_call(operator: str, backend: Any, x: Any, t: Any) -> Callable[[], Any]:
    """The prepared anydiff call of `operator` (of `energy` for scalar operators, else `stretch`)."""
    f = energy if operator in ("gradient", "value_and_gradient", "hessian") else stretch
    call = getattr(ad, operator)
    if operator in ("pushforward", "pullback"):
        prep = getattr(ad, f"prepare_{operator}")(f, backend, x, t)
        return lambda: call(f, backend, x, t, prep=prep)
    prep = getattr(ad, f"prepare_{operator.removeprefix('value_and_')}")(f, backend, x)
    return lambda: call(f, backend, x, prep=prep)


def checked_front(native: Callable[[], Any], x: Any, t: Any = None) -> Callable[[], Any]:
    """`native` behind the least that a front with anydiff's contract does on each call: a public
    function `(f, backend, x, t, *contexts, prep=...)` that checks the prep's signature (`f`,
    backend, no contexts, the type, shape and dtype of `x` and of the tangent) before calling.

    Its ratio to `native` (the `floor` column) is what any checked Python front costs, whoever
    writes it: where anydiff's ratio is at that floor, no front of this contract does better.
    """
    x_type, x_shape, x_dtype = type(x), x.shape, x.dtype
    t_shape, t_dtype = (None, None) if t is None else (t.shape, t.dtype)
    token = object()

    def front(f: Any, backend: Any, x: Any, t: Any = None, *contexts: Any, prep: Any = None) -> Any:
        if (
            prep is token
            and f is energy
            and backend is None
            and not contexts
            and type(x) is x_type
            and x.shape == x_shape
            and ((d := x.dtype) is x_dtype or d == x_dtype)  # MLX: equal dtypes, not identical
            and (
                t is None or (type(t) is x_type and t.shape == t_shape and ((d := t.dtype) is t_dtype or d == t_dtype))
            )
        ):
            return native()
        raise TypeError("not the prepared signature")

    return lambda: front(energy, None, x, t, prep=token)


def row(
    n: int,
    operator: str,
    natives: dict[str, Callable[[], Any]],
    mine: Callable[[], Any],
    *,
    repeats: int,
    target_seconds: float,
    checked: bool = True,
    floor: tuple[Any, Any] | None = None,
    **labels: Any,
) -> dict[str, Any]:
    """One row of the table: the fastest native route against `mine`, timed in alternation.

    `checked=False` for a size the targets do not speak of; `labels` go first in the row.
    `floor`, the `(x, t)` of the call (`t` as `tangent_of` gives it), puts each native route behind
    the least a front must do with them (`checked_front`): each such front is timed in the same
    alternation, and the chosen route's gives the `floor` column.
    """
    # Every native route is timed in the same alternation as `mine` and the one with the smallest
    # median kept: picked beforehand from a few samples, a route slowed down by chance then made
    # the ratio look better than it is (0.70 for a TensorFlow pullback in one run).
    fronts = [checked_front(fn, *floor) for fn in natives.values()] if floor is not None else []
    *found, ours = interleaved(
        [*natives.values(), *fronts, mine], repeats=repeats, target=target_seconds, statistic=list
    )
    index = min(range(len(natives)), key=lambda i: statistics.median(found[i]))
    native, route = found[index], list(natives)[index]
    native_median, ours_median = statistics.median(native), statistics.median(ours)
    target = 1.10 if n <= 10 else 1.02
    ratio, paired = ours_median / native_median, paired_ratio(ours, native)
    print(f"  {' '.join(map(str, labels.values()))} n={n:<5} {operator:19} {ratio:.3f} {paired:.3f}", file=sys.stderr)
    floor_column = {"floor": f"{paired_ratio(found[len(natives) + index], native):.3f}"} if fronts else {}
    return {
        **labels,
        "n": n,
        "operator": operator,
        "native route": route,
        "native": fmt_time(native_median),
        "anydiff": fmt_time(ours_median),
        "ratio": f"{ratio:.3f}",
        "paired ratio": f"{paired:.3f}",
        "95% interval": paired_interval(ours, native),
        "target": f"<= {target}" if checked else "-",
        "met": ("yes" if paired <= target else "no") if checked else "-",
        **floor_column,
        "native_s": native_median,
        "anydiff_s": ours_median,
    }
