"""Finite-difference Jacobians of an expensive simulation, evaluated in parallel.

The simulation (`anydiff.testing.simulations.heat_rod`) costs about 50 ms per call. Its Jacobian
in 8 parameters by central differences needs 17 calls. Wall time with 1, 2 and N workers on one
machine, through a process pool and a Dask LocalCluster, against the serial run; parallel
efficiency = speedup / workers; and the overhead per task of each engine (a trivial function).

    python benchmarks/parallel_fd.py
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import anydiff as ad
from _timing import fmt_time, save, table
from anydiff.testing.simulations import heat_rod, sleepy_square

X = np.linspace(0.5, 1.5, 8)


def calibrate_steps(target: float = 0.05) -> int:
    steps = 1000
    start = time.perf_counter()
    heat_rod(X, steps)
    elapsed = time.perf_counter() - start
    return max(100, int(steps * target / elapsed))


def wall(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def engines(workers: int):
    yield "process pool", lambda: ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        import distributed
    except ImportError:
        return

    class DaskEngine:
        def __enter__(self):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None,
                )
                self.client = distributed.Client(self.cluster)
            return self.client.get_executor()

        def __exit__(self, *exc):
            self.client.close()
            self.cluster.close()

    yield "dask LocalCluster", DaskEngine


def main() -> None:
    steps = ad.Constant(calibrate_steps())
    serial = ad.AutoFiniteDiff()
    t_serial = wall(lambda: ad.jacobian(heat_rod, serial, X, steps))
    t_call = t_serial / (2 * X.size + 1)
    rows = [{"engine": "serial", "workers": 1, "jacobian": fmt_time(t_serial), "speedup": "1.00",
             "efficiency": "1.00", "overhead/task": "-", "seconds": t_serial}]
    counts = sorted({1, 2, os.cpu_count() or 2})
    for workers in counts:
        for name, make in engines(workers):
            with make() as executor:
                backend = ad.AutoFiniteDiff(executor=executor)
                ad.jacobian(heat_rod, backend, X, steps)  # warm the workers (imports)
                t = wall(lambda: ad.jacobian(heat_rod, backend, X, steps))
                trivial = ad.AutoFiniteDiff(executor=executor)
                ad.jacobian(sleepy_square, trivial, np.ones(32))
                t_trivial = wall(lambda: ad.jacobian(sleepy_square, trivial, np.ones(32)))
            speedup = t_serial / t
            rows.append({
                "engine": name, "workers": workers, "jacobian": fmt_time(t), "speedup": f"{speedup:.2f}",
                "efficiency": f"{speedup / workers:.2f}", "overhead/task": fmt_time(t_trivial / 65),
                "seconds": t,
            })
    print(f"one simulation: {fmt_time(t_call)}; Jacobian: {2 * X.size + 1} simulations (central differences)")
    print(table(rows, ["engine", "workers", "jacobian", "speedup", "efficiency", "overhead/task"]))
    print(f"\nwritten to {save('parallel_fd', rows, {'simulation_seconds': t_call})}")


if __name__ == "__main__":
    main()
