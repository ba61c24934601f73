"""Overhead of prepared anydiff calls on TensorFlow and HIPS autograd against their fastest native calls.

Each operator (gradient, value_and_gradient, pushforward, pullback, jacobian) at n = 10 and 1 000.
TensorFlow runs with its own tensors and with NumPy inputs (the native side then converts as a
user would); autograd computes on NumPy arrays. The native side is the fastest of the library's
routes for the same work: for TensorFlow the traced `ConcreteFunction` of a tape, of
`ForwardAccumulator` or of `tape.jacobian`, the `tf.function` dispatcher, and eager execution;
for autograd its `grad`, `value_and_grad`, `make_jvp`, `make_vjp` and `jacobian`. Each row is
measured twice: against these public routes, and with the entries anydiff itself calls added to
them (TensorFlow's concrete function entered by its flat list of tensors, with NumPy arrays made
host tensors; autograd's `core.make_vjp` and `core.make_jvp`), which leaves anydiff's own
overhead. Calls are timed in alternation in one process, in many short samples, and two ratios
reported: of the medians (the house rule), and the paired ratio (`_timing.paired_ratio`, the
median of the ratios of samples taken one after the other), which stays meaningful when other
work shares the machine (the medians then move by ±20 %); the targets are checked on it.

    python benchmarks/overhead_tensorflow_autograd.py [--quick]

Targets (issue 9): ratio <= 1.10 at n = 10 and <= 1.02 at n >= 1 000.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _overhead import COLUMNS, energy, prepared_call, row, stretch, tangent_of  # noqa: E402
from _timing import save, table  # noqa: E402

import anydiff as ad  # noqa: E402


def tensorflow_routes(n, kind):
    import tensorflow as tf

    zero = tf.UnconnectedGradients.ZERO
    rng = np.random.default_rng(0)
    x_np, t_np = rng.uniform(-1, 1, (2, n))
    if kind == "tensorflow":
        x, t = tf.constant(x_np), tf.constant(t_np)
        inp = host = out = lambda a: a
    else:
        from tensorflow.python.framework.ops import EagerTensor

        x, t = x_np, t_np
        inp, out = tf.convert_to_tensor, (lambda r: r.numpy())

        def host(a):
            """A NumPy array as anydiff converts it: a tensor on the host, of a copy (private)."""
            return EagerTensor(a.copy(), None, None)

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

    def flat(fn, *args):
        """The concrete function entered by its flat list of tensors, as anydiff calls it: its own
        binding and check of the arguments (≈ 20 µs at n = 10) skipped. A private method."""
        traced = tf.function(fn, autograph=False).get_concrete_function(*args)
        call, captured = traced._call_flat, traced.captured_inputs
        return lambda *a: call(list(a), captured)

    def dispatched(fn):
        return tf.function(fn, autograph=False)

    def one(fn, *args, value=False, inp=inp):
        """A native call: inputs converted, `fn` run, results converted, as a user would write it."""
        if value:
            return lambda: tuple(map(out, fn(*map(inp, args))))
        return lambda: out(fn(*map(inp, args)))

    def fast(fn, *args, value=False):
        """The flat entry of `fn`'s concrete function, NumPy inputs converted as anydiff converts
        them (`host`)."""
        return one(flat(fn, *(tf.constant(a) for a in args)), *args, value=value, inp=host)

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
    entries = {
        "gradient": {"flat concrete(tape)": fast(gradient, x)},
        "value_and_gradient": {"flat concrete(tape)": fast(value_and_gradient, x, value=True)},
        "pushforward": {
            "flat concrete(ForwardAccumulator)": fast(forward_accumulator, x, t),
            "flat concrete(double backward)": fast(double_backward, x, t),
        },
        "pullback": {"flat concrete(tape)": fast(vjp, x, t)},
        "jacobian": {
            "flat concrete(tape.jacobian)": fast(jacobian_reverse, x),
            "flat concrete(vectorised ForwardAccumulator)": fast(jacobian_forward, x),
        },
    }
    return ad.AutoTensorFlow(), x, t, natives, entries


def autograd_routes(n, kind):
    import autograd
    import autograd.core

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
    # `autograd.make_vjp` and `make_jvp` are `core.make_vjp` and `core.make_jvp` wrapped for
    # functions of several arguments; anydiff calls the unwrapped ones.
    core_jvp, core_vjp = autograd.core.make_jvp, autograd.core.make_vjp

    def core_value_and_gradient():
        pull, y = core_vjp(energy, x)
        return y, pull(1.0)

    entries = {
        "gradient": {"core.make_vjp": lambda: core_vjp(energy, x)[0](1.0)},
        "value_and_gradient": {"core.make_vjp": core_value_and_gradient},
        "pushforward": {"core.make_jvp": lambda: core_jvp(stretch, x)(t)[1]},
        "pullback": {"core.make_vjp": lambda: core_vjp(stretch, x)[0](t)},
        "jacobian": {},
    }
    return ad.AutoAutograd(), x, t, natives, entries


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
                b, x, t, natives, entries = routes(n, kind)
                for op, candidates in natives.items():
                    mine = prepared_call(op, b, x, t)
                    tangent = tangent_of(op, t)
                    groups = {"public": candidates}
                    if entries[op]:
                        groups["with anydiff's entry"] = {**candidates, **entries[op]}
                    for group, routes_of_group in groups.items():
                        # Many short samples (151 of 2 ms): many rounds for the paired ratio's median
                        rows.append(
                            row(
                                n,
                                op,
                                routes_of_group,
                                mine,
                                repeats=31 if quick else 151,
                                target_seconds=0.002,
                                floor=(x, tangent),
                                library=library,
                                input=kind,
                                routes=group,
                            )
                        )
    print(table(rows, ["library", "input", "routes", *COLUMNS, "floor"]))
    print(f"\nwritten to {save('overhead_tensorflow_autograd', rows, {'quick': quick, 'load': os.getloadavg()})}")


if __name__ == "__main__":
    main()
