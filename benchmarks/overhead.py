"""Overhead of prepared anydiff calls against the fastest native call of the same library.

For JAX and torch, each operator (gradient, value_and_gradient, pushforward, pullback, jacobian)
at n = 10, 1 000 and 100 000 (the dense Jacobian at n <= 1 000 only), with inputs of the
backend's own array kind and with NumPy inputs. The native side is the fastest of the library's
routes for the same work (for torch: the autograd tape, `torch.func`, forward-mode dual numbers),
including, for NumPy inputs, the conversions a user would write. Calls are timed in alternation
in one process and the ratio of medians reported: these machines are too noisy for anything else.

    python benchmarks/overhead.py [--quick]

Targets (issue 2): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

import anydiff as ad  # noqa: E402
from _timing import fastest, fmt_time, interleaved, save, table  # noqa: E402


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


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (10, 1000) if quick else (10, 1000, 100_000)
    rows = []
    for library, routes, kinds in (("jax", jax_routes, ("jax", "numpy")), ("torch", torch_routes, ("torch", "numpy"))):
        for kind in kinds:
            for n in sizes:
                b, x, t, natives, sync = routes(n, kind)
                for op, candidates in natives.items():
                    if op == "jacobian" and n > 1000:
                        continue
                    route, native = fastest(candidates)
                    mine = ours(op, b, x, t, sync)
                    t_native, t_ours = interleaved([native, mine], repeats=7 if quick else 15)
                    target = 1.10 if n <= 10 else 1.02
                    ratio = t_ours / t_native
                    rows.append({
                        "library": library, "input": kind, "n": n, "operator": op, "native route": route,
                        "native": fmt_time(t_native), "anydiff": fmt_time(t_ours), "ratio": f"{ratio:.3f}",
                        "target": f"<= {target}", "met": "yes" if ratio <= target else "no",
                        "native_s": t_native, "anydiff_s": t_ours,
                    })
                    print(f"  {library:5} {kind:6} n={n:<7} {op:19} {ratio:.3f}", file=sys.stderr)
    columns = ["library", "input", "n", "operator", "native route", "native", "anydiff", "ratio", "target", "met"]
    print(table(rows, columns))
    print(f"\nwritten to {save('overhead', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
