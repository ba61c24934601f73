"""Overhead of prepared anydiff calls on MindSpore against MindSpore's own calls.

`gradient`, `value_and_gradient` and `pullback` at n = 10 and 1 000; `pushforward` and
`jacobian` (n pullbacks each) at n = 10 only: a MindSpore pullback costs milliseconds in PyNative
mode (it builds the backward graph on every call), so n = 1 000 rows take seconds per call.
With MindSpore tensors and with NumPy inputs (the native side then converts as a user would,
`mindspore.Tensor` in and `.asnumpy()` out). The native side is what a MindSpore user writes in
PyNative mode: `mindspore.grad` / `mindspore.value_and_grad` made once, `mindspore.vjp` per call
(its function called once per cotangent). MindSpore's forward mode (`mindspore.jvp`) and
`mindspore.jacrev` compile `f` from its source, which fails for these functions (they call
`ad.namespace`): a native pushforward is the rows of the Jacobian times `t`.

    python benchmarks/overhead_mindspore.py [--quick]
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from _overhead import COLUMNS, energy, prepared_call, row, stretch
from _timing import save, table

import anydiff as ad


def routes(n, kind):
    from anydiff._libraries.mindspore.load import load_mindspore

    ms = load_mindspore()
    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "mindspore":
        x, t = ms.Tensor(x_np), ms.Tensor(t_np)
        inp, out = (lambda a: a), (lambda r: r)
    else:
        x, t = x_np, t_np
        inp, out = ms.Tensor, (lambda r: r.asnumpy())
    seeds = ms.ops.eye(n, n, ms.float64)
    grad, value_and_grad = ms.grad(energy), ms.value_and_grad(energy)

    def vjp(a, u):
        return out(ms.vjp(stretch, inp(a))[1](inp(u))[0])

    def rows(a):
        pull = ms.vjp(stretch, inp(a))[1]
        with warnings.catch_warnings():  # "vjp_fn has been called multiple times"
            warnings.simplefilter("ignore", RuntimeWarning)
            return ms.ops.stack([pull(seeds[(i,)])[0] for i in range(n)])

    def both(a):
        y, g = value_and_grad(inp(a))
        return out(y), out(g)

    natives = {
        "gradient": {"mindspore.grad": lambda: out(grad(inp(x)))},
        "value_and_gradient": {"mindspore.value_and_grad": lambda: both(x)},
        "pullback": {"mindspore.vjp": lambda: vjp(x, t)},
    }
    if n <= 10:
        natives["pushforward"] = {"rows @ t": lambda: out(ms.ops.matmul(rows(x), inp(t)))}
        natives["jacobian"] = {"rows of mindspore.vjp": lambda: out(rows(x))}
    return x, t, natives


def main() -> None:
    quick = "--quick" in sys.argv
    backend = ad.AutoMindSpore()
    rows = []
    for kind in ("mindspore", "numpy"):
        for n in (10, 1000):
            x, t, natives = routes(n, kind)
            for op, candidates in natives.items():
                mine = prepared_call(op, backend, x, t)
                rows.append(row(n, op, candidates, mine, repeats=11 if quick else 41, target_seconds=0.05, input=kind))
    print(table(rows, ["input", *COLUMNS]))
    print(f"\nwritten to {save('overhead_mindspore', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
