"""Coloring speed and quality: anydiff's greedy colorings against SciPy's CPR column grouping.

Patterns, at n ≈ `--size` columns (default 10 000):

- `laplacian_2d`: the 2-D 5-point Laplacian on an N × N grid (n = N²);
- `banded_5`: 5 diagonals (half-bandwidth 2);
- `random`: about 5 random nonzeros per row plus the diagonal (seeded);
- `arrowhead`: a dense first row and column plus the diagonal, at n / 10: every column
  meets every other in row 0, so the column intersection graph is complete (n² edges) and
  SciPy's grouping costs O(n²) there too.

For each pattern every column-coloring order of `anydiff.sparse.coloring` (and
`order="best"`) runs next to `scipy.optimize._numdiff.group_columns` (SciPy's private,
compiled greedy grouping used by `least_squares` and `approx_derivative`), in natural order
(the same greedy coloring as anydiff's `"natural"`) and in SciPy's default random order.
anydiff runs its numba-compiled kernels (forced here; by default they are used once they
are in use in the process, or for colorings too large for the pure kernels), and its
pure-Python fallback for a few orders (`pure`). The symmetric colorings (star, and acyclic
for substitution) of the same graph (symmetrized: `P + Pᵀ` for `random`) are timed against
the same SciPy call.

Timing: every method is called in turn within each round (interleaved, so a change of
machine load hits all of them), each sample repeating the call until it takes about 2 ms;
the figure is the median over rounds of process CPU time per call. `vs_scipy` is the median
over rounds of the method's time divided by SciPy's natural-order time in the same round.
Colors from the compiled and the pure kernels are checked to be identical.

Run: `PYTHONPATH=src python benchmarks/coloring.py [--size 10000] [--budget 4]`.
Writes `benchmarks/results/coloring.json`.

`--optimal` instead colors small patterns (hundreds to 2 000 columns) with `OptimalColoring`
(OR-Tools' CP-SAT, 5 s time limit) next to the greedy default and `order="best"`: colors, the
lower bound (the most nonzeros in a row), and the wall time of one coloring. Writes
`benchmarks/results/coloring_optimal.json`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize._numdiff import group_columns

from anydiff.sparse.coloring import ORDERS, GreedyColoring, OptimalColoring, coloring

# The module, not the function that `anydiff.sparse` re-exports under the same name.
coloring_module = importlib.import_module("anydiff.sparse.coloring")

RESULTS = Path(__file__).parent / "results" / "coloring.json"
OPTIMAL_RESULTS = RESULTS.with_name("coloring_optimal.json")


def laplacian_2d(side: int) -> sp.csr_array:
    """Pattern of the 5-point Laplacian on a side × side grid, C order."""
    path = sp.diags_array([np.ones(side - 1), np.ones(side - 1)], offsets=[-1, 1], shape=(side, side))
    eye = sp.eye_array(side)
    return sp.csr_array((sp.kron(eye, path) + sp.kron(path, eye) + sp.eye_array(side * side)) != 0)


def banded(n: int, half_bandwidth: int = 2) -> sp.csr_array:
    """Pattern with 2 * half_bandwidth + 1 diagonals."""
    offsets = list(range(-half_bandwidth, half_bandwidth + 1))
    return sp.csr_array(sp.diags_array([np.ones(n - abs(d)) for d in offsets], offsets=offsets) != 0)


def random_sparse(n: int, per_row: float = 5.0, seed: int = 0) -> sp.csr_array:
    """About `per_row` random nonzeros per row, plus the diagonal."""
    random = sp.random_array((n, n), density=per_row / n, rng=np.random.default_rng(seed), format="csr")
    return sp.csr_array((random + sp.eye_array(n)) != 0)


def arrowhead(n: int) -> sp.csr_array:
    """Dense first row and column plus the diagonal."""
    first = np.zeros(n, dtype=bool)
    first[0] = True
    border = sp.csr_array(np.outer(first, np.ones(n, dtype=bool)))
    return sp.csr_array((border + border.T + sp.eye_array(n)) != 0)


def patterns(size: int) -> dict[str, sp.csr_array]:
    return {
        "laplacian_2d": laplacian_2d(round(math.sqrt(size))),
        "banded_5": banded(size),
        "random": random_sparse(size),
        "arrowhead": arrowhead(max(size // 10, 2)),
    }


def with_kernels(use_numba: bool, fn: Callable[[], np.ndarray]) -> np.ndarray:
    """Run `fn` with the compiled (numba) or the pure-Python kernels."""
    saved = coloring_module._use_numba
    coloring_module._use_numba = use_numba
    try:
        return fn()
    finally:
        coloring_module._use_numba = saved


def methods(pattern: sp.csr_array) -> dict[str, Callable[[], np.ndarray]]:
    """Every coloring to compare, as zero-argument callables returning colors."""
    n = pattern.shape[1]
    natural = np.arange(n)
    symmetric = sp.csr_array((pattern + pattern.T) != 0)
    runs: dict[str, Callable[[], np.ndarray]] = {
        "scipy group_columns, natural": partial(group_columns, pattern, order=natural),
        "scipy group_columns, default (random)": partial(group_columns, pattern),
    }
    compiled = partial(with_kernels, True)
    pure = partial(with_kernels, False)
    for order in (*ORDERS, "best"):
        runs[f"anydiff column, {order}"] = partial(
            compiled, partial(coloring, pattern, "column", GreedyColoring(order))
        )
    for order in ("largest_first", "best"):
        star = partial(coloring, symmetric, "symmetric", GreedyColoring(order))
        acyclic = partial(coloring, symmetric, "symmetric", GreedyColoring(order, decompression="substitution"))
        runs[f"anydiff star, {order}"] = partial(compiled, star)
        runs[f"anydiff acyclic, {order}"] = partial(compiled, acyclic)
    for order in ("natural", "largest_first", "best"):
        runs[f"anydiff column, {order}, pure"] = partial(
            pure, partial(coloring, pattern, "column", GreedyColoring(order))
        )
    star = partial(coloring, symmetric, "symmetric", GreedyColoring("largest_first"))
    acyclic = partial(coloring, symmetric, "symmetric", GreedyColoring("largest_first", decompression="substitution"))
    runs["anydiff star, largest_first, pure"] = partial(pure, star)
    runs["anydiff acyclic, largest_first, pure"] = partial(pure, acyclic)
    return runs


def sample(fn: Callable[[], Any], number: int) -> float:
    """CPU seconds per call over `number` calls."""
    start = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - start) / number


def measure(runs: dict[str, Callable[[], np.ndarray]], budget: float) -> dict[str, list[float]]:
    """Interleaved rounds of CPU time per call: at least 5 rounds, at most 25, about `budget` seconds."""
    numbers = {}
    for name, fn in runs.items():
        fn()  # compile (numba) and warm up
        once = sample(fn, 1)
        numbers[name] = max(1, min(200, int(2e-3 / max(once, 1e-7))))
    times: dict[str, list[float]] = {name: [] for name in runs}
    start = time.perf_counter()
    while len(times["scipy group_columns, natural"]) < 5 or (
        time.perf_counter() - start < budget and len(times["scipy group_columns, natural"]) < 25
    ):
        for name, fn in runs.items():
            times[name].append(sample(fn, numbers[name]))
    return times


def run(size: int, budget: float) -> list[dict[str, Any]]:
    rows = []
    for name, pattern in patterns(size).items():
        runs = methods(pattern)
        colors = {method: fn() for method, fn in runs.items()}
        for method in runs:
            if method.endswith(", pure"):
                compiled = colors[method.removesuffix(", pure")]
                assert np.array_equal(colors[method], compiled), f"{name}: {method} differs from the compiled kernels"
        times = measure(runs, budget)
        reference = times["scipy group_columns, natural"]
        for method in runs:
            ratios = [t / r for t, r in zip(times[method], reference, strict=True)]
            rows.append(
                {
                    "pattern": name,
                    "n": pattern.shape[1],
                    "nnz": pattern.nnz,
                    "method": method,
                    "colors": int(colors[method].max()) + 1,
                    "cpu_ms": round(statistics.median(times[method]) * 1e3, 4),
                    "vs_scipy": round(statistics.median(ratios), 2),
                    "rounds": len(ratios),
                }
            )
            row = rows[-1]
            print(
                f"  {name:13} n={row['n']:<7} {method:40} {row['colors']:>5} colors"
                f"  {row['cpu_ms']:10.3f} ms  {row['vs_scipy']:8.2f}x"
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    columns = ("pattern", "n", "method", "colors", "cpu_ms", "vs_scipy")
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(cell[i]) for cell in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def optimal_rows() -> list[dict[str, Any]]:
    """Greedy and CP-SAT colorings of small patterns: colors, lower bound, seconds (one run each)."""
    small = {
        "laplacian_2d": laplacian_2d(20),
        "banded_5": banded(400),
        "random": random_sparse(300),
        "random, larger": random_sparse(2000),
    }
    algorithms = {
        "greedy, largest_first": GreedyColoring(),
        "greedy, best": GreedyColoring("best"),
        "OptimalColoring(time_limit=5)": OptimalColoring(time_limit=5.0),
    }
    with_kernels(True, partial(coloring, small["random"], "column"))  # numba's kernels loaded
    rows = []
    for name, pattern in small.items():
        bound = int(np.diff(pattern.indptr).max())
        for method, algorithm in algorithms.items():
            start = time.perf_counter()
            colors = with_kernels(True, partial(coloring, pattern, "column", algorithm))
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "pattern": name,
                    "n": pattern.shape[1],
                    "nnz": pattern.nnz,
                    "method": method,
                    "colors": int(colors.max()) + 1,
                    "lower bound": bound,
                    "seconds": round(seconds, 3),
                }
            )
            print(f"  {name:15} n={pattern.shape[1]:<5} {method:30} {rows[-1]['colors']:>3} colors  {seconds:.3f} s")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000, help="columns of the patterns (arrowhead: a tenth)")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds of interleaved rounds per pattern")
    parser.add_argument("--optimal", action="store_true", help="OptimalColoring on small patterns instead")
    args = parser.parse_args()
    if args.optimal:
        import ortools

        meta = {"ortools": ortools.__version__, "cpus": os.cpu_count(), "load_average": list(os.getloadavg())}
        OPTIMAL_RESULTS.write_text(json.dumps({"meta": meta, "rows": optimal_rows()}, indent=2) + "\n")
        print(f"\nwrote {OPTIMAL_RESULTS}")
        return
    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    rows = run(args.size, args.budget)
    print()
    print(table(rows))
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba_version,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "timing": (
            "interleaved rounds; per method the median over rounds of process CPU time per call "
            "(each sample repeats the call to about 2 ms); vs_scipy is the median over rounds of the "
            "ratio to scipy group_columns in natural order in the same round"
        ),
        "load_average": list(os.getloadavg()),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
