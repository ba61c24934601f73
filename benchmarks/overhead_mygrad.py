"""Overhead of prepared anydiff calls on MyGrad against MyGrad's own calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and
1 000, on NumPy inputs. The native side is what a MyGrad user writes for the same work, each
with MyGrad's memory guard on (its default) and off (`mg.mem_guard_off`, as anydiff runs it),
the faster kept: `Tensor(x)`, `f`, `y.backward()` and `x.grad`; a pullback is `y.backward(u)`;
a Jacobian one recording and backward pass per row (MyGrad clears its graph after each); MyGrad
has no forward mode, so a pushforward is that Jacobian times `t`. Timing and targets:
`_overhead.py`.

    python benchmarks/overhead_mygrad.py [--quick]
"""

from __future__ import annotations

import os
import sys

import numpy as np
from _overhead import COLUMNS, energy, prepared_call, row, stretch
from _timing import save, table

import anydiff as ad


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


def main() -> None:
    quick = "--quick" in sys.argv
    backend = ad.AutoMyGrad()
    rows = []
    for n in (10, 1000):
        x, t, natives = routes(n)
        for op, candidates in natives.items():
            mine = prepared_call(op, backend, x, t)
            rows.append(row(n, op, candidates, mine, repeats=11 if quick else 41, target_seconds=0.005))
    print(table(rows, COLUMNS))
    print(f"\nwritten to {save('overhead_mygrad', rows, {'quick': quick, 'load': os.getloadavg()})}")


if __name__ == "__main__":
    main()
