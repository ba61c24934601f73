"""Peak memory of dense Jacobians: bounded batches of tangents (the default) against one batch.

`f(x) = sin(x) * sum(x) + x` is cheap and has a dense n x n Jacobian. Each measurement runs in a
subprocess of its own, one at a time: the process prepares the Jacobian, computes it once, and
reports its peak resident memory (`resource.getrusage`) above what it held before the call, the
wall time of a second call, and the size of the result itself. "one batch" passes
`batch_size=n` (all n basis tangents at once, as before batching existed); "default" bounds the
tangents and their results to about 256 MB (`anydiff._prep.TANGENT_BYTES`, which batches from
n ≈ 8 000 on); "batch_size=256" shows a small bound. Finite differences ignore `batch_size`:
they evaluate one column at a time, but keep every perturbed value until the end.

n = 20 000 would need 3.2 GB for the result alone and about 20 GB in one batch, more than this
shared machine can give one benchmark: the sizes measured stop at 10 000, and the n = 20 000 row
is extrapolated from them (peak memory grows as n²).

    python benchmarks/memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _timing import fmt_time, save, table

SIZES = (2_500, 5_000, 10_000)
BACKENDS = ("AutoJAX()", "AutoTorch()", "AutoFiniteDiff()")
# `batch_size` passed to `prepare_jacobian`: all n at once, the default bound, a small bound
BATCHINGS = {"one batch": None, "default": None, "batch_size=256": 256}

MEASURE = r"""
import json, resource, sys, time, warnings
import numpy as np
import anydiff as ad
warnings.simplefilter("ignore")

def f(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.sum(x) + x

backend, n, batch_size = eval("ad." + sys.argv[1]), int(sys.argv[2]), eval(sys.argv[3])
x = np.linspace(0.0, 1.0, n)
ad.jacobian(f, backend, x[:3])  # load the library's lazily imported parts
prep = ad.prepare_jacobian(f, backend, x, batch_size=batch_size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
jacobian = ad.jacobian(f, backend, x, prep=prep)  # the first call compiles (JAX)
nbytes = jacobian.nbytes
del jacobian
start = time.perf_counter()
ad.jacobian(f, backend, x, prep=prep)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak": peak - before, "result": nbytes, "seconds": elapsed,
                  "batch_size": prep.info.get("batch_size", n)}))
"""


def measure(backend: str, n: int, batch_size: int | None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, backend, str(n), repr(batch_size)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB"


def main() -> None:
    rows = []
    for backend in BACKENDS:
        for batching in BATCHINGS:
            peaks = {}
            for n in SIZES:
                r = measure(backend, n, n if batching == "one batch" else BATCHINGS[batching])
                peaks[n] = r["peak"]
                rows.append(
                    {
                        "backend": backend,
                        "batching": batching,
                        "n": n,
                        "batch_size": r["batch_size"],
                        "result": gb(r["result"]),
                        "peak": gb(r["peak"]),
                        "peak / result": f"{r['peak'] / r['result']:.1f}",
                        "time": fmt_time(r["seconds"]),
                        "peak_bytes": r["peak"],
                        "result_bytes": r["result"],
                        "seconds": r["seconds"],
                    }
                )
                print(f"{backend} {batching} n={n}: {gb(r['peak'])}", file=sys.stderr)
            # peak ≈ c n² from the largest size measured
            largest = SIZES[-1]
            estimate = peaks[largest] * (20_000 / largest) ** 2
            rows.append(
                {
                    "backend": backend,
                    "batching": batching,
                    "n": "20000 (extrapolated)",
                    "batch_size": "",
                    "result": gb(20_000**2 * 8),
                    "peak": gb(estimate),
                    "peak / result": f"{estimate / (20_000**2 * 8):.1f}",
                    "time": "",
                    "peak_bytes": estimate,
                    "result_bytes": 20_000**2 * 8,
                    "seconds": None,
                }
            )
    columns = ["backend", "batching", "n", "batch_size", "result", "peak", "peak / result", "time"]
    print(table(rows, columns))
    path = save("memory", rows, {"function": "sin(x) * sum(x) + x", "sizes": SIZES})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
