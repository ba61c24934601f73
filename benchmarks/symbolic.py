"""Symbolic backends (SymPy, CasADi, PyTensor) against JAX and torch on small dense problems.

Three problems, each prepared once and called many times, at n = 2, 5, 10, 20 and 50:

- `lotka_volterra`: the right-hand side u (r + A u) of a generalised Lotka-Volterra system of n
  species, its `jacobian` (r and A are `Constant`s);
- `rosenbrock`: the chained Rosenbrock function, its `gradient` and its `hessian`;
- `mlp`: a network of one hidden tanh layer of n units with fixed weights passed as
  `Constant`s, scalar output, its `gradient` in the n inputs.

Inputs are NumPy float64 arrays (what a user of SciPy has). JAX and torch are also timed on their
own arrays, and the faster of the two kinds counts as their time. Prepared calls are timed in
alternation in one process (medians of interleaved samples, `_timing.interleaved`); preparation
once, with the first call (where JAX compiles); PyTensor's includes Numba's compilation, which
Numba's on-disk cache shortens on later runs.

    python benchmarks/symbolic.py [--quick]

Goal (issue 6): at least one symbolic backend is the fastest prepared backend for n <= 10.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402
from _timing import fmt_time, interleaved, save, table  # noqa: E402

import anydiff as ad  # noqa: E402

SYMBOLIC = {"sympy": ad.AutoSymPy(), "casadi": ad.AutoCasADi(), "pytensor": ad.AutoPyTensor()}
NUMERIC = {"jax": ad.AutoJAX(), "torch": ad.AutoTorch()}


def lotka_volterra(u, r, a):
    return u * (r + a @ u)


def rosenbrock(x):
    xp = ad.namespace(x)
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def mlp(x, w1, b1, w2):
    xp = ad.namespace(x)
    return xp.sum(w2 @ xp.tanh(w1 @ x + b1))


def problems(n: int) -> list[tuple[str, str, object, np.ndarray, tuple]]:
    """`(problem, operator, f, x, context values)` at size n."""
    rng = np.random.default_rng(n)
    x = rng.uniform(-1.0, 1.0, n)
    lv = (rng.uniform(0.5, 1.5, n), rng.normal(scale=0.3, size=(n, n)))
    net = (rng.normal(scale=n**-0.5, size=(n, n)), rng.normal(size=n), rng.normal(scale=n**-0.5, size=(1, n)))
    return [
        ("lotka_volterra", "jacobian", lotka_volterra, rng.uniform(0.5, 1.5, n), lv),
        ("rosenbrock", "gradient", rosenbrock, x, ()),
        ("rosenbrock", "hessian", rosenbrock, x, ()),
        ("mlp", "gradient", mlp, x, net),
    ]


def native(kind: str, value: np.ndarray):
    """`value` as an array of the library `kind` (float64)."""
    if kind == "jax":
        import jax
        import jax.numpy as jnp

        with jax.enable_x64(True):
            return jnp.asarray(value)
    import torch

    return torch.from_numpy(np.ascontiguousarray(value))


def call(operator: str, f, backend, x, contexts: tuple):
    """`(prepared call, seconds to prepare and make the first call, first result)`.

    The first call is counted with the preparation: JAX compiles there, not in `prepare`.
    """
    wrapped = tuple(ad.Constant(c) for c in contexts)
    run = getattr(ad, operator)
    start = time.perf_counter()
    prep = getattr(ad, f"prepare_{operator}")(f, backend, x, *wrapped)
    first = run(f, backend, x, *wrapped, prep=prep)
    seconds = time.perf_counter() - start
    return (lambda: run(f, backend, x, *wrapped, prep=prep)), seconds, first


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (2, 10) if quick else (2, 5, 10, 20, 50)
    repeats = 7 if quick else 15
    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # PyTensor's and Numba's notices about their caches
    rows, summary = [], []
    for n in sizes:
        for problem, operator, f, x, contexts in problems(n):
            calls, preps, expected = {}, {}, None
            for name, backend in {**SYMBOLIC, **NUMERIC}.items():
                kinds = ("numpy",) if name in SYMBOLIC else ("numpy", name)
                for kind in kinds:
                    xk = x if kind == "numpy" else native(kind, x)
                    ck = contexts if kind == "numpy" else tuple(native(kind, c) for c in contexts)
                    run, seconds, result = call(operator, f, backend, xk, ck)
                    result = np.asarray(result.detach() if hasattr(result, "detach") else result)
                    expected = result if expected is None else expected
                    np.testing.assert_allclose(result, expected, rtol=1e-9, atol=1e-9)
                    calls[(name, kind)] = run
                    preps[(name, kind)] = seconds
            times = dict(zip(calls, interleaved(list(calls.values()), repeats=repeats), strict=True))
            best = {name: min(t for (b, _), t in times.items() if b == name) for name in {**SYMBOLIC, **NUMERIC}}
            fastest = min(best, key=best.__getitem__)
            numeric_best = min(best[name] for name in NUMERIC)
            for (name, kind), seconds in times.items():
                rows.append({
                    "problem": problem, "operator": operator, "n": n, "backend": name, "x kind": kind,
                    "call_s": seconds, "prepare_s": preps[(name, kind)],
                })  # fmt: skip
            entry = {"problem": problem, "operator": operator, "n": n, "fastest": fastest}
            for name in {**SYMBOLIC, **NUMERIC}:
                entry[name] = fmt_time(best[name])
                if name in SYMBOLIC:
                    entry[f"{name} / best numeric"] = f"{best[name] / numeric_best:.2f}"
                entry[f"prep {name}"] = fmt_time(preps[(name, "numpy")])
            summary.append(entry)
            print(f"  n={n:<3} {problem:15} {operator:9} fastest: {fastest}", file=sys.stderr)
    calls_columns = ["problem", "operator", "n", "fastest", "sympy", "casadi", "pytensor", "jax", "torch",
                     "sympy / best numeric", "casadi / best numeric", "pytensor / best numeric"]  # fmt: skip
    prep_columns = ["problem", "operator", "n", *(f"prep {name}" for name in {**SYMBOLIC, **NUMERIC})]
    print("Prepared call (JAX, torch: the faster of NumPy and native inputs)\n")
    print(table(summary, calls_columns))
    print("\nPreparation and first call (NumPy inputs)\n")
    print(table(summary, prep_columns))
    small = [e for e in summary if e["n"] <= 10]
    won = sum(e["fastest"] in SYMBOLIC for e in small)
    print(f"\nn <= 10: a symbolic backend is the fastest in {won} of {len(small)} cases")
    meta = {"quick": quick, "sizes": sizes, "float": "float64", "summary": summary}
    print(f"written to {save('symbolic', rows, meta)}")


if __name__ == "__main__":
    main()
