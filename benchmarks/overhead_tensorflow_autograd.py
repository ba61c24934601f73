"""Overhead of prepared anydiff calls on TensorFlow and HIPS autograd against their fastest native calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and 1 000.
TensorFlow runs with its own tensors and with NumPy inputs (the native side then converts as a
user would); autograd computes on NumPy arrays. The native side is the fastest of the library's
routes for the same work: for TensorFlow the traced `ConcreteFunction` of a tape, of
`ForwardAccumulator` or of `tape.jacobian`, the `tf.function` dispatcher, and eager execution;
for autograd its `grad`, `value_and_grad`, `make_jvp`, `make_vjp` and `jacobian`. Calls are timed
in alternation in one process, in many short samples, and two ratios reported: of the medians
(the house rule), and of the minimums, the least disturbed samples, which are what stays
meaningful when other work shares the machine (the medians then move by ±20 %); the targets
are checked on those.

    python benchmarks/overhead_tensorflow_autograd.py [--quick]

Targets (issue 9): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _timing import fastest, fmt_time, interleaved, save, table  # noqa: E402

import anydiff as ad  # noqa: E402


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def tensorflow_routes(n, kind):
    import tensorflow as tf

    zero = tf.UnconnectedGradients.ZERO
    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "tensorflow":
        x, t = tf.constant(x_np), tf.constant(t_np)
        inp, out = (lambda a: a), (lambda r: r)
    else:
        x, t = x_np, t_np
        inp, out = tf.convert_to_tensor, (lambda r: r.numpy())

    def value_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = energy(x)
        return y, tape.gradient(y, x, unconnected_gradients=zero)

    def gradient(x):
        return value_and_gradient(x)[1]

    def forward_accumulator(x, t):
        with tf.autodiff.ForwardAccumulator(x, t) as acc:
            y = stretch(x)
        return acc.jvp(y, unconnected_gradients=zero)

    def double_backward(x, t):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = stretch(x)
            u = tf.zeros_like(y)
            outer.watch(u)
            w = inner.gradient(y, x, output_gradients=u)
        return outer.gradient(w, u, output_gradients=t)

    def vjp(x, u):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = stretch(x)
        return tape.gradient(y, x, output_gradients=u, unconnected_gradients=zero)

    def jacobian_reverse(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = stretch(x)
        return tape.jacobian(y, x, unconnected_gradients=zero)

    def jacobian_forward(x):
        return tf.transpose(tf.vectorized_map(lambda e: forward_accumulator(x, e), tf.eye(n, dtype=x.dtype)))

    xs, ts = tf.constant(x_np), tf.constant(t_np)

    def concrete(fn, *args):
        traced = tf.function(fn, autograph=False).get_concrete_function(*args)
        return lambda *a: traced(*a)

    def dispatched(fn):
        return tf.function(fn, autograph=False)

    def one(fn, *args, value=False):
        """A native call: inputs converted, `fn` run, results converted, as a user would write it."""
        if value:
            return lambda: tuple(map(out, fn(*map(inp, args))))
        return lambda: out(fn(*map(inp, args)))

    natives = {
        "gradient": {
            "concrete(tape)": one(concrete(gradient, xs), x),
            "tf.function(tape)": one(dispatched(gradient), x),
            "eager tape": one(gradient, x),
        },
        "value_and_gradient": {
            "concrete(tape)": one(concrete(value_and_gradient, xs), x, value=True),
            "eager tape": one(value_and_gradient, x, value=True),
        },
        "pushforward": {
            "concrete(ForwardAccumulator)": one(concrete(forward_accumulator, xs, ts), x, t),
            "concrete(double backward)": one(concrete(double_backward, xs, ts), x, t),
        },
        "pullback": {
            "concrete(tape)": one(concrete(vjp, xs, ts), x, t),
            "tf.function(tape)": one(dispatched(vjp), x, t),
        },
        "jacobian": {
            "concrete(tape.jacobian)": one(concrete(jacobian_reverse, xs), x),
            "concrete(vectorised ForwardAccumulator)": one(concrete(jacobian_forward, xs), x),
        },
    }
    return ad.AutoTensorFlow(), x, t, natives


def autograd_routes(n, kind):
    import autograd

    rng = np.random.default_rng(0)
    x, t = rng.uniform(-1, 1, (2, n))
    grad, value_and_grad = autograd.grad(energy), autograd.value_and_grad(energy)
    make_jvp, make_vjp = autograd.make_jvp(stretch), autograd.make_vjp(stretch)
    rows = np.eye(n)

    def rows_of_make_vjp():
        pull = make_vjp(x)[0]
        return np.stack([pull(e) for e in rows])

    natives = {
        "gradient": {"grad": lambda: grad(x)},
        "value_and_gradient": {"value_and_grad": lambda: value_and_grad(x)},
        "pushforward": {"make_jvp": lambda: make_jvp(x)(t)[1]},
        "pullback": {
            "make_vjp": lambda: make_vjp(x)[0](t),
            "vector_jacobian_product": lambda: autograd.vector_jacobian_product(stretch)(x, t),
        },
        "jacobian": {"jacobian": lambda: autograd.jacobian(stretch)(x), "make_vjp rows": rows_of_make_vjp},
    }
    return ad.AutoAutograd(), x, t, natives


def _median_and_min(samples):
    return statistics.median(samples), min(samples)


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
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    libraries = (("tensorflow", tensorflow_routes, ("tensorflow", "numpy")), ("autograd", autograd_routes, ("numpy",)))
    for library, routes, kinds in libraries:
        for kind in kinds:
            for n in (10, 1000):
                b, x, t, natives = routes(n, kind)
                for op, candidates in natives.items():
                    route, native = fastest(candidates, repeats=11, statistic=min)
                    mine = ours(op, b, x, t)
                    (native_median, native_min), (ours_median, ours_min) = interleaved(
                        [native, mine], repeats=11 if quick else 41, target=0.005, statistic=_median_and_min
                    )
                    target = 1.10 if n <= 10 else 1.02
                    ratio, ratio_min = ours_median / native_median, ours_min / native_min
                    rows.append({
                        "library": library, "input": kind, "n": n, "operator": op, "native route": route,
                        "native": fmt_time(native_median), "anydiff": fmt_time(ours_median),
                        "ratio": f"{ratio:.3f}", "ratio of minimums": f"{ratio_min:.3f}", "target": f"<= {target}",
                        "met": "yes" if ratio_min <= target else "no",
                        "native_s": native_median, "anydiff_s": ours_median,
                        "native_min_s": native_min, "anydiff_min_s": ours_min,
                    })
                    print(f"  {library:10} {kind:10} n={n:<5} {op:19} {ratio:.3f} {ratio_min:.3f}", file=sys.stderr)
    columns = [
        "library", "input", "n", "operator", "native route", "native", "anydiff", "ratio", "ratio of minimums",
        "target", "met",
    ]
    print(table(rows, columns))
    print(f"\nwritten to {save('overhead_tensorflow_autograd', rows, {'quick': quick})}")


if __name__ == "__main__":
    main()
