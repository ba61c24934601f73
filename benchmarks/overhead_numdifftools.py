"""Overhead of prepared anydiff calls on numdifftools against numdifftools' own calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian, hessian) at n = 10
and 1 000 (the Jacobian and Hessian, which cost 30 n and 30 n² evaluations of `f`, at n = 10 and
100 only), on NumPy inputs. The native side is what a user of numdifftools writes for the same
work: `nd.Gradient(f)(x)`, `nd.Jacobian(f)(x)`, `nd.Derivative` of `h -> f(x + h t)` (or
`nd.directionaldiff`, the fastest kept), `u @ nd.Jacobian(f)(x)`, `nd.Hessian(f)(x)`. Calls are
timed in alternation in one process; the ratios of the medians and of the minimums (the least
disturbed samples) are reported, and the targets checked on the minimums.

    python benchmarks/overhead_numdifftools.py [--quick]

Targets (issue 21, as for the other backends): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import statistics
import sys

import numpy as np
from _timing import fastest, fmt_time, interleaved, save, table

import anydiff as ad


def energy(x):
    return np.sum(np.sin(x) ** 2)


def stretch(x):
    return np.sin(x) * np.cumsum(x)


def routes(n):
    import numdifftools as nd

    rng = np.random.default_rng(0)
    x, t = rng.uniform(-1, 1, (2, n))
    natives = {
        "gradient": {"nd.Gradient": lambda: nd.Gradient(energy)(x)},
        "value_and_gradient": {"f, nd.Gradient": lambda: (energy(x), nd.Gradient(energy)(x))},
        "pushforward": {
            "nd.Derivative(h -> f(x + h t))": lambda: nd.Derivative(lambda h: stretch(x + h * t))(0.0),
            "nd.directionaldiff": lambda: nd.directionaldiff(stretch, x, t),
        },
        "pullback": {"u @ nd.Jacobian": lambda: t @ nd.Jacobian(stretch)(x)},
        "jacobian": {"nd.Jacobian": lambda: nd.Jacobian(stretch)(x)},
        "hessian": {"nd.Hessian": lambda: nd.Hessian(energy)(x)},
    }
    if n > 100:  # 30 n (Jacobian) and 30 n² (Hessian) evaluations: seconds to minutes
        del natives["jacobian"], natives["hessian"], natives["pullback"]
    return x, t, natives


def ours(op, b, x, t):
    f = energy if op in ("gradient", "value_and_gradient", "hessian") else stretch
    call = getattr(ad, op)
    if op in ("pushforward", "pullback"):
        prep = getattr(ad, f"prepare_{op}")(f, b, x, t)
        return lambda: call(f, b, x, t, prep=prep)
    prep = getattr(ad, f"prepare_{op.removeprefix('value_and_')}")(f, b, x)
    return lambda: call(f, b, x, prep=prep)


def main() -> None:
    quick = "--quick" in sys.argv
    backend = ad.AutoNumdifftools()
    rows = []
    for n in (10, 100, 1000):
        x, t, natives = routes(n)
        for op, candidates in natives.items():
            if n == 100 and op not in ("jacobian", "hessian", "pullback"):
                continue
            route, native = fastest(candidates, repeats=5, statistic=min)
            mine = ours(op, backend, x, t)
            (native_median, native_min), (ours_median, ours_min) = interleaved(
                [native, mine],
                repeats=7 if quick else 21,
                target=0.05,
                statistic=lambda s: (statistics.median(s), min(s)),
            )
            target = 1.10 if n <= 10 else 1.02
            ratio, ratio_min = ours_median / native_median, ours_min / native_min
            rows.append(
                {
                    "n": n,
                    "operator": op,
                    "native route": route,
                    "native": fmt_time(native_median),
                    "anydiff": fmt_time(ours_median),
                    "ratio": f"{ratio:.3f}",
                    "ratio of minimums": f"{ratio_min:.3f}",
                    "target": f"<= {target}" if n in (10, 1000) else "-",
                    "met": ("yes" if ratio_min <= target else "no") if n in (10, 1000) else "-",
                    "native_s": native_median,
                    "anydiff_s": ours_median,
                    "native_min_s": native_min,
                    "anydiff_min_s": ours_min,
                }
            )
            print(f"  n={n:<5} {op:19} {ratio:.3f} {ratio_min:.3f}", file=sys.stderr)
    columns = ["n", "operator", "native route", "native", "anydiff", "ratio", "ratio of minimums", "target", "met"]
    print(table(rows, columns))
    print(f"\nwritten to {save('overhead_numdifftools', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
