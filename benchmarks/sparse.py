"""Sparse Jacobians and Hessians end to end: detection, coloring, prepared `ad.AutoSparse` calls.

Side by side in one run (CPU, float64), the targets of the sparse issue:

1. detection at n = 10⁵ on the 2-D Laplacian + u³ (`f(u) = L u + u³`, 5-point stencil):
   `TracerSparsityDetector` (target < 0.3 s) against asdex and CasADi when installed;
2. coloring at n = 10⁴ (same pattern) against SciPy's greedy grouping (`group_columns`, its
   private helper behind `approx_derivative`): as fast, no more colors than its natural order,
   with the compiled kernels (numba, the `fast` extra; the pure-Python kernels, which anydiff
   uses for a coloring this small until numba is in use in the process, are timed alongside:
   see `benchmarks/coloring.py`);
3. prepared sparse Jacobians at n = 2 500 on that problem, each against its own dense Jacobian:
   JAX (target ≥ 500× faster than `jit(jacfwd)`, within 1.2× of asdex's prepared sparse
   Jacobian), torch (against `torch.func.jacfwd`; target: prepare and first call < 0.3 s,
   reported apart from the first preparation in the process, which pays torch's lazy imports)
   and finite differences (anydiff's dense central differences, and SciPy's
   `approx_derivative` with the same pattern and groups). JAX's own floor is timed alongside:
   one jitted `u + 1` at the same n, which JAX's CPU client, like every kernel of 1 000 flops
   or more, runs on its worker thread (the dispatch a sparse call cannot avoid). The JAX rows
   are then measured again in a second process with `jax_cpu_enable_async_dispatch` off, where
   every kernel runs inline in the calling thread. Their `CPU per call` column is the CPU time
   of a call in all of the process's threads (`time.process_time`, timed apart): above the call's
   wall time when one thread waits for another by spinning;
4. sparse Hessians at n = 2 000 (chained Rosenbrock, arrowhead, 2-D stencil energy) against the
   dense `jit(jax.hessian)` and torch's dense Hessian (target ≥ 50×); for JAX, the compressed
   Hessian-vector products alone, jitted by hand, are timed alongside (the floor of the call).

Calls are timed in alternation (`_timing.interleaved`: ratio of medians); one-time work (detection,
coloring) by the best of a few runs. Every sparse result is checked against its dense reference.
Memory stays modest: no dense matrix above n = 2 500.

    python benchmarks/sparse.py [--quick] [detection coloring jacobians hessians]

Both JAX and torch run on one thread (XLA flags, `torch.set_num_threads(1)`): on a shared machine
their thread pools otherwise make the timings swing by 10×.

Prints the table and writes `benchmarks/results/sparse.json`.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import importlib.util  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from _timing import fmt_time, interleaved, save, table  # noqa: E402
from coloring import with_kernels  # noqa: E402

import anydiff as ad  # noqa: E402
from anydiff.extend import implementation  # noqa: E402
from anydiff.sparse.decompression import seed_matrix  # noqa: E402

QUICK = "--quick" in sys.argv
# The JAX Jacobians alone, with JAX's asynchronous CPU dispatch off (rows printed as JSON): the
# second process `jacobians` starts. The flag is read once, when JAX makes its CPU client.
INLINE = "--jax-inline" in sys.argv
ROWS: list[dict[str, Any]] = []


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# -- problems, written once with the array API ---------------------------------------------------


def laplacian_plus_cube(side: int) -> Callable[[Any], Any]:
    """`f(u) = L u + u³` on a `side × side` grid with a zero boundary, `u` flat."""

    def f(u: Any) -> Any:
        xp = ad.namespace(u)
        grid = xp.reshape(u, (side, side))
        zero_row, zero_column = xp.zeros((1, side), dtype=u.dtype), xp.zeros((side, 1), dtype=u.dtype)
        laplacian = (
            4 * grid
            - xp.concat([grid[1:, :], zero_row], axis=0) - xp.concat([zero_row, grid[:-1, :]], axis=0)
            - xp.concat([grid[:, 1:], zero_column], axis=1) - xp.concat([zero_column, grid[:, :-1]], axis=1)
        )  # fmt: skip
        return xp.reshape(laplacian, (-1,)) + u**3

    return f


def rosenbrock(x: Any) -> Any:
    """Chained Rosenbrock: a tridiagonal Hessian."""
    xp = ad.namespace(x)
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def arrowhead_energy(x: Any) -> Any:
    """`Σ (x₀ xᵢ)² / 2 + Σ x⁴ / 4`: a dense first row and column, and the diagonal."""
    xp = ad.namespace(x)
    return xp.sum((x[0] * x[1:]) ** 2) / 2 + xp.sum(x**4) / 4


def stencil_energy(rows: int, columns: int) -> Callable[[Any], Any]:
    """Squared differences between grid neighbours plus `Σ cos(u)`: a 5-point stencil Hessian."""

    def f(u: Any) -> Any:
        xp = ad.namespace(u)
        grid = xp.reshape(u, (rows, columns))
        return (
            xp.sum((grid[1:, :] - grid[:-1, :]) ** 2) + xp.sum((grid[:, 1:] - grid[:, :-1]) ** 2)
            + xp.sum(xp.cos(u))
        )  # fmt: skip

    return f


def record(section: str, problem: str, n: int, method: str, seconds: float, **extra: Any) -> None:
    ROWS.append(
        {
            "section": section,
            "problem": problem,
            "n": n,
            "method": method,
            "time": fmt_time(seconds),
            "seconds": seconds,
            **extra,
        }
    )


def best(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def densify(matrix: Any) -> np.ndarray:
    if sp.issparse(matrix):
        return matrix.toarray()
    if hasattr(matrix, "to_dense"):  # torch
        return matrix.to_dense().numpy()
    return np.asarray(matrix.todense())  # BCOO, under x64 here


# -- 1. detection ------------------------------------------------------------------------------


def detection() -> None:
    side = 100 if QUICK else 316
    n = side * side
    f, x = laplacian_plus_cube(side), np.zeros(side * side)
    seconds, pattern = best(lambda: ad.jacobian_sparsity(f, x), 3)
    record(
        "detection",
        "L u + u³",
        n,
        "anydiff TracerSparsityDetector",
        seconds,
        nnz=pattern.nnz,
        target="< 0.3 s",
        met=seconds < 0.3,
    )
    if installed("asdex"):
        import asdex
        import jax

        with jax.enable_x64(True):
            seconds, found = best(lambda: asdex.jacobian_sparsity(f, x), 1)
        record("detection", "L u + u³", n, "asdex.jacobian_sparsity", seconds, nnz=int(found.nnz))
    if installed("casadi"):
        casadi = implementation(ad.AutoCasADi())
        seconds, found = best(lambda: casadi.jacobian_sparsity(f, x, ()), 1)
        assert (found != pattern).nnz == 0
        record("detection", "L u + u³", n, "CasADi (trace onto SX + jacobian_sparsity)", seconds, nnz=found.nnz)


# -- 2. coloring -------------------------------------------------------------------------------


def coloring() -> None:
    from scipy.optimize._numdiff import group_columns

    side = 100
    n = side * side
    pattern = ad.jacobian_sparsity(laplacian_plus_cube(side), np.zeros(n))
    natural = np.arange(n)

    def natural_coloring() -> np.ndarray:
        return ad.coloring(pattern, "column", ad.GreedyColoring("natural"))

    runs = {
        "SciPy group_columns, natural order": lambda: group_columns(pattern, order=natural),
        "anydiff coloring, natural": lambda: with_kernels(True, natural_coloring),
        "anydiff coloring, natural, pure kernels": lambda: with_kernels(False, natural_coloring),
        "anydiff coloring, largest_first (default)": lambda: ad.coloring(pattern, "column"),
    }
    reference = None
    for method, run in runs.items():
        seconds, colors = best(run, 5)
        ncolors = int(colors.max()) + 1
        if reference is None:
            reference = (seconds, ncolors)
            record("coloring", "L u + u³ columns", n, method, seconds, colors=ncolors)
            continue
        ratio = seconds / reference[0]
        met = ncolors <= reference[1] and ratio <= 1.0 if method == "anydiff coloring, natural" else None
        record(
            "coloring",
            "L u + u³ columns",
            n,
            method,
            seconds,
            colors=ncolors,
            ratio=f"{ratio:.2f}× SciPy",
            target="≤ 1× SciPy, ≤ its colors" if met is not None else "",
            met=met,
        )


# -- 3. prepared sparse Jacobians ---------------------------------------------------------------


def jacobians() -> None:
    side = 30 if QUICK else 50
    n = side * side
    f = laplacian_plus_cube(side)
    x_np = np.random.default_rng(0).uniform(-1, 1, n)
    expected = ad.jacobian(f, ad.AutoSparse(ad.AutoFiniteDiff()), x_np).toarray()
    jax_jacobian(f, x_np, n, expected)
    if INLINE:
        return
    jax_inline_jacobian()
    torch_jacobian(f, x_np, n, expected)
    finite_difference_jacobian(f, x_np, n, expected)


def sparse_prep(operator: str, f: Callable[[Any], Any], backend: ad.AbstractBackend, x: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    prep = getattr(ad, f"prepare_{operator}")(f, backend, x)
    getattr(ad, operator)(f, backend, x, prep=prep)  # compiles where the backend compiles
    return prep, time.perf_counter() - start


Target = tuple[str, float, str]


def compare(
    section: str,
    problem: str,
    n: int,
    runs: dict[str, Callable[[], Any]],
    reference: str,
    targets: dict[str, list[Target]],
    extra: dict[str, dict],
    cpu: bool = False,
) -> None:
    """Time `runs` in alternation, with ratios against `runs[reference]` (the dense Jacobian).

    Each target `(label, bound, other)` of a run asks for `time(other) / time(run) >= bound` (a
    speed-up), or with a negative bound for `time(run) / time(other) <= -bound` (within a factor).
    With `cpu`, the rows also say the CPU time a call takes in all of the process's threads.
    """
    slowest = max(best(run, 1)[0] for run in runs.values())
    repeats = 3 if QUICK or slowest > 0.5 else 9  # dense references of seconds: fewer rounds
    times = dict(zip(runs, interleaved(list(runs.values()), repeats=repeats, target=0.05), strict=True))
    cpu_times = (
        dict(zip(runs, interleaved(list(runs.values()), repeats, 0.05, clock=time.process_time), strict=True))
        if cpu
        else {}
    )
    for name, seconds in times.items():
        row: dict[str, Any] = dict(extra.get(name, {}))
        if name in cpu_times:
            row["CPU per call"] = fmt_time(cpu_times[name])
        if name != reference:
            speedup = times[reference] / seconds
            row["ratio"] = (
                f"{speedup:.0f}× faster than dense" if speedup >= 1 else f"{1 / speedup:.2f}× slower than dense"
            )
        labels, achieved, met = [], [], []
        for label, bound, other in targets.get(name, []):
            value = times[other] / seconds if bound > 0 else seconds / times[other]
            labels.append(label)
            achieved.append(f"{value:.3g}")
            met.append(value >= bound if bound > 0 else value <= -bound)
        if labels:
            row.update(target="; ".join(labels), achieved="; ".join(achieved), met=all(met))
        record(section, problem, n, name, seconds, **row)


def jax_inline_jacobian() -> None:
    """The JAX Jacobian rows again, from a process with JAX's asynchronous CPU dispatch off."""
    import json
    import subprocess

    command = [sys.executable, __file__, "--jax-inline", *(["--quick"] if QUICK else [])]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    ROWS.extend(json.loads(done.stdout.strip().splitlines()[-1]))


def jax_jacobian(f: Callable[[Any], Any], x_np: np.ndarray, n: int, expected: np.ndarray) -> None:
    import jax

    section = "jacobian (JAX, inline dispatch)" if INLINE else "jacobian (JAX)"
    with jax.enable_x64(True):
        x = jax.numpy.asarray(x_np)
        backend = ad.AutoSparse(ad.AutoJAX())
        prep, prepare_time = sparse_prep("jacobian", f, backend, x)
        assert np.allclose(densify(ad.jacobian(f, backend, x, prep=prep)), expected, rtol=1e-6, atol=1e-8)
        # the option of a better vertex order: 5 colors on the 5-point stencil instead of 7
        best_backend = ad.AutoSparse(ad.AutoJAX(), coloring_algorithm=ad.GreedyColoring("best"))
        best_prep, best_prepare_time = sparse_prep("jacobian", f, best_backend, x)
        dense = jax.jit(jax.jacfwd(f))
        plus_one = jax.jit(lambda u: u + 1)
        name, best_name = (
            "anydiff AutoSparse(AutoJAX()), prepared",
            "anydiff AutoSparse(AutoJAX(), GreedyColoring('best'))",
        )
        runs = {
            "dense jit(jax.jacfwd)": lambda: dense(x).block_until_ready(),
            name: lambda: ad.jacobian(f, backend, x, prep=prep).data.block_until_ready(),
            best_name: lambda: ad.jacobian(f, best_backend, x, prep=best_prep).data.block_until_ready(),
            "JAX's floor: jit(lambda u: u + 1)": lambda: plus_one(x).block_until_ready(),
        }
        extra = {
            name: {"colors": prep.ncolors, "prepare": fmt_time(prepare_time)},
            best_name: {"colors": best_prep.ncolors, "prepare": fmt_time(best_prepare_time)},
        }
        targets = {
            name: [("≥ 500× dense", 500, "dense jit(jax.jacfwd)")],
            best_name: [("≥ 500× dense", 500, "dense jit(jax.jacfwd)")],
        }
        if installed("asdex"):
            import asdex

            start = time.perf_counter()
            sparse_jacobian = jax.jit(asdex.jacobian(f, x))
            reference = sparse_jacobian(x)
            asdex_prepare = time.perf_counter() - start
            assert np.allclose(densify(reference), expected, rtol=1e-6, atol=1e-8)
            runs["asdex jit(asdex.jacobian), prepared"] = lambda: sparse_jacobian(x).data.block_until_ready()
            extra["asdex jit(asdex.jacobian), prepared"] = {
                "colors": asdex.jacobian_coloring(f, x).num_colors,
                "prepare": fmt_time(asdex_prepare),
            }
            for sparse_name in (name, best_name):
                targets[sparse_name].append(("≤ 1.2× asdex's time", -1.2, "asdex jit(asdex.jacobian), prepared"))
        compare(section, "L u + u³", n, runs, "dense jit(jax.jacfwd)", targets, extra, cpu=True)


def torch_jacobian(f: Callable[[Any], Any], x_np: np.ndarray, n: int, expected: np.ndarray) -> None:
    if not installed("torch"):
        return
    import torch

    x = torch.asarray(x_np)
    backend = ad.AutoSparse(ad.AutoTorch())
    # The first preparation in the process pays torch's own lazy imports on its first use of
    # the tape with explicit cotangents (`torch.fx.experimental.symbolic_shapes`, SymPy); the
    # second is anydiff's cost alone.
    _, first_time = sparse_prep("jacobian", f, backend, x)
    prep, prepare_time = sparse_prep("jacobian", f, backend, x)
    assert np.allclose(densify(ad.jacobian(f, backend, x, prep=prep)), expected, rtol=1e-6, atol=1e-8)
    dense = torch.func.jacfwd(f)
    name = "anydiff AutoSparse(AutoTorch()), prepared"
    runs = {"dense torch.func.jacfwd": lambda: dense(x), name: lambda: ad.jacobian(f, backend, x, prep=prep)}
    extra = {
        name: {
            "colors": prep.ncolors,
            "prepare": f"{fmt_time(prepare_time)} (first in process {fmt_time(first_time)})",
            "mode": prep.mode,
        }
    }
    compare("jacobian (torch)", "L u + u³", n, runs, "dense torch.func.jacfwd", {}, extra)
    record(
        "jacobian (torch)",
        "L u + u³",
        n,
        "anydiff AutoSparse(AutoTorch()): prepare + first call",
        prepare_time,
        target="< 0.3 s",
        achieved=f"{prepare_time:.3g} s (first in process: {first_time:.3g} s)",
        met=prepare_time < 0.3,
    )


def finite_difference_jacobian(f: Callable[[Any], Any], x: np.ndarray, n: int, expected: np.ndarray) -> None:
    from scipy.optimize._numdiff import approx_derivative

    sparse_backend, dense_backend = ad.AutoSparse(ad.AutoFiniteDiff()), ad.AutoFiniteDiff()
    prep, prepare_time = sparse_prep("jacobian", f, sparse_backend, x)
    dense_prep = ad.prepare_jacobian(f, dense_backend, x)
    pattern, groups = prep.sparsity, np.asarray(prep.colors)
    scipy_result = approx_derivative(f, x, method="3-point", sparsity=(pattern, groups))
    assert np.allclose(scipy_result.toarray(), expected, rtol=1e-5, atol=1e-7)
    runs = {
        "dense AutoFiniteDiff() (central), prepared": lambda: ad.jacobian(f, dense_backend, x, prep=dense_prep),
        "SciPy approx_derivative(3-point, same pattern and groups)": lambda: approx_derivative(
            f, x, method="3-point", sparsity=(pattern, groups)
        ),
        "anydiff AutoSparse(AutoFiniteDiff()), prepared": lambda: ad.jacobian(f, sparse_backend, x, prep=prep),
    }
    name = "anydiff AutoSparse(AutoFiniteDiff()), prepared"
    extra = {name: {"colors": prep.ncolors, "prepare": fmt_time(prepare_time)}}
    targets = {name: [("faster than SciPy", 1.0, "SciPy approx_derivative(3-point, same pattern and groups)")]}
    compare(
        "jacobian (finite differences)",
        "L u + u³",
        n,
        runs,
        "dense AutoFiniteDiff() (central), prepared",
        targets,
        extra,
    )


# -- 4. sparse Hessians ------------------------------------------------------------------------


def hessians() -> None:
    import jax

    n = 400 if QUICK else 2000
    rows = 20 if QUICK else 40
    problems = {
        "chained Rosenbrock": rosenbrock,
        "arrowhead energy": arrowhead_energy,
        "2-D stencil energy": stencil_energy(rows, n // rows),
    }
    x_np = np.random.default_rng(1).uniform(-1, 1, n)
    for problem, f in problems.items():
        with jax.enable_x64(True):
            x = jax.numpy.asarray(x_np)
            dense = jax.jit(jax.hessian(f))
            expected = np.asarray(dense(x))
            backend = ad.AutoSparse(ad.AutoJAX())
            prep, prepare_time = sparse_prep("hessian", f, backend, x)
            assert np.allclose(densify(ad.hessian(f, backend, x, prep=prep)), expected, rtol=1e-8, atol=1e-8)
            products = jax.jit(hessian_products(f, prep.info["colors"]))
            name = "anydiff AutoSparse(AutoJAX()), prepared"
            floor = "the same products alone: jit(vmap(jvp(grad(f))))"
            runs = {
                "dense jit(jax.hessian)": lambda dense=dense, x=x: dense(x).block_until_ready(),
                name: lambda f=f, prep=prep, backend=backend, x=x: ad.hessian(
                    f, backend, x, prep=prep
                ).data.block_until_ready(),
                floor: lambda products=products, x=x: products(x).block_until_ready(),
            }
            extra = {name: {"colors": prep.ncolors, "prepare": fmt_time(prepare_time)}}
            targets = {name: [("≥ 50× dense", 50, "dense jit(jax.hessian)")]}
            compare("hessian (JAX)", problem, n, runs, "dense jit(jax.hessian)", targets, extra, cpu=True)
        if installed("torch"):
            torch_hessian(problem, f, x_np, n, expected)


def hessian_products(f: Callable[[Any], Any], colors: np.ndarray) -> Callable[[Any], Any]:
    """The compressed Hessian of `f` written by hand in JAX: one Hessian-vector product (forward
    over reverse) per color of the star coloring, without the decompression: the floor of a
    sparse Hessian's call."""
    import jax

    seeds = seed_matrix(colors).T  # one seed per row
    gradient = jax.grad(f)
    return lambda x: jax.vmap(lambda seed: jax.jvp(gradient, (x,), (seed,))[1])(jax.numpy.asarray(seeds))


def torch_hessian(problem: str, f: Callable[[Any], Any], x_np: np.ndarray, n: int, expected: np.ndarray) -> None:
    import torch

    x = torch.asarray(x_np)
    backend = ad.AutoSparse(ad.AutoTorch())
    prep, prepare_time = sparse_prep("hessian", f, backend, x)
    assert np.allclose(densify(ad.hessian(f, backend, x, prep=prep)), expected, rtol=1e-8, atol=1e-8)
    dense_prep = ad.prepare_hessian(f, ad.AutoTorch(), x)  # torch's fastest dense route (batched double backward)
    name = "anydiff AutoSparse(AutoTorch()), prepared"
    runs = {
        "dense AutoTorch() hessian (batched double backward)": lambda: ad.hessian(
            f, ad.AutoTorch(), x, prep=dense_prep
        ),
        name: lambda: ad.hessian(f, backend, x, prep=prep),
    }
    extra = {name: {"colors": prep.ncolors, "prepare": fmt_time(prepare_time)}}
    targets = {name: [("≥ 50× dense", 50, "dense AutoTorch() hessian (batched double backward)")]}
    compare("hessian (torch)", problem, n, runs, "dense AutoTorch() hessian (batched double backward)", targets, extra)


def main() -> None:
    if INLINE:
        import json

        import jax

        jax.config.update("jax_cpu_enable_async_dispatch", False)
        jacobians()
        print(json.dumps(ROWS, default=str))
        return
    if installed("torch"):
        import torch

        torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    parts = {part.__name__: part for part in (detection, coloring, jacobians, hessians)}
    chosen = [name for name in sys.argv[1:] if name in parts] or list(parts)
    for name in chosen:
        parts[name]()
    columns = (
        "section", "problem", "n", "method", "time", "CPU per call",
        "colors", "prepare", "ratio", "target", "achieved", "met",
    )  # fmt: skip
    print(table(ROWS, columns))
    versions = {"numpy": np.__version__}
    for name in ("scipy", "jax", "torch", "asdex", "casadi"):
        if installed(name):
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "installed")
    load = {"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    path = save("sparse", ROWS, {"quick": QUICK, **load, "versions": versions})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
