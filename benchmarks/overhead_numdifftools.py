"""Overhead of prepared anydiff calls on numdifftools against numdifftools' own calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian, hessian) at n = 10
and 1 000 (the Jacobian and Hessian, which cost 30 n and 30 n² evaluations of `f`, at n = 10 and
100 only), on NumPy inputs. The native side is what a user of numdifftools writes for the same
work: `nd.Gradient(f)(x)`, `nd.Jacobian(f)(x)`, `nd.Derivative` of `h -> f(x + h t)` (or
`nd.directionaldiff`, the fastest kept), `u @ nd.Jacobian(f)(x)`, `nd.Hessian(f)(x)`. Timing and
targets: `_overhead.py`.

    python benchmarks/overhead_numdifftools.py [--quick]
"""

from __future__ import annotations

import sys

import numpy as np
from _overhead import COLUMNS, energy, prepared_call, row, stretch
from _timing import save, table

import anydiff as ad

#: the operators measured at each size: 30 n (Jacobian) and 30 n² (Hessian) evaluations of `f`
#: take seconds to minutes at n = 1 000
SIZES = {
    10: ("gradient", "value_and_gradient", "pushforward", "pullback", "jacobian", "hessian"),
    100: ("pullback", "jacobian", "hessian"),
    1000: ("gradient", "value_and_gradient", "pushforward"),
}


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
    return x, t, natives


def main() -> None:
    quick = "--quick" in sys.argv
    backend = ad.AutoNumdifftools()
    rows = []
    for n, operators in SIZES.items():
        x, t, natives = routes(n)
        for op in operators:
            mine = prepared_call(op, backend, x, t)
            checked = n in (10, 1000)
            rows.append(row(n, op, natives[op], mine, repeats=7 if quick else 21, target_seconds=0.05, checked=checked))
    print(table(rows, COLUMNS))
    print(f"\nwritten to {save('overhead_numdifftools', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
