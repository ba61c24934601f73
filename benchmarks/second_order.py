"""Prepared second-order anydiff calls against the fastest native route of the same library.

For JAX and torch: `hvp` (one tangent) at n = 10, 1 000 and 100 000 and `hessian` at n = 10 and
1 000, on f(x) = Σ sin²(xᵢ) with float64 inputs of the backend's own array kind. The native side
is the fastest of the library's routes for the same work (JAX: `jvp` of `grad`, `vjp` of `grad`,
`jax.hessian`, `jacrev` of `grad`; torch: double backward on the tape, `torch.func`,
`torch.autograd.functional`). Calls are timed in alternation in one process (`_overhead.row`:
the ratio of the medians and the paired ratio, on which the targets are checked, and the
`floor`, the fastest native route behind the least a checked front does per call). The last
column is the cost of a prepared `hvp` over a prepared `gradient` (theory: a small constant,
about 2-4).

    python benchmarks/second_order.py [--quick]

Targets (issue 3): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _overhead import COLUMNS, energy, row  # noqa: E402
from _timing import interleaved, save, table  # noqa: E402

import anydiff as ad  # noqa: E402


def jax_routes(n):
    import jax
    import jax.numpy as jnp

    x_np, v_np = np.random.default_rng(0).uniform(-1, 1, (2, n))
    with jax.enable_x64(True):
        x, v = jnp.asarray(x_np), jnp.asarray(v_np)

    def x64(fn, *args):
        def run():
            with jax.enable_x64(True):
                return jax.block_until_ready(fn(*args))

        return run

    grad = jax.grad(energy)
    natives = {
        "hvp": {
            "jit(jvp(grad))": x64(jax.jit(lambda x, v: jax.jvp(grad, (x,), (v,))[1]), x, v),
            "jit(vjp(grad))": x64(jax.jit(lambda x, v: jax.vjp(grad, x)[1](v)[0]), x, v),
        },
        "hessian": {
            "jit(hessian)": x64(jax.jit(jax.hessian(energy)), x),
            "jit(jacrev(grad))": x64(jax.jit(jax.jacrev(grad)), x),
        },
    }
    return ad.AutoJAX(), x, v, natives, jax.block_until_ready


def torch_routes(n):
    import torch

    torch.set_num_threads(1)
    x_np, v_np = np.random.default_rng(0).uniform(-1, 1, (2, n))
    x, v = torch.from_numpy(x_np), torch.from_numpy(v_np)

    def taped_gradient(x):
        leaf = x.detach().requires_grad_()
        (g,) = torch.autograd.grad(energy(leaf), leaf, create_graph=True)
        return leaf, g

    def double_backward(x, v):
        leaf, g = taped_gradient(x)
        return torch.autograd.grad(g, leaf, v)[0]

    def double_backward_batched(x):
        leaf, g = taped_gradient(x)
        eye = torch.eye(x.numel(), dtype=x.dtype)
        return torch.autograd.grad(g, leaf, eye, is_grads_batched=True)[0]

    natives = {
        "hvp": {
            "double backward": lambda: double_backward(x, v),
            "func.jvp(func.grad)": lambda: torch.func.jvp(torch.func.grad(energy), (x,), (v,))[1],
            "autograd.functional.hvp": lambda: torch.autograd.functional.hvp(energy, x, v)[1],
        },
        "hessian": {
            "double backward, batched": lambda: double_backward_batched(x),
            "autograd.functional.hessian(vectorize)": lambda: torch.autograd.functional.hessian(
                energy, x, vectorize=True
            ),
            "func.hessian": lambda: torch.func.hessian(energy)(x),
        },
    }
    return ad.AutoTorch(), x, v, natives, (lambda r: r)


def prepared(op, b, x, v, sync):
    if op == "hvp":
        prep = ad.prepare_hvp(energy, b, x, v)
        return (lambda: sync(ad.hvp(energy, b, x, v, prep=prep))), prep
    prep = getattr(ad, f"prepare_{op}")(energy, b, x)
    call = getattr(ad, op)
    return (lambda: sync(call(energy, b, x, prep=prep))), prep


def main() -> None:
    quick = "--quick" in sys.argv
    rows = []
    for library, routes in (("jax", jax_routes), ("torch", torch_routes)):
        for n in (10, 1000) if quick else (10, 1000, 100_000):
            b, x, v, natives, sync = routes(n)
            gradient_call, _ = prepared("gradient", b, x, v, sync)
            for op in ("hvp", "hessian"):
                if op == "hessian" and n > 1000:
                    continue
                mine, prep = prepared(op, b, x, v, sync)
                tangent = v if op == "hvp" else None
                found = row(
                    n,
                    op,
                    natives[op],
                    mine,
                    repeats=21 if quick else 61 if n <= 10 else 241,
                    target_seconds=0.005,
                    floor=(x, tangent),
                    library=library,
                )
                found["anydiff route"] = prep.info.get("route", prep.info.get("strategy"))
                if op == "hvp":
                    t_hvp, t_gradient = interleaved([mine, gradient_call], repeats=21 if quick else 61, statistic=min)
                    found["hvp/gradient"] = f"{t_hvp / t_gradient:.2f}"
                rows.append(found)
    columns = ["library", *COLUMNS, "floor", "anydiff route", "hvp/gradient"]
    print(table(rows, columns))
    meta = {"quick": quick, "function": "sum(sin(x)**2)", "load": os.getloadavg()}
    print(f"\nwritten to {save('second_order', rows, meta)}")


if __name__ == "__main__":
    main()
