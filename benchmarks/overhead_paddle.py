"""Overhead of prepared anydiff calls on PaddlePaddle against Paddle's own calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and
1 000, with Paddle tensors and with NumPy inputs (the native side then converts as a user would,
`paddle.to_tensor` in and `.numpy()` out). The native side is what a Paddle user writes in the
dynamic graph: a leaf with `stop_gradient=False`, `f`, and `paddle.grad` (with `grad_outputs`
for a pullback, `retain_graph=True` for the rows of a Jacobian). Paddle's forward mode
(`paddle.incubate.autograd.jvp`) and `paddle.autograd.jacobian` differentiate with
`create_graph=True`, which fails on `cumsum` (no second derivative in Paddle): a native
pushforward is the Jacobian's rows times `t`, as anydiff's. Timing, targets and the `floor`
column: `_overhead.py`.

    python benchmarks/overhead_paddle.py [--quick]
"""

from __future__ import annotations

import os
import sys

import numpy as np
from _overhead import COLUMNS, energy, prepared_call, row, stretch, tangent_of
from _timing import save, table

import anydiff as ad


def routes(n, kind):
    from anydiff._libraries.paddle.load import load_paddle

    paddle = load_paddle()
    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "paddle":
        x, t = paddle.to_tensor(x_np), paddle.to_tensor(t_np)
        inp, out = (lambda a: a), (lambda r: r)
    else:
        x, t = x_np, t_np
        inp, out = paddle.to_tensor, (lambda r: r.numpy())
    seeds = paddle.eye(n, dtype="float64")

    def leaf(a):
        a = inp(a).detach()
        a.stop_gradient = False
        return a

    def value_and_grad(a):
        xt = leaf(a)
        y = energy(xt)
        (g,) = paddle.grad([y], [xt])
        return out(y.detach()), out(g)

    def vjp(a, u):
        xt = leaf(a)
        (g,) = paddle.grad([stretch(xt)], [xt], grad_outputs=[inp(u)])
        return out(g)

    def rows(a):
        xt = leaf(a)
        y = stretch(xt)
        return paddle.stack([paddle.grad([y], [xt], grad_outputs=[seeds[i]], retain_graph=True)[0] for i in range(n)])

    natives = {
        "gradient": {"paddle.grad": lambda: value_and_grad(x)[1]},
        "value_and_gradient": {"paddle.grad": lambda: value_and_grad(x)},
        "pushforward": {"rows @ t": lambda: out(paddle.matmul(rows(x), inp(t)))},
        "pullback": {"paddle.grad(grad_outputs)": lambda: vjp(x, t)},
        "jacobian": {"rows of paddle.grad": lambda: out(rows(x))},
    }
    return x, t, natives


def main() -> None:
    quick = "--quick" in sys.argv
    backend = ad.AutoPaddle()
    rows = []
    for kind in ("paddle", "numpy"):
        for n in (10, 1000):
            x, t, natives = routes(n, kind)
            for op, candidates in natives.items():
                mine, tangent = prepared_call(op, backend, x, t), tangent_of(op, t)
                rows.append(
                    row(
                        n,
                        op,
                        candidates,
                        mine,
                        repeats=11 if quick else 41,
                        target_seconds=0.005,
                        floor=(x, tangent),
                        input=kind,
                    )
                )
    print(table(rows, ["input", *COLUMNS, "floor"]))
    print(f"\nwritten to {save('overhead_paddle', rows, {'quick': quick, 'load': os.getloadavg()})}")


if __name__ == "__main__":
    main()
