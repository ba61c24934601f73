"""Sparsity-detection speed: anydiff's detectors against asdex on 2-D stencil problems.

Problems (N x N grid, n = N²):
- Jacobian of `f(u) = L u + u³`, `L` the 5-point Laplacian applied by slicing and concatenation;
- the same with `L` a dense NumPy constant matrix (small n only: it holds n² numbers);
- Hessian of the stencil energy `sum of squared differences + sum(u⁴)`.

Each is written twice, with the array API (for `TracerSparsityDetector`) and with `jax.numpy`
(for `JaxprSparsityDetector` and asdex, when installed). Times are the best of a few runs, in
milliseconds; every pattern is checked against the known stencil pattern.

Run: `PYTHONPATH=src python benchmarks/detection.py [--sizes 2500 10000 99856]`.
Writes `benchmarks/results/detection.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse as sp
from array_api_compat import array_namespace

import anydiff as ad
from anydiff.sparse.detection import (
    TracerSparsityDetector,
    hessian_sparsity,
    jacobian_sparsity,
)

RESULTS = Path(__file__).parent / "results" / "detection.json"


def laplacian_plus_cube(side: int, xp_of: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def f(u: Any) -> Any:
        xp = xp_of(u)
        grid = xp.reshape(u, (side, side))
        zero_row, zero_column = xp.zeros((1, side), dtype=u.dtype), xp.zeros((side, 1), dtype=u.dtype)
        laplacian = (
            xp.concat([grid[1:, :], zero_row], axis=0) + xp.concat([zero_row, grid[:-1, :]], axis=0)
            + xp.concat([grid[:, 1:], zero_column], axis=1)
            + xp.concat([zero_column, grid[:, :-1]], axis=1) - 4 * grid
        )  # fmt: skip
        return xp.reshape(laplacian, (-1,)) + u**3

    return f


def dense_laplacian_plus_cube(side: int, xp_of: Callable[[Any], Any]) -> Callable[[Any], Any]:
    matrix = laplacian_pattern(side).toarray() * 1.0 - 5.0 * np.eye(side * side)

    def f(u: Any) -> Any:
        return matrix @ u + u**3

    return f


def stencil_energy(side: int, xp_of: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def f(u: Any) -> Any:
        xp = xp_of(u)
        grid = xp.reshape(u, (side, side))
        return (
            xp.sum((grid[1:, :] - grid[:-1, :]) ** 2) + xp.sum((grid[:, 1:] - grid[:, :-1]) ** 2)
            + xp.sum(u**4)
        )  # fmt: skip

    return f


def laplacian_pattern(side: int) -> sp.csr_array:
    line = sp.diags_array([1, 1, 1], offsets=[-1, 0, 1], shape=(side, side), dtype=bool)
    identity = sp.eye_array(side, dtype=bool)
    return sp.csr_array(sp.kron(line, identity) + sp.kron(identity, line), dtype=bool)


def jax_namespace(u: Any) -> Any:
    import jax.numpy as jnp

    return jnp


def best_time(run: Callable[[], sp.sparray], repeats: int) -> tuple[float, sp.sparray]:
    times, pattern = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        pattern = run()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3, pattern


def asdex_detector() -> Any:
    try:
        import asdex
    except ImportError:
        return None

    def detect(kind: str, f: Callable[[Any], Any], x: np.ndarray) -> sp.csr_array:
        pattern = getattr(asdex, kind)(f, x)
        rows, columns = np.asarray(pattern.rows), np.asarray(pattern.cols)
        return sp.csr_array((np.ones(rows.size, bool), (rows, columns)), shape=pattern.shape)

    return detect


def detectors(
    kind: str,
    detect: Callable[..., sp.csr_array],
    array_api_f: Callable[[Any], Any],
    jax_f: Callable[[Any], Any],
    x: np.ndarray,
    asdex: Callable[..., sp.csr_array] | None,
) -> dict[str, Callable[[], sp.sparray]]:
    """One zero-argument run per detector, for one problem and size."""
    runs = {
        "tracer": lambda: detect(array_api_f, x, detector=TracerSparsityDetector()),
        "jaxpr": lambda: detect(jax_f, x, detector=ad.JaxprSparsityDetector()),
    }
    if asdex is not None:
        runs["asdex"] = lambda: asdex(f"{kind}_sparsity", jax_f, x)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2500, 10_000, 99_856])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import jax

    asdex = asdex_detector()
    problems = [
        ("jacobian", "L u + u^3 (stencil)", laplacian_plus_cube, jacobian_sparsity, 1e9),
        ("jacobian", "L u + u^3 (dense NumPy L)", dense_laplacian_plus_cube, jacobian_sparsity, 2500),
        ("hessian", "stencil energy", stencil_energy, hessian_sparsity, 1e9),
    ]
    records = []
    for kind, name, make, detect, max_n in problems:
        for n in args.sizes:
            if n > max_n:
                continue
            side = math.isqrt(n)
            x = np.zeros(side * side)
            truth = laplacian_pattern(side)
            row: dict[str, Any] = {"kind": kind, "problem": name, "n": side * side}
            candidates = detectors(kind, detect, make(side, array_namespace), make(side, jax_namespace), x, asdex)
            with jax.enable_x64(True):
                for label, run in candidates.items():
                    milliseconds, pattern = best_time(run, args.repeats)
                    difference = sp.csr_array(pattern, dtype=bool) != truth
                    assert difference.nnz == 0, f"{label} found a wrong pattern for {name}"
                    row[f"{label}_ms"] = round(milliseconds, 2)
            row["nnz"] = int(truth.nnz)
            records.append(row)

    labels = ["tracer", "jaxpr"] + (["asdex"] if asdex is not None else [])
    header = f"{'kind':9} {'problem':28} {'n':>7} {'nnz':>8} " + " ".join(f"{label + ' ms':>11}" for label in labels)
    print(header)
    print("-" * len(header))
    for row in records:
        times = " ".join(f"{row.get(f'{label}_ms', float('nan')):>11.1f}" for label in labels)
        print(f"{row['kind']:9} {row['problem']:28} {row['n']:>7} {row['nnz']:>8} {times}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "jax": jax.__version__}
    if asdex is not None:
        import asdex as asdex_module

        versions["asdex"] = getattr(asdex_module, "__version__", "installed")
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "python": platform.python_version(),
                "versions": versions,
                "repeats": args.repeats,
                "results": records,
            },
            indent=2,
        )  # fmt: skip
        + "\n"
    )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
