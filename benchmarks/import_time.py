"""What `import anydiff` costs on top of `import numpy` (issue 19: at most NumPy + 15 ms).

Each sample is a fresh interpreter that times one import (interpreter start-up left out), by the
wall clock and by its CPU time (`time.process_time`, which leaves out the time other processes
hold the cores): `import numpy`, `import anydiff` (which imports NumPy), and `import anydiff` in a
process that has already imported NumPy, which is the cost anydiff adds, measured directly. They
run in alternation, so that the load of a shared machine hits each alike; the table shows the
medians (and the least wall-clock sample), and the modules each import adds. The target, 15 ms
over NumPy, is judged on the direct measure (`anydiff after numpy`, wall clock).

    python benchmarks/import_time.py [--repeats 31] [--compare OLD/src]

`--compare` times another source tree's anydiff in the same alternation (before and after a change:
`git worktree add /tmp/old <commit>`, then `--compare /tmp/old/src`).

Bytecode is written (and warmed up) before timing: `PYTHONDONTWRITEBYTECODE` would make every
sample compile anydiff's sources. Prints the table and writes `benchmarks/results/import.json`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from importlib.metadata import version

from _timing import save, table

#: what `import anydiff` may add to `import numpy` (wall clock, median)
TARGET_MS = 15.0

CHILD = """
import sys, time
{before}
known = set(sys.modules)
start, cpu = time.perf_counter(), time.process_time()
import {timed}
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
added = set(sys.modules) - known
print(elapsed, cpu, len(added), sum(m.split(".")[0] == "anydiff" for m in added))
"""


def sample(before: str, timed: str, env: dict[str, str]) -> tuple[float, float, int, int]:
    """Seconds (wall clock and CPU) of one import in a fresh interpreter, the modules it added and
    the anydiff modules among them."""
    code = CHILD.format(before=f"import {before}" if before else "", timed=timed)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    seconds, cpu, modules, own = out.stdout.split()
    return float(seconds), float(cpu), int(modules), int(own)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=31, help="samples of each import (default 31)")
    parser.add_argument(
        "--compare",
        metavar="SRC",
        help="also time the anydiff of another source tree (its `src` folder, e.g. a git worktree of "
        "an older commit), in the same alternation",
    )
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # label -> (what is imported before the clock starts, what is timed, environment)
    cases = {
        "numpy": ("", "numpy", env),
        "anydiff": ("", "anydiff", env),
        "anydiff after numpy": ("numpy", "anydiff", env),
    }
    if args.compare:
        other = {**env, "PYTHONPATH": os.path.abspath(args.compare)}
        cases["anydiff (compared)"] = ("", "anydiff", other)
        cases["anydiff after numpy (compared)"] = ("numpy", "anydiff", other)
    for before, timed, case_env in cases.values():  # write and warm the bytecode caches
        sample(before, timed, case_env)
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    counts: dict[str, tuple[int, int]] = {}
    for _ in range(args.repeats):
        for name, (before, timed, case_env) in cases.items():
            seconds, cpu_seconds, modules, own = sample(before, timed, case_env)
            wall[name].append(seconds * 1e3)
            cpu[name].append(cpu_seconds * 1e3)
            counts[name] = (modules, own)

    numpy_wall, numpy_cpu = statistics.median(wall["numpy"]), statistics.median(cpu["numpy"])
    rows = []
    for name in cases:
        median_wall, median_cpu = statistics.median(wall[name]), statistics.median(cpu[name])
        if name.startswith("anydiff after numpy"):  # measured directly
            over_wall, over_cpu = median_wall, median_cpu
        else:
            over_wall, over_cpu = median_wall - numpy_wall, median_cpu - numpy_cpu
        # The target is judged on the direct measure: one median, not the difference of two.
        checked = name == "anydiff after numpy"
        rows.append(
            {
                "import": name,
                "wall": f"{median_wall:.1f} ms",
                "wall min": f"{min(wall[name]):.1f} ms",
                "CPU": f"{median_cpu:.1f} ms",
                "over numpy": "" if name == "numpy" else f"{over_wall:.1f} ms",
                "over numpy, CPU": "" if name == "numpy" else f"{over_cpu:.1f} ms",
                "modules": counts[name][0],
                "anydiff modules": counts[name][1],
                "target": f"<= {TARGET_MS:g} ms" if checked else "-",
                "met": ("yes" if median_wall <= TARGET_MS else "no") if checked else "-",
                "wall_ms": median_wall,
                "wall_min_ms": min(wall[name]),
                "cpu_ms": median_cpu,
                "over_numpy_ms": None if name == "numpy" else over_wall,
                "over_numpy_cpu_ms": None if name == "numpy" else over_cpu,
            }
        )
    columns = ["import", "wall", "wall min", "CPU", "over numpy", "over numpy, CPU", "modules", "anydiff modules"]
    columns += ["target", "met"]
    print(table(rows, columns))
    meta = {
        "python": sys.version.split()[0],
        "repeats": args.repeats,
        "compared": args.compare,
        "load_average": os.getloadavg(),
        "versions": {"numpy": version("numpy")},
    }
    print(f"load average {meta['load_average'][0]:.2f}; wrote {save('import', rows, meta)}")


if __name__ == "__main__":
    main()
