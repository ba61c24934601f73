"""Coloring speed and quality: anydiff's greedy colorings against SciPy's CPR column grouping.

Patterns: the 2-D 5-point Laplacian on an N × N grid (n = N²) and a banded matrix with
5 diagonals (half-bandwidth 2), at n ≈ 10³, 10⁴ and 10⁵. For each, every column-coloring
order of `anydiff.sparse.coloring` (and `order="best"`) runs next to
`scipy.optimize._numdiff.group_columns` (SciPy's private, compiled greedy grouping used by
`least_squares` and `approx_derivative`) in natural order and in its default random order.
The symmetric colorings of the same patterns (star, and acyclic for substitution) are
timed too. Times are medians over repeats of the whole call, pattern in CSR form, as
process CPU time (robust on a shared machine) and wall time.

Run: `PYTHONPATH=src python benchmarks/coloring.py [--sizes 1000 10000 100000]`.
Writes `benchmarks/results/coloring.json`.
"""

from __future__ import annotations

import argparse
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

from anydiff.sparse.coloring import ORDERS, GreedyColoring, coloring

RESULTS = Path(__file__).parent / "results" / "coloring.json"


def laplacian_2d(side: int) -> sp.csr_array:
    """Pattern of the 5-point Laplacian on a side × side grid, C order."""
    path = sp.diags_array([np.ones(side - 1), np.ones(side - 1)], offsets=[-1, 1], shape=(side, side))
    eye = sp.eye_array(side)
    return sp.csr_array((sp.kron(eye, path) + sp.kron(path, eye) + sp.eye_array(side * side)) != 0)


def banded(n: int, half_bandwidth: int = 2) -> sp.csr_array:
    """Pattern with 2 * half_bandwidth + 1 diagonals."""
    offsets = list(range(-half_bandwidth, half_bandwidth + 1))
    return sp.csr_array(sp.diags_array([np.ones(n - abs(d)) for d in offsets], offsets=offsets) != 0)


def median_seconds(fn: Callable[[], Any], budget: float = 1.0, repeats: int = 7) -> tuple[float, float, Any]:
    """Median CPU and wall seconds of `fn` over up to `repeats` calls (at least 3; fewer past `budget`).

    CPU time (this process only) is the headline figure: every method here is single-threaded,
    and it stays meaningful on a machine shared with other jobs, where wall time does not.
    """
    cpu: list[float] = []
    wall: list[float] = []
    result = None
    while len(cpu) < repeats and (len(cpu) < 3 or sum(wall) < budget):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu), statistics.median(wall), result


def methods(pattern: sp.csr_array) -> dict[str, Callable[[], np.ndarray]]:
    """Every coloring to compare, as zero-argument callables returning colors."""
    natural = np.arange(pattern.shape[1])
    runs: dict[str, Callable[[], np.ndarray]] = {
        "scipy group_columns, natural": partial(group_columns, pattern, order=natural),
        "scipy group_columns, default (random)": partial(group_columns, pattern),
    }
    for order in (*ORDERS, "best"):
        runs[f"anydiff column, {order}"] = partial(coloring, pattern, "column", GreedyColoring(order))
    for order in ("largest_first", "best"):
        star = GreedyColoring(order)
        acyclic = GreedyColoring(order, decompression="substitution")
        runs[f"anydiff star, {order}"] = partial(coloring, pattern, "symmetric", star)
        runs[f"anydiff acyclic, {order}"] = partial(coloring, pattern, "symmetric", acyclic)
    return runs


def run(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        side = round(math.sqrt(size))
        for name, pattern in (("laplacian_2d", laplacian_2d(side)), ("banded_5", banded(size))):
            n = pattern.shape[1]
            reference = None
            for method, fn in methods(pattern).items():
                cpu, wall, colors = median_seconds(fn, budget=1.0 if n <= 20_000 else 4.0)
                if reference is None:
                    reference = cpu
                rows.append(
                    {
                        "pattern": name,
                        "n": n,
                        "method": method,
                        "colors": int(colors.max()) + 1,
                        "cpu_ms": round(cpu * 1e3, 3),
                        "wall_ms": round(wall * 1e3, 3),
                        "cpu_vs_scipy_natural": round(cpu / reference, 1),
                    }
                )
                print(f"  {name:13} n={n:<7} {method:40} {rows[-1]['colors']:>4} colors  {cpu * 1e3:9.2f} ms")
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    columns = ("pattern", "n", "method", "colors", "cpu_ms", "wall_ms", "cpu_vs_scipy_natural")
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(cell[i]) for cell in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    rows = run(args.sizes)
    print()
    print(table(rows))
    meta = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "timing": "median over 3-7 calls of the whole coloring, CSR pattern in; cpu_ms is process CPU time",
        "load_average": list(os.getloadavg()),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
