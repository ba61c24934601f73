"""Overhead of prepared anydiff calls on MyGrad against MyGrad's own calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and
1 000, on NumPy inputs. The native side is what a MyGrad user writes for the same work, each
with MyGrad's memory guard on (its default) and off (`mg.mem_guard_off`, as anydiff runs it),
the faster kept: `Tensor(x)`, `f`, `y.backward()` and `x.grad`; a pullback is `y.backward(u)`;
a Jacobian one recording and backward pass per row (MyGrad clears its graph after each); MyGrad
has no forward mode, so a pushforward is that Jacobian times `t`. Calls are timed in alternation
in one process; the ratios of the medians and of the minimums (the least disturbed samples) are
reported, and the targets checked on the minimums.

    python benchmarks/overhead_mygrad.py [--quick]

Targets (issue 21, as for the other backends): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import statistics
import sys

import numpy as np
from _timing import fastest, fmt_time, interleaved, save, table

import anydiff as ad


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def routes(n):
    import mygrad as mg

    rng = np.random.default_rng(0)
    x, t = rng.uniform(-1, 1, (2, n))
    seeds = np.eye(n)

    def value_and_grad(x):
        xt = mg.Tensor(x)
        y = energy(xt)
        y.backward()
        return y.data, xt.grad

    def vjp(x, u):
        xt = mg.Tensor(x)
        stretch(xt).backward(u)
        return xt.grad

    def jacobian(x):
        return np.stack([vjp(x, e) for e in seeds])

    def guarded_and_not(fn):
        def unguarded():
            with mg.mem_guard_off:
                return fn()

        return {"guard on": fn, "guard off": unguarded}

    natives = {
        "gradient": guarded_and_not(lambda: value_and_grad(x)[1]),
        "value_and_gradient": guarded_and_not(lambda: value_and_grad(x)),
        "pushforward": guarded_and_not(lambda: jacobian(x) @ t),
        "pullback": guarded_and_not(lambda: vjp(x, t)),
        "jacobian": guarded_and_not(lambda: jacobian(x)),
    }
    return x, t, natives


def ours(op, b, x, t):
    f = energy if op in ("gradient", "value_and_gradient") else stretch
    call = getattr(ad, op)
    if op in ("pushforward", "pullback"):
        prep = getattr(ad, f"prepare_{op}")(f, b, x, t)
        return lambda: call(f, b, x, t, prep=prep)
    prep = getattr(ad, f"prepare_{op.removeprefix('value_and_')}")(f, b, x)
    return lambda: call(f, b, x, prep=prep)


def main() -> None:
    quick = "--quick" in sys.argv
    backend = ad.AutoMyGrad()
    rows = []
    for n in (10, 1000):
        x, t, natives = routes(n)
        for op, candidates in natives.items():
            route, native = fastest(candidates, repeats=7, statistic=min)
            mine = ours(op, backend, x, t)
            (native_median, native_min), (ours_median, ours_min) = interleaved(
                [native, mine],
                repeats=11 if quick else 41,
                target=0.005,
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
                    "target": f"<= {target}",
                    "met": "yes" if ratio_min <= target else "no",
                    "native_s": native_median,
                    "anydiff_s": ours_median,
                    "native_min_s": native_min,
                    "anydiff_min_s": ours_min,
                }
            )
            print(f"  n={n:<5} {op:19} {ratio:.3f} {ratio_min:.3f}", file=sys.stderr)
    columns = ["n", "operator", "native route", "native", "anydiff", "ratio", "ratio of minimums", "target", "met"]
    print(table(rows, columns))
    print(f"\nwritten to {save('overhead_mygrad', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
