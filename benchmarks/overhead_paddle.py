"""Overhead of prepared anydiff calls on PaddlePaddle against Paddle's own calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and
1 000, with Paddle tensors and with NumPy inputs (the native side then converts as a user would,
`paddle.to_tensor` in and `.numpy()` out). The native side is what a Paddle user writes in the
dynamic graph: a leaf with `stop_gradient=False`, `f`, and `paddle.grad` (with `grad_outputs`
for a pullback, `retain_graph=True` for the rows of a Jacobian). Paddle's forward mode
(`paddle.incubate.autograd.jvp`) and `paddle.autograd.jacobian` differentiate with
`create_graph=True`, which fails on `cumsum` (no second derivative in Paddle): a native
pushforward is the Jacobian's rows times `t`, as anydiff's. Calls are timed in alternation in
one process; the ratios of the medians and of the minimums (the least disturbed samples) are
reported, and the targets checked on the minimums.

    python benchmarks/overhead_paddle.py [--quick]

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
    backend = ad.AutoPaddle()
    rows = []
    for kind in ("paddle", "numpy"):
        for n in (10, 1000):
            x, t, natives = routes(n, kind)
            for op, candidates in natives.items():
                route, native = fastest(candidates, repeats=5, statistic=min)
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
                        "input": kind,
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
                print(f"  {kind:7} n={n:<5} {op:19} {ratio:.3f} {ratio_min:.3f}", file=sys.stderr)
    columns = ["input", "n", "operator", "native route", "native", "anydiff", "ratio", "ratio of minimums"]
    print(table(rows, [*columns, "target", "met"]))
    print(f"\nwritten to {save('overhead_paddle', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
