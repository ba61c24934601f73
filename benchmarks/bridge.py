"""Overhead of `DifferentiateWith` against calling the substitute backend directly.

Two directions, at n = 10 and 100 000, float64, `f(x) = sin(x) * cumsum(x)`:

- a JAX program calling a function that torch differentiates: `jax.jit` of the call, of its JVP
  (`jax.jvp`) and of its VJP (`jax.vjp`), against torch computing the same (`f` on tensors, the
  prepared `ad.pushforward` / `ad.pullback` of `ad.AutoTorch()`);
- a torch program calling a function that JAX differentiates: the call, a JVP (dual numbers,
  and `torch.func.jvp`) and a backward pass on the tape (value and VJP), against `jax.jit(f)` and
  the prepared `ad.pushforward` / `ad.value_and_pullback` of `ad.AutoJAX()` (results awaited).

The overhead is the difference of the fastest samples (calls timed in alternation, one process)
and the ratio. The samples are CPU time of the process (`time.process_time`; torch and XLA run
on one thread here): on a machine shared with other work, wall time also counts the time other
processes hold the cores, and the fastest sample is the least disturbed.
The `floor` rows are what each library charges for leaving its own code at all, whoever does
it: an identity `jax.pure_callback` under `jit` (and one calling torch's `f`, written by hand),
an identity primitive lowered to XLA's host callback itself (what the bridge lowers to), and that
host callback running torch's `f`, prepared pushforward and prepared pullback by hand (the least a
JAX program pays for each operation computed by torch); an identity `torch.autograd.Function`,
called and on the tape (`torch.autograd.grad`), dual numbers and `torch.func.jvp` through an
identity (what torch's forward modes cost around any function), `jax.jit(f)` of NumPy views of
tensors against JAX arrays (JAX's price of torch's memory), and JAX's own pullback split at the
tape (`jax.vjp` compiled with its residuals, then the backward pass: what a tape needs, as the
value comes before the cotangent) against the prepared value and pullback in one function.

Targets at n = 10: a JAX program's call, JVP and VJP within 1.2x the overhead of the
`pure_callback` floor of the same run, a torch program's call under 20 µs (issue 19), the rest
under 20 µs (issue 5); at n = 100 000, under 10 % (issue 5).

    python benchmarks/bridge.py [--quick]
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _timing import fmt_time, interleaved, save, table  # noqa: E402

import anydiff as ad  # noqa: E402


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def host_primitive(callback):
    """A JAX primitive whose compiled form calls `callback(*numpy_arrays) -> numpy_array` through
    XLA's host callback (the custom call the bridge lowers to); its result is shaped like the first
    argument."""
    import jax
    from jax.extend.core import Primitive
    from jax.interpreters import mlir

    primitive = Primitive(f"host_{callback.__name__}")
    primitive.def_abstract_eval(lambda a, *rest: jax.core.ShapedArray(a.shape, a.dtype))

    def lowering(ctx, *args):
        return mlir.emit_python_callback(
            ctx,
            lambda *v: (callback(*v),),
            None,
            list(args),
            ctx.avals_in,
            ctx.avals_out,
            has_side_effect=False,
            returns_token=False,
        )[0]

    mlir.register_lowering(primitive, lowering)
    return jax.jit(primitive.bind)


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
    # and the callback one would write by hand around torch's `f` (value only, no derivatives);
    # XLA's host callback itself, under `pure_callback`, as the bridge's primitive lowers to it;
    # and that host callback running by hand what the bridge asks of torch (`f`, its prepared
    # pushforward, its prepared pullback), the least that running torch from XLA costs.
    identity = jax.jit(lambda x: x + 0)
    spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    callback = jax.jit(lambda x: jax.pure_callback(np.asarray, spec, x))
    by_hand = jax.jit(lambda x: jax.pure_callback(lambda a: stretch(torch.from_dlpack(np.asarray(a))).numpy(), spec, x))

    def pushforward(a, b):
        return ad.pushforward(stretch, torch_b, torch.from_dlpack(a), torch.from_dlpack(b), prep=push).numpy()

    def pullback(a, b):
        return ad.pullback(stretch, torch_b, torch.from_dlpack(a), torch.from_dlpack(b), prep=pull).numpy()

    def value(a):
        return stretch(torch.from_dlpack(a)).numpy()

    def same(a):
        return a

    host, f_by_host = host_primitive(same), host_primitive(value)
    jvp_by_host, vjp_by_host = host_primitive(pushforward), host_primitive(pullback)
    return {
        "floor: pure_callback": (x64(lambda: callback(x)), x64(lambda: identity(x))),
        "floor: host callback": (x64(lambda: host(x)), x64(lambda: identity(x))),
        "floor: call by hand": (x64(lambda: by_hand(x)), lambda: stretch(xt)),
        "floor: host call by hand": (x64(lambda: f_by_host(x)), lambda: stretch(xt)),
        "floor: host jvp by hand": (
            x64(lambda: jvp_by_host(x, t)),
            lambda: ad.pushforward(stretch, torch_b, xt, tt, prep=push),
        ),
        "floor: host vjp by hand": (
            x64(lambda: vjp_by_host(x, t)),
            lambda: ad.pullback(stretch, torch_b, xt, tt, prep=pull),
        ),
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

    def dual_jvp(fn=dw):
        with fwad.dual_level():
            return fwad.unpack_dual(fn(fwad.make_dual(xt, tt))).tangent

    def tape_vjp(fn=dw):
        leaf = xt.detach().requires_grad_()
        y = fn(leaf)
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

    # JAX's own price of a split pullback (what a tape needs: the value before the cotangent is
    # known): `jax.vjp` compiled, its residuals kept, then the compiled backward pass, against the
    # prepared value and pullback in one compiled function.
    with jax.enable_x64(True):
        forward = jax.jit(lambda x: jax.vjp(stretch, x))
        backward = jax.jit(lambda pullback, u: pullback(u)[0])

    def split_vjp():
        y, pullback = forward(x)
        return y, backward(pullback, t)

    def same(x):
        return x

    # torch's own price of each way of differentiating a custom operation: an identity `Function`
    # called and on the tape, against an identity; dual numbers, and `torch.func.jvp`, through a
    # function returning its argument, against returning it. JAX's own price of computing on
    # torch's memory: `jax.jit(f)` of NumPy views of tensors against JAX arrays.
    return {
        "floor: Function": (lambda: Identity.apply(xt), lambda: xt + 0),
        "floor: Function (tape)": (lambda: tape_vjp(Identity.apply), lambda: xt + 0),
        "floor: dual numbers": (lambda: dual_jvp(same), lambda: xt),
        "floor: torch.func.jvp": (lambda: torch.func.jvp(same, (xt,), (tt,))[1], lambda: xt),
        "floor: jit of NumPy": (synced(lambda: compiled(xt.numpy())), synced(lambda: compiled(x))),
        "floor: split vjp": (synced(split_vjp), synced(lambda: ad.value_and_pullback(stretch, jax_b, x, t, prep=pull))),
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
    meta = {"quick": quick, "load_before": os.getloadavg()[0], **versions()}
    for direction, routes in (("jax calls torch", jax_calls_torch), ("torch calls jax", torch_calls_jax)):
        for n in (10, 100_000):
            floor = None
            for operation, (bridged, direct) in routes(n).items():
                t_direct, t_bridged = interleaved(
                    [direct, bridged], repeats=7 if quick else 15, statistic=min, clock=time.process_time
                )
                overhead, ratio = t_bridged - t_direct, t_bridged / t_direct
                if operation == "floor: pure_callback":
                    floor = overhead
                label, met = target(direction, n, operation, overhead, ratio, floor)
                rows.append({
                    "direction": direction, "n": n, "operation": operation,
                    "substitute directly": fmt_time(t_direct), "bridged": fmt_time(t_bridged),
                    "overhead": fmt_time(overhead), "ratio": f"{ratio:.2f}",
                    "target": label, "met": "-" if met is None else ("yes" if met else "no"),
                    "direct_s": t_direct, "bridged_s": t_bridged,
                })
                print(f"  {direction} n={n:<7} {operation:20} {fmt_time(overhead)}", file=sys.stderr)
    meta["load_after"] = os.getloadavg()[0]
    columns = ["direction", "n", "operation", "substitute directly", "bridged", "overhead", "ratio", "target", "met"]
    print(table(rows, columns))
    print(f"\nload average {meta['load_before']:.1f} before, {meta['load_after']:.1f} after, on {os.cpu_count()} cores")
    print(f"written to {save('bridge', rows, meta)}")


def target(direction, n, operation, overhead, ratio, floor):
    """`(label, met)` of a row's target (`met` is `None` for the floor rows, which have none)."""
    if operation.startswith("floor"):
        return "-", None
    if direction == "jax calls torch" and n <= 10 and operation in ("call", "eager call", "jvp", "vjp"):
        return f"≤ 1.2x floor ({fmt_time(1.2 * floor)})", overhead <= 1.2 * floor
    if n <= 10:
        return "< 20 µs", overhead < 20e-6
    return "< 10 %", ratio < 1.10


def versions():
    import platform

    import jax
    import torch

    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "torch": torch.__version__,
    }


# -- the hosts of issue 20: PyTensor, CasADi and MLX programs calling a torch-differentiated `f` --
#
#     python benchmarks/bridge.py --hosts [--quick]     (results in benchmarks/results/bridge_hosts)
#
# Each host's compiled program (a `pytensor.function`, a `casadi.Function`; MLX runs eagerly, as
# it must around a `DifferentiateWith`) for the call and the VJP, against torch computing the same
# (`f` on tensors, the prepared `ad.pullback`); `floor`: the host's own cost of calling an
# identity program of its kind, against NumPy's identity.


def pytensor_calls_torch(n, torch_f, torch_vjp):
    import pytensor
    import pytensor.tensor as pt

    dw = ad.DifferentiateWith(stretch, ad.AutoTorch())
    x, u = pt.tensor("x", shape=(n,), dtype="float64"), pt.tensor("u", shape=(n,), dtype="float64")
    y = dw(x)
    identity, call = pytensor.function([x], x + 0), pytensor.function([x], y)
    vjp = pytensor.function([x, u], pytensor.grad(pt.sum(y * u), x))
    x_np, u_np = np.random.default_rng(0).uniform(-1, 1, (2, n))
    return {
        "floor: identity function": (lambda: identity(x_np), lambda: x_np + 0),
        "call": (lambda: call(x_np), torch_f),
        "vjp": (lambda: vjp(x_np, u_np), torch_vjp),
    }


def casadi_calls_torch(n, torch_f, torch_vjp):
    import casadi as ca

    dw = ad.DifferentiateWith(stretch, ad.AutoTorch())
    x, u = ca.MX.sym("x", n), ca.MX.sym("u", n)
    y = dw(x)
    identity, call = ca.Function("identity", [x], [x + 0]), ca.Function("call", [x], [y])
    vjp = ca.Function("vjp", [x, u], [ca.jtimes(y, x, u, True)])
    x_np, u_np = np.random.default_rng(0).uniform(-1, 1, (2, n))
    x_dm, u_dm = ca.DM(x_np), ca.DM(u_np)
    return {
        "floor: identity function": (lambda: identity(x_dm), lambda: x_np + 0),
        "call": (lambda: call(x_dm), torch_f),
        "vjp": (lambda: vjp(x_dm, u_dm), torch_vjp),
    }


def mlx_calls_torch(n, torch_f, torch_vjp):
    import mlx.core as mx

    dw = ad.DifferentiateWith(stretch, ad.AutoTorch())
    x, u = (mx.array(a, dtype=mx.float64) for a in np.random.default_rng(0).uniform(-1, 1, (2, n)))

    def evaluated(fn):
        def run():
            result = fn()
            mx.eval(result)
            return result

        return run

    return {
        "floor: identity function": (evaluated(lambda: x + 0), lambda: np.asarray(x) + 0),
        "call": (evaluated(lambda: dw(x)), torch_f),
        "vjp": (evaluated(lambda: mx.vjp(dw, [x], [u])[1][0]), torch_vjp),
    }


def torch_directly(n):
    """`(f, vjp)`: torch computing what the hosts ask of it, `f` and its prepared pullback."""
    import torch

    xt, ut = (torch.from_numpy(a) for a in np.random.default_rng(0).uniform(-1, 1, (2, n)))
    pull = ad.prepare_pullback(stretch, ad.AutoTorch(), xt, ut)
    return (lambda: stretch(xt)), (lambda: ad.pullback(stretch, ad.AutoTorch(), xt, ut, prep=pull))


def main_hosts() -> None:
    import torch

    torch.set_num_threads(1)
    quick = "--quick" in sys.argv
    rows = []
    for host, routes in (("pytensor", pytensor_calls_torch), ("casadi", casadi_calls_torch), ("mlx", mlx_calls_torch)):
        for n in (10, 100_000):
            for operation, (bridged, direct) in routes(n, *torch_directly(n)).items():
                t_direct, t_bridged = interleaved([direct, bridged], repeats=7 if quick else 15, statistic=min)
                rows.append({
                    "host": host, "n": n, "operation": operation,
                    "directly": fmt_time(t_direct), "bridged": fmt_time(t_bridged),
                    "overhead": fmt_time(t_bridged - t_direct), "ratio": f"{t_bridged / t_direct:.2f}",
                    "direct_s": t_direct, "bridged_s": t_bridged,
                })  # fmt: skip
                print(f"  {host} n={n:<7} {operation:26} {fmt_time(t_bridged - t_direct)}", file=sys.stderr)
    print(table(rows, ["host", "n", "operation", "directly", "bridged", "overhead", "ratio"]))
    print(f"\nwritten to {save('bridge_hosts', rows, {'quick': quick, 'load': os.getloadavg()[0]})}")


if __name__ == "__main__":
    main_hosts() if "--hosts" in sys.argv else main()
