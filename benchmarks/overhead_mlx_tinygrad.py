"""Overhead of prepared anydiff calls on MLX and tinygrad against the fastest native route.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and 1 000,
with inputs of the library's own array kind and with NumPy inputs, on the functions of
`overhead.py`. The native side is the fastest of the library's routes for the same work (compiled
or not), including, for NumPy inputs, the conversions a user would write; neither library has a
Jacobian of its own, so its native route is the batched primitives (MLX: `vmap` of `jvp` or `vjp`)
or the compiled pullback replayed per row (tinygrad), written by hand. Every result is evaluated
(`mx.eval`, `.realize()`). Calls are timed in alternation in one process: ratio of medians, and
paired ratio (`_timing.paired_ratio`, steadier on a busy machine), on which targets are checked;
the `floor` column is the paired ratio of the native route behind a checked front
(`_overhead.checked_front`). The process runs on one core (`_timing.one_core`): MLX has no
setting for its number of threads, where the other benchmarks run each library on one thread,
and its CPU stream's thread, on a second core shared with other work, made calls twice as slow
and their times spread by ±30 %.

tinygrad's `TinyJit` returns the same output tensors from every call, overwritten by the next one;
anydiff copies its results out of them. The "kept" column compares with a native call that keeps
its result too (`.numpy()` for NumPy inputs, a fresh tensor of the copied values otherwise).

    DEV=CPU python benchmarks/overhead_mlx_tinygrad.py [--quick] [--repeats N] [mlx|tinygrad]

Targets (issue 9): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import json
import os
import statistics
import sys

import numpy as np
from _overhead import checked_front, tangent_of
from _timing import RESULTS, fastest, fmt_time, interleaved, one_core, paired_interval, paired_ratio, save, table
from overhead import energy, stretch

import anydiff as ad

OPERATORS = ("gradient", "value_and_gradient", "pushforward", "pullback", "jacobian")


def mlx_routes(n: int, kind: str) -> tuple:
    import mlx.core as mx

    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "mlx":
        x, t = mx.array(x_np, dtype=mx.float64), mx.array(t_np, dtype=mx.float64)
        inp, out = (lambda a: a), (lambda r: r)
    else:
        x, t = x_np, t_np
        inp, out = (lambda a: mx.array(a, dtype=mx.float64)), np.asarray
    eye = mx.eye(n, dtype=mx.float64)

    def jvp(x: object, t: object) -> object:
        return mx.jvp(stretch, [x], [t])[1][0]

    def vjp(x: object, u: object) -> object:
        return mx.vjp(stretch, [x], [u])[1][0]

    def jacfwd(x: object) -> object:
        return mx.vmap(lambda t: jvp(x, t), out_axes=1)(eye)

    def jacrev(x: object) -> object:
        return mx.vmap(lambda u: vjp(x, u))(eye)

    def both(fn: object) -> dict:
        """The function eagerly and under `mx.compile`, evaluated."""
        compiled = mx.compile(fn)

        def run(f: object) -> object:
            def call() -> object:
                r = f(*(inp(a) for a in args))
                mx.eval(r)
                return tuple(map(out, r)) if isinstance(r, tuple) else out(r)

            return call

        args = (x, t) if fn in (jvp, vjp) else (x,)
        return {"compile": run(compiled), "eager": run(fn)}

    natives = {
        "gradient": both(mx.grad(energy)),
        "value_and_gradient": both(mx.value_and_grad(energy)),
        "pushforward": both(jvp),
        "pullback": both(vjp),
        "jacobian": {
            f"{name} {mode}": route
            for name, fn in (("vmap(jvp)", jacfwd), ("vmap(vjp)", jacrev))
            for mode, route in both(fn).items()
        },
    }
    # NumPy results are computed already: `mx.eval` would cost 0.5 µs for nothing
    return ad.AutoMLX(), x, t, natives, mx.eval if kind == "mlx" else (lambda r: r)


def tinygrad_routes(n: int, kind: str) -> tuple:
    from tinygrad import Tensor, TinyJit, Variable

    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "tinygrad":
        x, t = Tensor(x_np).realize(), Tensor(t_np).realize()
        inp = lambda a: a  # noqa: E731
        keep = lambda r: Tensor(r.numpy())  # noqa: E731
    else:
        x, t = x_np, t_np
        inp = Tensor
        keep = lambda r: r.numpy()  # noqa: E731

    def gradient(x: object) -> object:
        return energy(x).gradient(x)[0]

    def value_and_gradient(x: object) -> tuple:
        y = energy(x)
        return y, y.gradient(x)[0]

    def jvp(x: object, t: object) -> object:  # the double VJP: there is no forward mode
        y = stretch(x)
        seed = Tensor.zeros(*y.shape, dtype=y.dtype).contiguous()
        return (y.gradient(x, gradient=seed)[0] * t).sum().gradient(seed)[0]

    def vjp(x: object, u: object) -> object:
        return stretch(x).gradient(x, gradient=u)[0]

    def realized(fn: object) -> object:
        def run(*args: object) -> object:
            r = fn(*args)
            return tuple(v.realize() for v in r) if isinstance(r, tuple) else r.realize()

        return run

    def routes(fn: object, with_t: bool = False) -> dict:
        jitted, eager = TinyJit(realized(fn)), realized(fn)

        def call(f: object, kept: bool) -> object:
            def run() -> object:
                r = f(inp(x), inp(t)) if with_t else f(inp(x))
                if not kept:
                    return r
                return tuple(map(keep, r)) if isinstance(r, tuple) else keep(r)

            return run

        return {"TinyJit": call(jitted, False), "TinyJit kept": call(jitted, True), "eager kept": call(eager, True)}

    seeds = Tensor(np.eye(n)).realize()
    row_index = Variable("row", 0, n - 1)
    row = TinyJit(realized(lambda x, seeds, i: vjp(x, seeds[i])))

    def jacobian_rows(kept: bool) -> object:
        def run() -> object:
            xi = inp(x)
            rows = np.stack([row(xi, seeds, row_index.bind(i)).numpy() for i in range(n)])
            return Tensor(rows) if kept and kind == "tinygrad" else rows

        return run

    natives = {
        "gradient": routes(gradient),
        "value_and_gradient": routes(value_and_gradient),
        "pushforward": routes(jvp, with_t=True),
        "pullback": routes(vjp, with_t=True),
        "jacobian": {"TinyJit rows": jacobian_rows(False), "TinyJit rows kept": jacobian_rows(True)},
    }
    return ad.AutoTinygrad(), x, t, natives, lambda r: r


def ours(op: str, b: object, x: object, t: object, sync: object) -> object:
    f = energy if op in ("gradient", "value_and_gradient") else stretch
    call = getattr(ad, op)
    if op in ("pushforward", "pullback"):
        prep = getattr(ad, f"prepare_{op}")(f, b, x, t)
        return lambda: sync(call(f, b, x, t, prep=prep))
    prep = getattr(ad, f"prepare_{op.removeprefix('value_and_')}")(f, b, x)
    return lambda: sync(call(f, b, x, prep=prep))


def main() -> None:
    args = sys.argv[1:]
    core = one_core()
    quick = "--quick" in args
    # MLX's calls of 20-50 µs: many rounds for the paired ratio; tinygrad's of up to 0.8 s: fewer
    default = {"mlx": 11 if quick else 121, "tinygrad": 11 if quick else 41}
    given = int(args[args.index("--repeats") + 1]) if "--repeats" in args else None
    libraries = (("mlx", mlx_routes, ("mlx", "numpy")), ("tinygrad", tinygrad_routes, ("tinygrad", "numpy")))
    chosen = [lib for lib in libraries if lib[0] in args] or libraries
    rows = []
    for library, make_routes, kinds in chosen:
        repeats = given or default[library]
        for kind in kinds:
            for n in (10, 1000):
                b, x, t, natives, sync = make_routes(n, kind)
                for op in OPERATORS:
                    candidates = natives[op]
                    kept = {k: v for k, v in candidates.items() if "kept" in k or library == "mlx"}
                    route, native = fastest(candidates)
                    kept_route, native_kept = fastest(kept)
                    mine = ours(op, b, x, t, sync)
                    front = checked_front(native, x, tangent_of(op, t))
                    s_native, s_kept, s_front, s_ours = interleaved(
                        [native, native_kept, front, mine], repeats=repeats, statistic=list
                    )
                    t_native, t_kept, t_ours = map(statistics.median, (s_native, s_kept, s_ours))
                    target = 1.10 if n <= 10 else 1.02
                    ratio, paired = t_ours / t_native, paired_ratio(s_ours, s_native)
                    rows.append(
                        {
                            "library": library,
                            "input": kind,
                            "n": n,
                            "operator": op,
                            "native route": route,
                            "native": fmt_time(t_native),
                            "anydiff": fmt_time(t_ours),
                            "ratio": f"{ratio:.3f}",
                            "paired ratio": f"{paired:.3f}",
                            "95% interval": paired_interval(s_ours, s_native),
                            "target": f"<= {target}",
                            "met": "yes" if paired <= target else "no",
                            "floor": f"{paired_ratio(s_front, s_native):.3f}",
                            "kept route": kept_route,
                            "ratio kept": f"{t_ours / t_kept:.3f}",
                            "native_s": t_native,
                            "native_kept_s": t_kept,
                            "anydiff_s": t_ours,
                        }
                    )
                    print(
                        f"  {library:8} {kind:8} n={n:<5} {op:19} {ratio:.3f} (paired {paired:.3f}, "
                        f"kept {t_ours / t_kept:.3f})",
                        file=sys.stderr,
                    )
    columns = [
        "library",
        "input",
        "n",
        "operator",
        "native route",
        "native",
        "anydiff",
        "ratio",
        "paired ratio",
        "95% interval",
        "target",
        "met",
        "floor",
        "kept route",
        "ratio kept",
    ]
    print(table(rows, columns))
    # A run of one library keeps the other's rows of the last full run.
    previous = RESULTS / "overhead_mlx_tinygrad.json"
    if len(chosen) < len(libraries) and previous.exists():
        names = {lib[0] for lib in chosen}
        rows += [r for r in json.loads(previous.read_text())["rows"] if r["library"] not in names]
    meta = {"quick": quick, "repeats": given or default, "core": core, "load": os.getloadavg()}
    print(f"\nwritten to {save('overhead_mlx_tinygrad', rows, meta)}")


if __name__ == "__main__":
    main()
