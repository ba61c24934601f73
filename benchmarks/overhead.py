"""Overhead of prepared anydiff calls against the fastest native call of the same library.

For JAX and torch, each operator (gradient, value_and_gradient, pushforward, pullback, jacobian)
at n = 10, 1 000 and 100 000 (the dense Jacobian at n <= 1 000 only), with inputs of the
backend's own array kind and with NumPy inputs. The native side is the fastest of the library's
routes for the same work (for torch: the autograd tape, `torch.func`, forward-mode dual numbers),
including, for NumPy inputs, the conversions a user would write. Calls are timed in alternation
in one process (`_overhead.row`): the ratio of the medians and the paired ratio (the median of
the ratios of samples taken one after the other, on which the targets are checked) are
reported: these machines are too noisy for anything else. The `floor` column is the paired ratio
of the fastest native route behind the least a front with anydiff's contract must do on each
call (`_overhead.checked_front`: one more Python call with anydiff's signature, and the checks
of `f`, backend, contexts, and the type, shape and dtype of `x` and of the tangent), timed in the
same alternation.

A second case (issue 16) takes a tree `x`: the 50 parameters (a weight matrix and a bias per
layer) of a 25-layer tanh MLP, as a dict of dicts, about 500 numbers in all (width 4) and about
1e5 (width 63). The prepared `ad.gradient` is timed against `jax.jit(jax.grad(f))` and against
torch's `torch.func.grad` and tape (`torch.autograd.grad` over the leaves) on the same dict, for
inputs of the library's own kind and NumPy inputs (converted leaf by leaf on the native side).

    python benchmarks/overhead.py [--quick] [--case arrays|trees]

Targets: one array (issue 2), ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000; a tree of 50
leaves (issue 16), <= 1.3 at about 500 parameters and <= 1.05 at about 1e5. The two cases are
written to `results/overhead.json` and `results/overhead_trees.json`.
"""

from __future__ import annotations

import os
import statistics
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _overhead import COLUMNS, row, tangent_of  # noqa: E402
from _timing import fastest, fmt_time, interleaved, paired_interval, paired_ratio, save, table  # noqa: E402

import anydiff as ad  # noqa: E402


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def jax_routes(n, kind):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    with jax.enable_x64(True):
        x, t = (jnp.asarray(x_np), jnp.asarray(t_np)) if kind == "jax" else (x_np, t_np)
    out = (lambda r: r) if kind == "jax" else np.asarray

    def x64(fn):
        def run():
            with jax.enable_x64(True):
                return jax.block_until_ready(fn())

        return run

    grad = jax.jit(jax.grad(energy))
    vgrad = jax.jit(jax.value_and_grad(energy))
    jvp = jax.jit(lambda x, t: jax.jvp(stretch, (x,), (t,))[1])
    vjp = jax.jit(lambda x, u: jax.vjp(stretch, x)[1](u)[0])
    jac = jax.jit(jax.jacfwd(stretch))
    b = ad.AutoJAX()
    natives = {
        "gradient": {"jit(grad)": x64(lambda: out(grad(x)))},
        "value_and_gradient": {"jit(value_and_grad)": x64(lambda: tuple(map(out, vgrad(x))))},
        "pushforward": {"jit(jvp)": x64(lambda: out(jvp(x, t)))},
        "pullback": {"jit(vjp)": x64(lambda: out(vjp(x, t)))},
        "jacobian": {"jit(jacfwd)": x64(lambda: out(jac(x)))},
    }
    return b, x, t, natives, (lambda r: jax.block_until_ready(r))


def torch_routes(n, kind):
    import torch
    import torch.autograd.forward_ad as fwad

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "torch":
        x, t = torch.from_numpy(x_np), torch.from_numpy(t_np)
        inp, out = (lambda a: a), (lambda r: r)
    else:
        x, t = x_np, t_np
        inp, out = torch.from_numpy, (lambda r: r.detach().numpy())

    def tape_grad(value):
        def run():
            xr = inp(x).detach().requires_grad_()
            y = energy(xr)
            (g,) = torch.autograd.grad(y, xr)
            return (out(y), out(g)) if value else out(g)

        return run

    def func_grad(value):
        transform = torch.func.grad_and_value if value else torch.func.grad
        return lambda: transform(energy)(inp(x))

    def dual_jvp():
        with fwad.dual_level():
            return out(fwad.unpack_dual(stretch(fwad.make_dual(inp(x), inp(t)))).tangent)

    def tape_vjp():
        xr = inp(x).detach().requires_grad_()
        return out(torch.autograd.grad(stretch(xr), xr, inp(t))[0])

    def tape_jacobian():  # every row in one batched backward pass
        xr = inp(x).detach().requires_grad_()
        y = stretch(xr)
        return out(torch.autograd.grad(y, xr, torch.eye(n, dtype=y.dtype), is_grads_batched=True)[0])

    natives = {
        "gradient": {"autograd.grad": tape_grad(False), "func.grad": func_grad(False)},
        "value_and_gradient": {"autograd.grad": tape_grad(True), "func.grad_and_value": func_grad(True)},
        "pushforward": {
            "forward_ad": dual_jvp,
            "func.jvp": lambda: out(torch.func.jvp(stretch, (inp(x),), (inp(t),))[1]),
        },
        "pullback": {
            "autograd.grad": tape_vjp,
            "func.vjp": lambda: out(torch.func.vjp(stretch, inp(x))[1](inp(t))[0]),
        },
        "jacobian": {
            "func.jacfwd": lambda: out(torch.func.jacfwd(stretch)(inp(x))),
            "func.jacrev": lambda: out(torch.func.jacrev(stretch)(inp(x))),
            "tape, batched": tape_jacobian,
        },
    }
    return ad.AutoTorch(), x, t, natives, (lambda r: r)


def ours(op, b, x, t, sync):
    f = energy if op in ("gradient", "value_and_gradient") else stretch
    call = getattr(ad, op)
    if op in ("pushforward", "pullback"):
        prep = getattr(ad, f"prepare_{op}")(f, b, x, t)
        return lambda: sync(call(f, b, x, t, prep=prep))
    prep = getattr(ad, f"prepare_{op.removeprefix('value_and_')}")(f, b, x)
    return lambda: sync(call(f, b, x, prep=prep))


def tree_mlp(params):
    """`Σ h²` after the tanh layers of `params` (keys in order), from the first layer's bias."""
    names = sorted(params)
    h = params[names[0]]["b"]
    xp = ad.namespace(h)
    for name in names:
        h = xp.tanh(xp.matmul(h, params[name]["w"]) + params[name]["b"])
    return xp.sum(h**2)


TREE_LAYERS = 25  # 50 leaves
TREE_WIDTHS = {4: 1.3, 63: 1.05}  # width -> target: 500 and 100 800 parameters


def tree_params(width):
    rng = np.random.default_rng(0)
    return {
        f"layer{i:02d}": {"w": rng.normal(size=(width, width)) / np.sqrt(width), "b": rng.uniform(-1, 1, width)}
        for i in range(TREE_LAYERS)
    }


def leafwise(fn, params):
    """`fn` applied to every leaf of a dict of dicts, as a user converting a model's parameters would."""
    return {name: {k: fn(a) for k, a in layer.items()} for name, layer in params.items()}


def jax_tree_routes(params_np, kind):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        params = leafwise(jnp.asarray, params_np) if kind == "jax" else params_np
    grad = jax.jit(jax.grad(tree_mlp))

    def native():
        with jax.enable_x64(True):
            g = jax.block_until_ready(grad(params))  # jit takes NumPy leaves as they are
        return g if kind == "jax" else leafwise(np.asarray, g)

    # anydiff's results for NumPy leaves are NumPy arrays, already computed
    return ad.AutoJAX(), params, {"jit(grad)": native}, jax.block_until_ready if kind == "jax" else (lambda r: r)


def torch_tree_routes(params_np, kind):
    import torch

    torch.set_num_threads(1)
    if kind == "torch":
        params = leafwise(torch.from_numpy, params_np)
        inp, out = (lambda p: p), (lambda g: g)
    else:
        params = params_np
        inp = lambda p: leafwise(torch.from_numpy, p)  # noqa: E731
        out = lambda g: leafwise(lambda a: a.detach().numpy(), g)  # noqa: E731

    def tape():
        p = leafwise(lambda a: a.detach().requires_grad_(), inp(params))
        leaves = [a for layer in p.values() for a in layer.values()]
        grads = iter(torch.autograd.grad(tree_mlp(p), leaves))
        return out(leafwise(lambda _: next(grads), p))

    natives = {"autograd.grad": tape, "func.grad": lambda: out(torch.func.grad(tree_mlp)(inp(params)))}
    return ad.AutoTorch(), params, natives, (lambda r: r)


def prepared_gradient(b, params, sync):
    prep = ad.prepare_gradient(tree_mlp, b, params)
    return lambda: sync(ad.gradient(tree_mlp, b, params, prep=prep))


def measure(rows, fields, candidates, mine, target, repeats):
    """Time the fastest native route against ours, in alternation; append one row (its target
    checked on the paired ratio)."""
    route, native = fastest(candidates)
    s_native, s_ours = interleaved([native, mine], repeats=repeats, statistic=list)
    t_native, t_ours = statistics.median(s_native), statistics.median(s_ours)
    ratio = paired_ratio(s_ours, s_native)
    rows.append(
        {
            **fields,
            "native route": route,
            "native": fmt_time(t_native),
            "anydiff": fmt_time(t_ours),
            "paired ratio": f"{ratio:.3f}",
            "95% interval": paired_interval(s_ours, s_native),
            "target": f"<= {target}",
            "met": "yes" if ratio <= target else "no",
            "native_s": t_native,
            "anydiff_s": t_ours,
        }
    )
    print("  " + "  ".join(str(v) for v in fields.values()) + f"  {ratio:.3f}", file=sys.stderr)


def array_rows(quick):
    sizes = (10, 1000) if quick else (10, 1000, 100_000)
    rows = []
    for library, routes, kinds in (("jax", jax_routes, ("jax", "numpy")), ("torch", torch_routes, ("torch", "numpy"))):
        for kind in kinds:
            for n in sizes:
                b, x, t, natives, sync = routes(n, kind)
                for op, candidates in natives.items():
                    if op == "jacobian" and n > 1000:
                        continue
                    tangent = tangent_of(op, t)
                    rows.append(
                        row(
                            n,
                            op,
                            candidates,
                            ours(op, b, x, t, sync),
                            repeats=21 if quick else 61 if n <= 10 else 241,
                            target_seconds=0.002,
                            floor=(x, tangent),
                            library=library,
                            input=kind,
                        )
                    )
    return rows


def tree_rows(quick):
    rows = []
    for library, routes, kinds in (
        ("jax", jax_tree_routes, ("jax", "numpy")),
        ("torch", torch_tree_routes, ("torch", "numpy")),
    ):
        for kind in kinds:
            for width, target in TREE_WIDTHS.items():
                b, params, natives, sync = routes(tree_params(width), kind)
                size = TREE_LAYERS * (width * width + width)
                fields = {"library": library, "input": kind, "leaves": 2 * TREE_LAYERS, "parameters": size}
                measure(rows, fields, natives, prepared_gradient(b, params, sync), target, 11 if quick else 121)
    return rows


def main() -> None:
    quick = "--quick" in sys.argv
    case = sys.argv[sys.argv.index("--case") + 1] if "--case" in sys.argv else "all"
    timing = ["native route", "native", "anydiff", "paired ratio", "95% interval", "target", "met"]
    if case in ("arrays", "all"):
        rows = array_rows(quick)
        print(table(rows, ["library", "input", *COLUMNS, "floor"]))
        print(f"\nwritten to {save('overhead', rows, {'quick': quick, 'load': os.getloadavg()})}\n")
    if case in ("trees", "all"):
        rows = tree_rows(quick)
        print("gradient of a 25-layer MLP's parameters, a dict of 50 leaves:")
        print(table(rows, ["library", "input", "leaves", "parameters", *timing]))
        print(f"\nwritten to {save('overhead_trees', rows, {'quick': quick, 'load': os.getloadavg()})}")


if __name__ == "__main__":
    main()
