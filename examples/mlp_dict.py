"""Training a small MLP whose parameters are a dict, with the same code on every backend.

The parameters are a tree, `{"layer1": {"w": ..., "b": ...}, "layer2": {...}}` of NumPy arrays,
and the loss is written once with `xp = ad.namespace(...)`. Each backend (JAX, PyTorch,
TensorFlow, autograd and MLX, those installed) prepares the gradient once and then runs a few
hundred steps of plain gradient descent on a toy regression, `y = sin(2t)` on `[-2, 2]`. Each
gradient comes back as a dict of NumPy arrays shaped like the parameters, so the update is the
same line for every backend, and so are the final losses, to rounding.

    python examples/mlp_dict.py [--steps 300] [--hidden 16] [--backends AutoJAX,AutoTorch]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import format_seconds, print_table, select_backends

import anydiff as ad

#: The backends of this example, when `--backends` names none (those installed).
DEFAULT_BACKENDS = ("AutoJAX", "AutoTorch", "AutoTensorFlow", "AutoAutograd", "AutoMLX")


def mlp(params: dict, inputs: Any) -> Any:
    """`tanh` hidden layers then a linear output; the layers are applied in key order."""
    xp = ad.namespace(params["layer1"]["w"])
    names = sorted(params)
    h = inputs
    for name in names[:-1]:
        h = xp.tanh(xp.matmul(h, params[name]["w"]) + params[name]["b"])
    last = params[names[-1]]
    return xp.matmul(h, last["w"]) + last["b"]


def loss(params: dict, inputs: Any, targets: Any) -> Any:
    """Mean squared error of the MLP on the data."""
    xp = ad.namespace(params["layer1"]["w"])
    return xp.mean((mlp(params, inputs) - targets) ** 2)


def init_params(hidden: int, seed: int = 0) -> dict:
    """One input, `hidden` tanh units, one output; Glorot-like scales."""
    rng = np.random.default_rng(seed)
    return {
        "layer1": {"w": rng.normal(size=(1, hidden)), "b": rng.normal(scale=0.1, size=hidden)},
        "layer2": {"w": rng.normal(size=(hidden, 1)) / np.sqrt(hidden), "b": np.zeros(1)},
    }


def toy_data(points: int = 64) -> tuple[np.ndarray, np.ndarray]:
    inputs = np.linspace(-2.0, 2.0, points).reshape(-1, 1)
    return inputs, np.sin(2.0 * inputs)


def train(backend: ad.AbstractBackend, params: dict, inputs: np.ndarray, targets: np.ndarray, steps: int, lr: float):
    """Gradient descent; returns the final parameters, the preparation time (importing the library,
    preparing, and the first step, where JIT compilers compile) and the time of a later step."""
    data = (ad.Constant(inputs), ad.Constant(targets))
    start = time.perf_counter()
    prep = ad.prepare_gradient(loss, backend, params, *data)
    for step in range(steps):
        grad = ad.gradient(loss, backend, params, *data, prep=prep)
        params = {layer: {k: p - lr * grad[layer][k] for k, p in leaves.items()} for layer, leaves in params.items()}
        if step == 0:
            preparation, start = time.perf_counter() - start, time.perf_counter()
    return params, preparation, (time.perf_counter() - start) / max(steps - 1, 1)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="gradient-descent steps")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--backends", default="", help=f"comma-separated names (default: {','.join(DEFAULT_BACKENDS)})")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.backends:
        backends = select_backends(args.backends)
    else:
        backends = [b for b in select_backends("") if type(b).__name__ in DEFAULT_BACKENDS]
    inputs, targets = toy_data()
    params = init_params(args.hidden)
    initial = float(loss(params, inputs, targets))
    rows = []
    for backend in backends:
        trained, preparation, per_step = train(backend, params, inputs, targets, args.steps, args.lr)
        rows.append({"backend": repr(backend), "loss": float(loss(trained, inputs, targets)), "params": trained,
                     "preparation": preparation, "step": per_step})
    size = sum(p.size for leaves in params.values() for p in leaves.values())
    print(f"MLP 1-{args.hidden}-1 ({size} parameters in a dict), {args.steps} steps; initial loss {initial:.6f}")
    reference = rows[0]["loss"] if rows else 0.0
    print_table(
        ("backend", "final loss", "difference to the first", "preparation", "per step"),
        [(r["backend"], f"{r['loss']:.12f}", f"{abs(r['loss'] - reference):.1e}", format_seconds(r["preparation"]),
          format_seconds(r["step"])) for r in rows],
    )
    return rows


if __name__ == "__main__":
    main()
