"""The docs' benchmark page, written from the results of every benchmark in `results/`.

Each benchmark writes its numbers to `results/<name>.json` (`_timing.save`); this script reads
them all and writes `docs/benchmarks.md`: first the rows that carry a target and whether it is
met, file by file, and `targets.md` (hand-written: why a target is not met), then each file's
table with the conditions it was measured in (its `meta`).
Nothing is measured here, so the page is always the committed results, and a test checks that
it is up to date.

    python benchmarks/report.py            # rewrite docs/benchmarks.md
    python benchmarks/report.py --check    # exit 1 if it differs from the results
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE = HERE.parent / "docs" / "benchmarks.md"
CONSTRAINTS = HERE.parent / "requirements" / "constraints.txt"
#: hand-written: the targets not met, and their floors (after the tallies)
NOTES = HERE / "targets.md"

#: results written by a script of another name
SCRIPTS = {
    "overhead_trees": "overhead.py",
    "bridge_hosts": "bridge.py",
    "import": "import_time.py",
    "coloring_optimal": "coloring.py",
}
#: columns that repeat another one in other units (raw seconds are dropped everywhere)
REPEATED = {"import": {"wall_ms", "wall_min_ms", "cpu_ms", "over_numpy_ms", "over_numpy_cpu_ms"}}
#: tables too long for the page: which rows to show, and where the rest is summarised
SHOWN = {
    "coloring": ("the 2-D Laplacian", lambda row: row.get("pattern") == "laplacian_2d"),
    "second_order_pairs": ("the pairs over the time budget or failing", lambda row: row.get("status") != "ok"),
    "symbolic": ("the fastest backend per problem (the meta's summary)", None),
}
MAX_ROWS = 60


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        if PAGE.read_text() != text:
            sys.exit(f"{PAGE} is out of date: run python benchmarks/report.py")
        return
    PAGE.write_text(text)
    print(f"written to {PAGE}")


def render() -> str:
    """The page, from the committed results."""
    files = {path.stem: json.loads(path.read_text()) for path in sorted(RESULTS.glob("*.json"))}
    tallies = [_tally(name, data) for name, data in files.items() if _targets(data)]
    lines = [
        "# Benchmarks",
        "",
        "Every figure is a ratio or a time measured side by side in one run by a script of",
        "`benchmarks/`, on the machines anydiff is developed on: x86-64, 2 CPU cores shared with other",
        "work (the load average of each run is in its conditions), no GPU, Python 3.11. Overheads are",
        "ratios against the library's own fastest call of the same work, timed in alternation in one",
        "process: absolute times vary from run to run by more than the differences measured. Their",
        "targets are checked on the paired ratio, the median of the ratios of samples taken in the same",
        "round (each round in a new order), with its 95 % confidence interval beside it. The `floor`",
        "column is that ratio for the native call behind the least a front with anydiff's checks must",
        "do (`benchmarks/_overhead.py`): what no such front can beat, and, where it is far from 1, a",
        "measure of the run's noise.",
        "This page is written by `python benchmarks/report.py` from `benchmarks/results/*.json`.",
        "",
        f"Versions (`requirements/constraints.txt`): {', '.join(_pins())}.",
        "",
        "## Targets",
        "",
        "The rows of each benchmark that carry a target; the tables below have every row.",
        "",
        *_table(["benchmark", "met", "not met"], tallies),
        "",
        NOTES.read_text(),
    ]
    for name, data in files.items():
        lines += _section(name, data)
    return "\n".join(lines).rstrip() + "\n"


def _pins() -> list[str]:
    return [
        line.strip()
        for line in CONSTRAINTS.read_text().splitlines()
        if line.strip() and not line.startswith("#") and "==" in line
    ]


def _rows(data: Any) -> list[dict[str, Any]]:
    return data.get("rows") or data.get("results") or []


def _meta(data: Any) -> dict[str, Any]:
    meta = data.get("meta")
    return meta if meta is not None else {k: v for k, v in data.items() if k not in ("rows", "results")}


def _targets(data: Any) -> list[dict[str, Any]]:
    return [row for row in _rows(data) if row.get("target") and _met(row.get("met")) is not None]


def _met(value: Any) -> bool | None:
    return {True: True, "yes": True, False: False, "no": False}.get(value)


def _tally(name: str, data: Any) -> list[str]:
    rows = _targets(data)
    met = sum(1 for row in rows if _met(row["met"]))
    return [f"[{_title(name)}](#{name.replace('_', '-')})", str(met), str(len(rows) - met)]


def _title(name: str) -> str:
    return name.replace("_", " ")


def _section(name: str, data: Any) -> list[str]:
    script = SCRIPTS.get(name, f"{name}.py")
    rows, meta = _rows(data), _meta(data)
    lines = [f"## {_title(name)}", "", f"`benchmarks/{script}`: {_purpose(script)}", ""]
    conditions = {k: v for k, v in meta.items() if k != "summary"}
    if conditions:
        lines += ["Conditions: " + "; ".join(f"{k} {_cell(v)}" for k, v in conditions.items()) + ".", ""]
    shown = SHOWN.get(name)
    if shown is not None:
        what, keep = shown
        rows = meta.get("summary", []) if keep is None else [row for row in rows if keep(row)]
        lines += [f"Shown: {what}; every row is in `benchmarks/results/{name}.json`.", ""]
    if len(rows) > MAX_ROWS:
        lines += [f"The first {MAX_ROWS} of {len(rows)} rows; all are in `benchmarks/results/{name}.json`.", ""]
        rows = rows[:MAX_ROWS]
    columns = [c for c in _columns(rows) if not c.endswith(("_s", "_bytes")) and c not in REPEATED.get(name, ())]
    return [*lines, *_table(columns, [[_cell(row.get(c)) for c in columns] for row in rows]), ""]


def _purpose(script: str) -> str:
    """The first sentence of the script's docstring."""
    path = HERE / script
    doc = ast.get_docstring(ast.parse(path.read_text())) if path.exists() else None
    return (doc or "").split("\n\n")[0].replace("\n", " ")


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


if __name__ == "__main__":
    main()
