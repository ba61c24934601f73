"""Where the preparation time of PyTensor and MLX goes, with cold and warm compiler caches.

Both libraries compile what anydiff prepares, and keep the machine code in a cache on disk:

- PyTensor: `pytensor.function` rewrites the graph, then its default linker, Numba, compiles it
  at the first call (anydiff makes that call while preparing, once for writable and once for
  read-only arrays, which are two Numba types). PyTensor keeps compiled graphs in
  `<base_compiledir>/numba`; the C linker (`PYTENSOR_FLAGS=linker=cvm`) keeps compiled C ops
  in its own `compiledir`; `mode=FAST_COMPILE` compiles nothing and calls NumPy op by op.
- MLX: `mx.compile` fuses elementwise chains, which MLX's CPU backend turns into C++ kernels
  compiled by the system compiler at the first call, cached in `$TMPDIR/mlx/<version>/cpu`.

Each case runs in a fresh process (`python preparation.py --case NAME`), once with empty caches
(a temporary `base_compiledir` / `TMPDIR`) and once more with the caches that run left. It
reports anydiff's import of the library, the preparation (`ad.prepare_*`), the first prepared
call, both again in the same process (`again`: what the library does once per process is done),
and the prepared call itself (median of interleaved samples in the child).

    python benchmarks/preparation.py                     # every case
    python benchmarks/preparation.py --library pytensor  # one library's cases, the others' kept

Prints the table and writes `benchmarks/results/preparation.json` (with `--library`, the rows
and load average of the other libraries are those already there).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _timing import fmt_time, interleaved, save, table

HERE = Path(__file__).parent

# name -> (library, description, extra environment)
CASES: dict[str, tuple[str, str, dict[str, str]]] = {
    "pytensor-hessian": ("pytensor", "rosenbrock hessian, n = 5, Numba linker (default)", {}),
    "pytensor-hessian-cvm": ("pytensor", "rosenbrock hessian, n = 5, C linker", {"linker": "cvm"}),
    "pytensor-hessian-python": ("pytensor", "rosenbrock hessian, n = 5, NumPy op by op", {"mode": "FAST_COMPILE"}),
    "pytensor-gradient": ("pytensor", "rosenbrock gradient, n = 5, Numba linker (default)", {}),
    "mlx-gradient": ("mlx", "Σ sin(x) x² + tanh(x)³ gradient, n = 10, float64, compile=True (default)", {}),
    "mlx-hessian": ("mlx", "Σ sin(x) x² + tanh(x)³ hessian, n = 10, float64, compile=True (default)", {}),
    "mlx-hessian-eager": ("mlx", "Σ sin(x) x² + tanh(x)³ hessian, n = 10, float64, compile=False", {"compile": "0"}),
}


def child(case: str) -> dict[str, Any]:
    """Run one case in this (fresh) process and return its figures."""
    import numpy as np

    import anydiff as ad
    from anydiff.extend import implementation

    library, _, options = CASES[case]
    operator = case.split("-")[1]
    if library == "pytensor":

        def f(x: Any) -> Any:
            xp = ad.namespace(x)
            return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

        x: Any = np.random.default_rng(0).uniform(-1.0, 1.0, 5)
        backend: Any = ad.AutoPyTensor()
        done: Any = np.asarray  # results are NumPy arrays, computed
    else:
        import mlx.core as mx

        def f(x: Any) -> Any:
            xp = ad.namespace(x)
            return xp.sum(xp.sin(x) * x**2 + xp.tanh(x) ** 3)

        x = mx.array(np.linspace(-1.0, 1.0, 10), dtype=mx.float64)
        backend = ad.AutoMLX(compile=options.get("compile") != "0")
        done = mx.eval  # MLX computes lazily: evaluate, which compiles at the first call
    begin = time.perf_counter()
    implementation(backend)  # anydiff imports the library at its first preparation
    start = time.perf_counter()
    prep = getattr(ad, f"prepare_{operator}")(f, backend, x)
    prepared = time.perf_counter()
    done(getattr(ad, operator)(f, backend, x, prep=prep))
    first = time.perf_counter()
    call = interleaved([lambda: done(getattr(ad, operator)(f, backend, x, prep=prep))], repeats=9, target=0.02)[0]
    again = time.perf_counter()  # the same preparation again: what a process pays once is paid
    done(getattr(ad, operator)(f, backend, x, prep=getattr(ad, f"prepare_{operator}")(f, backend, x)))
    return {
        "import_s": start - begin,
        "prepare_s": prepared - start,
        "first_call_s": first - prepared,
        "call_s": call,
        "again_s": time.perf_counter() - again,
    }


def run(case: str, cache: str) -> dict[str, Any]:
    library, _, options = CASES[case]
    env = dict(os.environ)
    if library == "pytensor":
        flags = [f"base_compiledir={cache}"] + [f"{k}={v}" for k, v in options.items()]
        env["PYTENSOR_FLAGS"] = ",".join(flags)
    else:
        env["TMPDIR"] = cache
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--case", case],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=HERE,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--case" in sys.argv:
        print(json.dumps(child(sys.argv[sys.argv.index("--case") + 1])))
        return
    libraries = sorted({library for library, _, _ in CASES.values()})
    if "--library" in sys.argv:
        libraries = [sys.argv[sys.argv.index("--library") + 1]]
    path = HERE / "results" / "preparation.json"
    kept = json.loads(path.read_text()) if path.exists() else {"meta": {"load_average": {}}, "rows": []}
    rows = [row for row in kept["rows"] if row["library"] not in libraries]
    load_average = {k: v for k, v in kept["meta"]["load_average"].items() if k not in libraries}
    for case, (library, description, _) in CASES.items():
        if library not in libraries:
            continue
        with tempfile.TemporaryDirectory() as cache:
            for caches in ("empty", "warm"):
                result = run(case, cache)
                total = result["prepare_s"] + result["first_call_s"]
                rows.append(
                    {
                        "library": library,
                        "case": description,
                        "caches": caches,
                        "import": fmt_time(result["import_s"]),
                        "prepare": fmt_time(result["prepare_s"]),
                        "first call": fmt_time(result["first_call_s"]),
                        "prepare + first call": fmt_time(total),
                        "again": fmt_time(result["again_s"]),
                        "call": fmt_time(result["call_s"]),
                        "under 1 s": total < 1.0,
                        **result,
                    }
                )
                print(rows[-1])
        load_average[library] = list(os.getloadavg())
    order = [description for _, description, _ in CASES.values()]
    rows.sort(key=lambda row: order.index(row["case"]))
    columns = ("library", "case", "caches", "import", "prepare", "first call", "prepare + first call", "again", "call")
    columns += ("under 1 s",)
    print(table(rows, columns))
    versions = {}
    for name in ("numpy", "pytensor", "numba", "mlx.core"):
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "installed")
        except ImportError:
            pass
    path = save("preparation", rows, {"versions": versions, "load_average": load_average})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
