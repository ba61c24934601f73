"""Overhead of `DifferentiateWith` against calling the substitute backend directly.

Two directions, at n = 10 and 100 000, float64, `f(x) = sin(x) * cumsum(x)`:

- a JAX program calling a function that torch differentiates: `jax.jit` of the call, of its JVP
  (`jax.jvp`) and of its VJP (`jax.vjp`), against torch computing the same (`f` on tensors, the
  prepared `ad.pushforward` / `ad.pullback` of `ad.AutoTorch()`);
- a torch program calling a function that JAX differentiates: the call, a JVP (dual numbers,
  and `torch.func.jvp`) and a backward pass on the tape (value and VJP), against `jax.jit(f)` and
  the prepared `ad.pushforward` / `ad.value_and_pullback` of `ad.AutoJAX()` (results awaited).

The overhead is the difference of the medians (calls timed in alternation, one process) and the
ratio. Targets (issue 5): under 20 µs at n = 10, under 10 % at n = 100 000. The `floor` rows are
what each library charges for leaving its own code at all, whoever does it: an identity
`jax.pure_callback` under `jit` (and one calling torch's `f`, written by hand), an identity
`torch.autograd.Function`.

    python benchmarks/bridge.py [--quick]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _timing import fmt_time, interleaved, save, table  # noqa: E402

import anydiff as ad  # noqa: E402


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def jax_calls_torch(n):
    """`{operation: (bridged, direct)}` for a JAX program around a torch-differentiated `f`."""
    import jax
    import torch

    dw = ad.DifferentiateWith(stretch, ad.AutoTorch())
    x_np, t_np = np.random.default_rng(0).uniform(-1, 1, (2, n))
    with jax.enable_x64(True):
        x, t = jax.numpy.asarray(x_np), jax.numpy.asarray(t_np)
    xt, tt = torch.from_numpy(x_np), torch.from_numpy(t_np)
    call = jax.jit(dw)
    jvp = jax.jit(lambda x, t: jax.jvp(dw, (x,), (t,))[1])
    vjp = jax.jit(lambda x, u: jax.vjp(dw, x)[1](u)[0])
    torch_b = ad.AutoTorch()
    push = ad.prepare_pushforward(stretch, torch_b, xt, tt)
    pull = ad.prepare_pullback(stretch, torch_b, xt, tt)

    def x64(fn):
        def run():
            with jax.enable_x64(True):
                return jax.block_until_ready(fn())

        return run

    # JAX's own price of leaving a compiled program: an identity callback against an identity,
    # and the callback one would write by hand around torch's `f` (value only, no derivatives).
    identity = jax.jit(lambda x: x + 0)
    spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    callback = jax.jit(lambda x: jax.pure_callback(np.asarray, spec, x))
    by_hand = jax.jit(lambda x: jax.pure_callback(lambda a: stretch(torch.from_dlpack(np.asarray(a))).numpy(), spec, x))
    return {
        "floor: pure_callback": (x64(lambda: callback(x)), x64(lambda: identity(x))),
        "floor: call by hand": (x64(lambda: by_hand(x)), lambda: stretch(xt)),
        "call": (x64(lambda: call(x)), lambda: stretch(xt)),
        "eager call": (x64(lambda: dw(x)), lambda: stretch(xt)),
        "jvp": (x64(lambda: jvp(x, t)), lambda: ad.pushforward(stretch, torch_b, xt, tt, prep=push)),
        "vjp": (x64(lambda: vjp(x, t)), lambda: ad.pullback(stretch, torch_b, xt, tt, prep=pull)),
    }


def torch_calls_jax(n):
    """`{operation: (bridged, direct)}` for a torch program around a JAX-differentiated `f`."""
    import jax
    import torch
    import torch.autograd.forward_ad as fwad

    dw = ad.DifferentiateWith(stretch, ad.AutoJAX())
    x_np, t_np = np.random.default_rng(0).uniform(-1, 1, (2, n))
    xt, tt = torch.from_numpy(x_np), torch.from_numpy(t_np)
    with jax.enable_x64(True):
        x, t = jax.numpy.asarray(x_np), jax.numpy.asarray(t_np)
    jax_b = ad.AutoJAX()
    compiled = jax.jit(stretch)
    push = ad.prepare_pushforward(stretch, jax_b, x, t)
    pull = ad.prepare_pullback(stretch, jax_b, x, t)

    def synced(fn):
        def run():
            with jax.enable_x64(True):
                return jax.block_until_ready(fn())

        return run

    def dual_jvp():
        with fwad.dual_level():
            return fwad.unpack_dual(dw(fwad.make_dual(xt, tt))).tangent

    def tape_vjp():
        leaf = xt.detach().requires_grad_()
        y = dw(leaf)
        return y.detach(), torch.autograd.grad(y, leaf, tt)[0]

    class Identity(torch.autograd.Function):
        """torch's own price of a custom operation: an identity `Function` against an identity."""

        @staticmethod
        def forward(x):
            return x + 0

        @staticmethod
        def setup_context(ctx, inputs, output):
            pass

        @staticmethod
        def backward(ctx, g):
            return g

    return {
        "floor: Function": (lambda: Identity.apply(xt), lambda: xt + 0),
        "call": (lambda: dw(xt), synced(lambda: compiled(x))),
        "jvp (dual)": (dual_jvp, synced(lambda: ad.pushforward(stretch, jax_b, x, t, prep=push))),
        "jvp (func)": (
            lambda: torch.func.jvp(dw, (xt,), (tt,))[1],
            synced(lambda: ad.pushforward(stretch, jax_b, x, t, prep=push)),
        ),
        "vjp (tape)": (tape_vjp, synced(lambda: ad.value_and_pullback(stretch, jax_b, x, t, prep=pull))),
    }


def main() -> None:
    import torch

    torch.set_num_threads(1)
    quick = "--quick" in sys.argv
    rows = []
    for direction, routes in (("jax calls torch", jax_calls_torch), ("torch calls jax", torch_calls_jax)):
        for n in (10, 100_000):
            for operation, (bridged, direct) in routes(n).items():
                t_direct, t_bridged = interleaved([direct, bridged], repeats=7 if quick else 15)
                overhead, ratio = t_bridged - t_direct, t_bridged / t_direct
                met = overhead < 20e-6 if n <= 10 else ratio < 1.10
                rows.append({
                    "direction": direction, "n": n, "operation": operation,
                    "substitute directly": fmt_time(t_direct), "bridged": fmt_time(t_bridged),
                    "overhead": fmt_time(overhead), "ratio": f"{ratio:.2f}",
                    "target": "< 20 µs" if n <= 10 else "< 10 %", "met": "yes" if met else "no",
                    "direct_s": t_direct, "bridged_s": t_bridged,
                })
                print(f"  {direction} n={n:<7} {operation:20} {fmt_time(overhead)}", file=sys.stderr)
    columns = ["direction", "n", "operation", "substitute directly", "bridged", "overhead", "ratio", "target", "met"]
    print(table(rows, columns))
    print(f"\nwritten to {save('bridge', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
