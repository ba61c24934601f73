"""The spiral neural ODE: the gradient of a fitting loss on every installed backend and hidden size.

The data come from the true spiral ODE `u' = Aᵀ u³` (`A = [[-0.1, 2], [-2, -0.1]]`, `u(0) = (2, 0)`,
30 points on `[0, 1.5]`). The model replaces the right-hand side by a neural network applied to
`u³`, `u' = W₂ tanh(W₁ u³ + b₁) + b₂`, with one hidden layer (50 units by default); its
parameters are one flat vector. The loss is the squared distance between the model's RK4
solution and the data; `ad.gradient` differentiates it with respect to the parameters.

For each backend and hidden size the gradient is checked against complex-step finite
differences and the backends against each other, and timed (preparation, prepared call). With
`--plot out.png` it draws the time of a prepared gradient against the hidden size, one line per
backend.

    python examples/neural_ode.py [--hidden 10,50,200] [--backends AutoJAX,AutoTorch] [--plot out.png]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from _common import format_seconds, print_table, relative_error, run_isolated, select_backends, time_prepared

import anydiff as ad

TRUE_A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
U0 = np.array([2.0, 0.0])
T_END = 1.5


def rk4(rhs: Any, u0: Any, dt: float, steps: int, every: int) -> list[Any]:
    """The states after every `every` steps of RK4 with step `dt`, `u0` first."""
    u, states = u0, [u0]
    for step in range(1, steps + 1):
        k1 = rhs(u)
        k2 = rhs(u + (dt / 2) * k1)
        k3 = rhs(u + (dt / 2) * k2)
        k4 = rhs(u + dt * k3)
        u = u + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        if step % every == 0:
            states.append(u)
    return states


def spiral_data(points: int) -> np.ndarray:
    """The true solution at `points` equally spaced times, shape `(points, 2)` (RK4, steps ≤ 1e-3)."""
    substeps = math.ceil(T_END / (points - 1) / 1e-3)
    dt = T_END / ((points - 1) * substeps)
    return np.stack(rk4(lambda u: u**3 @ TRUE_A, U0, dt, (points - 1) * substeps, substeps))


@dataclass(frozen=True)
class Loss:
    """`Loss(hidden, points)(p, data)`: the squared error of the neural ODE with parameters `p`.

    `p` is flat, `5 * hidden + 2` long: `W₁` (hidden × 2), `b₁`, `W₂` (2 × hidden), `b₂`. `data`
    holds `points` states; the model starts from the first and takes one RK4 step between data
    points. (The number of steps is part of the model, not read from `data`: symbolic backends
    trace `f` with the shapes of contexts unknown.)
    """

    hidden: int
    points: int

    @property
    def size(self) -> int:
        return 5 * self.hidden + 2

    def __call__(self, p: Any, data: Any) -> Any:
        xp = ad.namespace(p)
        h = self.hidden
        w1 = xp.reshape(p[: 2 * h], (h, 2))
        b1 = p[2 * h : 3 * h]
        w2 = xp.reshape(p[3 * h : 5 * h], (2, h))
        b2 = p[5 * h :]

        def rhs(u: Any) -> Any:
            # `xp.matmul`, not `@`: TensorFlow's own `@` multiplies matrices only
            return xp.matmul(w2, xp.tanh(xp.matmul(w1, u**3) + b1)) + b2

        steps = self.points - 1
        prediction = xp.stack(rk4(rhs, data[0], T_END / steps, steps, 1))
        return xp.sum((prediction - data) ** 2)


def initial_parameters(loss: Loss, seed: int = 0) -> np.ndarray:
    """Glorot-uniform weights, zero biases."""
    rng = np.random.default_rng(seed)
    h = loss.hidden
    limit = np.sqrt(6.0 / (h + 2))
    w1, w2 = rng.uniform(-limit, limit, 2 * h), rng.uniform(-limit, limit, 2 * h)
    return np.concatenate([w1, np.zeros(h), w2, np.zeros(2)])


def gradient_row(backend: ad.AbstractBackend, task: tuple[Loss, np.ndarray, np.ndarray, float]) -> dict:
    """One table row: the gradient, the preparation and call times."""
    loss, p, data, budget = task
    timing = time_prepared(
        lambda: ad.prepare_gradient(loss, backend, p, ad.Constant(data)),
        lambda prep: ad.gradient(loss, backend, p, ad.Constant(data), prep=prep),
        budget,
    )
    return {"gradient": np.asarray(timing.result), "preparation": timing.preparation, "call": timing.call,
            "mode": timing.info.get("mode", ""), "status": "ok"}


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    sizes = sorted({r["hidden"] for r in rows})
    for backend in dict.fromkeys(r["backend"] for r in rows):
        ran = [r for r in rows if r["backend"] == backend and r["status"] == "ok"]
        if ran:
            ax.plot([r["hidden"] for r in ran], [r["call"] for r in ran], marker="o", label=backend)
    ax.set(xscale="log", yscale="log", xlabel="hidden units", ylabel="seconds per prepared gradient",
           title="Spiral neural ODE: gradient of the loss")
    ax.set_xticks(sizes, labels=[str(s) for s in sizes])
    ax.minorticks_off()
    fig.legend(loc="outside right upper", fontsize="small")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="10,50,200", help="hidden layer sizes")
    parser.add_argument("--points", type=int, default=30, help="data points (RK4 steps + 1)")
    parser.add_argument("--backends", default="", help="comma-separated, e.g. AutoJAX,AutoTorch (default: all)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of timing per backend and size")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per backend and size; 0: no limit")
    parser.add_argument("--plot", metavar="PNG", help="write the time-versus-size chart here")
    args = parser.parse_args(argv)
    data = spiral_data(args.points)
    losses = [Loss(int(h), args.points) for h in args.hidden.split(",") if h]
    reference = ad.AutoFiniteDiff(method="complex")  # exact to rounding: `f` is analytic
    tasks = [(loss, initial_parameters(loss), data, args.budget) for loss in losses]
    references = [ad.gradient(loss, reference, p, ad.Constant(data)) for loss, p, _, _ in tasks]
    rows = run_isolated(gradient_row, select_backends(args.backends), [tasks], args.timeout)

    for loss, expected in zip(losses, references, strict=True):
        here = [r for r in rows if r["problem"][0] == loss]
        ran = [r for r in here if r["status"] == "ok"]
        for r in here:
            r["hidden"] = loss.hidden
        for r in ran:
            r["error"] = relative_error(r["gradient"], expected)
            # agreement across backends: the largest difference to any other backend's gradient
            r["spread"] = max((relative_error(r["gradient"], o["gradient"]) for o in ran if o is not r), default=0.0)
        print(f"\nGradient of the loss, hidden size {loss.hidden} ({loss.size} parameters)")
        print_table(
            ("backend", "mode", "error", "max difference to others", "preparation", "per call"),
            (
                (r["backend"], r["mode"], f"{r['error']:.1e}", f"{r['spread']:.1e}",
                 format_seconds(r["preparation"]), format_seconds(r["call"]))
                if r["status"] == "ok" else (r["backend"], r["status"])
                for r in here
            ),
        )
    for r in rows:
        del r["problem"]
    if args.plot:
        plot(rows, args.plot)
        print(f"\nwrote {args.plot}")
    return rows


if __name__ == "__main__":
    main()
