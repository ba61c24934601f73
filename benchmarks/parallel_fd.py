"""Finite-difference Jacobians of an expensive simulation, evaluated in parallel.

The simulation (`anydiff.testing.simulations.heat_rod`) costs about 50 ms per call. Its Jacobian
in 8 parameters by central differences needs 17 calls. Each engine, with 1 and 2 workers on this
machine, is timed in alternation with the serial run (same load for both): a process pool, a
Dask `LocalCluster` given as its `Client` (the points' specs in chunks, `f`, contexts and `x`
scattered once) and given as `Client.get_executor()` (a plain `concurrent.futures` executor:
chunks, no scattering). Speedup = serial / parallel wall time (median of the alternations);
serial fraction = Amdahl's `s` in `speedup = 1 / (s + (1 - s) / workers)`; overhead per point:
a trivial function's Jacobian (65 points) through the engine, per point. The row "by hand, no
anydiff" splits the same 17 simulations into one chunk per process of a pool: what the machine
gives at that moment, whatever the engine.

Simulated larger cluster: this machine has 2 cores, so the scaling curve past 2 workers uses a
simulation that waits 50 ms without the CPU (`_simulated.waiting_simulation`), as if each
worker had a core of its own: 33 points (16 parameters), a Dask `Client` with 1, 2, 4 and 8
worker processes, against the serial time of the same waits; ideal = the speedup of whole
points shared out evenly (33 points on 8 workers take 5 rounds: 6.6).

    python benchmarks/parallel_fd.py
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import platform
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import numpy as np
from _simulated import waiting_simulation
from _timing import fmt_time, save, table

import anydiff as ad
from anydiff.testing.simulations import heat_rod, sleepy_square

X = np.linspace(0.5, 1.5, 8)
WAIT = 0.05


def calibrate_steps(target: float = 0.05) -> int:
    steps = 1000
    elapsed = min(wall(lambda: heat_rod(X, steps)) for _ in range(5))  # the least disturbed run
    return max(100, int(steps * target / elapsed))


def wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternated(first, second, repeats: int) -> tuple[float, float]:
    """Median wall times of two functions run in alternation."""
    a, b = [], []
    for _ in range(repeats):
        a.append(wall(first))
        b.append(wall(second))
    return statistics.median(a), statistics.median(b)


@contextmanager
def dask_client(workers: int):
    import distributed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask's start-up chatter (ports, deprecations)
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.close()
            cluster.close()


@contextmanager
def process_pool(workers: int):
    # spawn, not fork: forking a process that runs JAX or torch threads is unsafe
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@contextmanager
def dask_executor(workers: int):
    with dask_client(workers) as client:
        yield client.get_executor()


ENGINES = {"process pool": process_pool, "dask Client": dask_client, "dask get_executor()": dask_executor}


def serial_fraction(speedup: float, workers: int) -> str:
    return "-" if workers == 1 else f"{(workers / speedup - 1) / (workers - 1):.3f}"


def measured(steps, repeats: int) -> list[dict]:
    serial = ad.AutoFiniteDiff()

    def run_serial():
        return ad.jacobian(heat_rod, serial, X, steps)

    rows = []
    for workers in (1, 2):
        for name, engine in ENGINES.items():
            with engine(workers) as executor:
                backend = ad.AutoFiniteDiff(executor=executor)
                expected = run_serial()
                assert np.array_equal(ad.jacobian(heat_rod, backend, X, steps), expected)  # warms the workers
                t_serial, t = alternated(run_serial, lambda b=backend: ad.jacobian(heat_rod, b, X, steps), repeats)
                ad.jacobian(sleepy_square, backend, np.ones(32))
                t_trivial = min(wall(lambda b=backend: ad.jacobian(sleepy_square, b, np.ones(32))) for _ in range(3))
            speedup = t_serial / t
            rows.append({
                "engine": name, "workers": workers, "serial": fmt_time(t_serial), "parallel": fmt_time(t),
                "speedup": f"{speedup:.2f}", "efficiency": f"{speedup / workers:.2f}",
                "serial fraction": serial_fraction(speedup, workers),
                "overhead/point": fmt_time(t_trivial / 65), "target": "≥ 1.7" if workers == 2 else "-",
                "met": ("yes" if speedup >= 1.7 else "no") if workers == 2 else "-",
                "serial_s": t_serial, "parallel_s": t,
            })
            print(f"  {name} x{workers}: {speedup:.2f}", file=sys.stderr)
        rows.append(by_hand(workers, steps, run_serial, repeats))
    return rows


def by_hand(workers: int, steps, run_serial, repeats: int) -> dict:
    """What the machine gives at the moment: the same 17 simulations split by hand into one
    chunk per process of a pool, without anydiff, in alternation with the serial Jacobian."""
    points = [X * (1 + 1e-6 * i) for i in range(2 * X.size + 1)]
    simulate = functools.partial(heat_rod, steps=steps.value)
    with process_pool(workers) as pool:
        list(pool.map(simulate, points[:workers]))  # warms the workers
        chunk = -(-len(points) // workers)
        t_serial, t = alternated(run_serial, lambda: list(pool.map(simulate, points, chunksize=chunk)), repeats)
    speedup = t_serial / t
    print(f"  by hand x{workers}: {speedup:.2f}", file=sys.stderr)
    return {
        "engine": "by hand, no anydiff", "workers": workers, "serial": fmt_time(t_serial), "parallel": fmt_time(t),
        "speedup": f"{speedup:.2f}", "efficiency": f"{speedup / workers:.2f}",
        "serial fraction": serial_fraction(speedup, workers), "overhead/point": "-", "target": "-", "met": "-",
        "serial_s": t_serial, "parallel_s": t,
    }


def simulated(repeats: int) -> list[dict]:
    x = np.linspace(0.5, 1.5, 16)
    points = 2 * x.size + 1
    wait = ad.Constant(WAIT)
    t_serial = wall(lambda: ad.jacobian(waiting_simulation, ad.AutoFiniteDiff(), x, wait))
    rows = []
    for workers in (1, 2, 4, 8):
        with dask_client(workers) as client:
            backend = ad.AutoFiniteDiff(executor=client)
            ad.jacobian(waiting_simulation, backend, x, wait)
            times = [wall(lambda b=backend: ad.jacobian(waiting_simulation, b, x, wait)) for _ in range(repeats)]
            t = statistics.median(times)
        ideal = points / -(-points // workers)  # whole points per worker
        speedup = t_serial / t
        rows.append({
            "engine": "dask Client (waiting simulation)", "workers": workers, "serial": fmt_time(t_serial),
            "parallel": fmt_time(t), "speedup": f"{speedup:.2f}", "ideal": f"{ideal:.2f}",
            "efficiency": f"{speedup / ideal:.2f}", "serial fraction": serial_fraction(speedup, workers),
            "serial_s": t_serial, "parallel_s": t,
        })
        print(f"  simulated x{workers}: {speedup:.2f} (ideal {ideal:.2f})", file=sys.stderr)
    return rows


def versions() -> dict:
    import distributed

    return {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "distributed": distributed.__version__,
        "load_before": os.getloadavg()[0],
    }


def main() -> None:
    meta = versions()
    steps = ad.Constant(calibrate_steps())
    t_call = min(wall(lambda: heat_rod(X, steps.value)) for _ in range(5))
    rows = measured(steps, repeats=5)
    curve = simulated(repeats=3)
    meta.update(simulation_seconds=t_call, steps=steps.value, load_after=os.getloadavg()[0])
    print(f"one simulation: {fmt_time(t_call)}; Jacobian: {2 * X.size + 1} simulations (central differences)")
    print(f"load average: {meta['load_before']:.1f} before, {meta['load_after']:.1f} after, on {os.cpu_count()} cores")
    columns = ["engine", "workers", "serial", "parallel", "speedup", "efficiency", "serial fraction"]
    print(table(rows, [*columns, "overhead/point", "target", "met"]))
    print(f"\nsimulated cluster: {2 * 16 + 1} points of a {fmt_time(WAIT)} wait")
    print(table(curve, [*columns[:5], "ideal", *columns[5:]]))
    print(f"\nwritten to {save('parallel_fd', rows + curve, meta)}")


if __name__ == "__main__":
    main()
