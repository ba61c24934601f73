"""The `anydiff` command: which backends are installed, which work for a function, which is fastest.

    anydiff backends                       installed backends, their versions, whether they run
    anydiff compare                        the built-in scenarios on every installed backend
    anydiff compare mymodule:f --x 100     your function at a random x of shape (100,)

`compare` runs each backend in its own process (`multiprocessing`, spawn), one operator after
the other, with a time budget (`--timeout`, seconds per operator) and a memory budget
(`--memory`, gigabytes per process), so that a backend that crashes, hangs or exhausts its memory
is reported and the others go on. For each operator it prints a table: whether the backend works
(its results agree with the reference; noted when it ran uncompiled, its program being above the
backend's `max_program_size`) or is wrong (with the size of the error), is unsupported, too big
to compile, timed out, out of memory or failed (with the first line of the error), the median
time of a prepared call, the preparation time (prepare plus the first call, where JIT compilers
compile; one-time costs such as importing the library are paid beforehand on a tiny problem),
and the speed relative to the fastest backend that works; then a recommendation.

The reference is the closed form for the built-in scenarios. For a function of yours it is the
consensus of the automatic-differentiation backends: the result shared by the largest group of
exact (non finite-difference) backends that agree with each other to their tolerance; a tie, or a
single backend, is settled by finite differences (`AutoFiniteDiff()`); when no exact backend
agrees with finite differences, or none ran, finite differences are the reference. The table
says which reference was used.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import anydiff as ad
from anydiff.extend import AbstractBackend, registered_backends
from anydiff.testing.benchmark import Records, format_seconds
from anydiff.testing.comparison import (
    STATUS_MARK,
    Comparison,
    compare_differentiation,
    format_ratio,
    probe,
    recommendation,
    user_scenarios,
)
from anydiff.testing.correctness import first_line, format_table
from anydiff.testing.scenarios import OPERATORS, Scenario, comparison_scenarios, sparse_scenarios, with_dtype

# `Comparison` is defined with the rest of the engine, in `anydiff.testing.comparison`.
__all__ = ["Comparison", "main"]


class Progress:
    """The live display on stderr: one line per backend with a mark per operator.

    A `Listener` of the engine (`anydiff.testing.comparison`). On a terminal the lines are
    redrawn in place; otherwise each backend prints one line when it finishes.
    """

    def __init__(self, backends: Sequence[AbstractBackend], columns: int, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.names = [repr(b) for b in backends]
        self.marks = {name: ["·"] * columns for name in self.names}
        self.notes = dict.fromkeys(self.names, "waiting")
        self.width = max(len(n) for n in self.names)
        self.drawn = 0

    def update(self, backend: str, column: int | None, mark: str | None, note: str) -> None:
        if column is not None and mark is not None:
            self.marks[backend][column] = mark
        self.notes[backend] = note
        if self.live:
            self.draw()

    def finish(self, backend: str, seconds: float) -> None:
        self.notes[backend] = f"done in {seconds:.1f} s"
        if self.live:
            self.draw()
        else:
            marks = "".join(self.marks[backend])
            print(f"  {backend:<{self.width}}  {marks}  {self.notes[backend]}", file=self.stream, flush=True)

    def draw(self) -> None:
        up = f"\x1b[{self.drawn}F" if self.drawn else ""
        lines = [f"  {n:<{self.width}}  {''.join(self.marks[n])}  {self.notes[n]}" for n in self.names]
        self.stream.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self.stream.flush()
        self.drawn = len(lines)


# -- presenting ----------------------------------------------------------------------------------


def _error_text(error: float | None) -> str:
    if error is None:
        return ""
    return "0" if error == 0 else f"{error:.1e}"


def _time_text(row: Comparison) -> str:
    if row.time is None:
        return ""
    if row.samples > 1 and row.time_low is not None and row.time_high is not None:
        return f"{format_seconds(row.time)} ± {format_seconds((row.time_high - row.time_low) / 2)}"
    return format_seconds(row.time)


def report(groups: list[tuple[Scenario, str, list[Comparison]]]) -> str:
    """The tables and recommendations, one block per scenario."""
    blocks = []
    for scenario, subject, rows in groups:
        table_rows = []
        for r in rows:
            note = r.message
            table_rows.append(
                (
                    r.backend,
                    f"{STATUS_MARK[r.status]} {r.status}",
                    _error_text(r.error),
                    _time_text(r),
                    format_seconds(r.prep_time) if r.prep_time is not None else "",
                    format_ratio(r.relative) if r.relative is not None else "",
                    "" if r.calls is None else r.calls,
                    note[:90] + ("…" if len(note) > 90 else ""),
                )
            )
        reference = rows[0].reference if rows else ""
        header = f"{scenario.operator} of {_describe(scenario)}   (reference: {reference})"
        table = format_table(
            ("backend", "result", "error", "time per call", "preparation", "vs best", "f-calls", "note"), table_rows
        )
        blocks.append(f"{header}\n{table}\n  → {recommendation(rows, subject)}")
    return "\n\n".join(blocks)


def _describe(scenario: Scenario) -> str:
    x = np.asarray(scenario.x)
    return f"{scenario.name} at x: {x.dtype.name} {'scalar' if x.shape == () else x.shape}"


def plot(groups: list[tuple[Scenario, str, list[Comparison]]], path: str | Path, title: str) -> None:
    """A two-panel chart (time per prepared call, preparation time), log scale, one band per operator."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    backends = list(dict.fromkeys(r.backend for _, _, rows in groups for r in rows))
    palette = colormaps["tab10"]
    colors = {b: palette(i % 10) for i, b in enumerate(backends)}
    height = 0.8 / max(1, len(backends))
    figure = Figure(figsize=(12, 1.4 + len(groups) * (0.28 * len(backends) + 0.3)), layout="constrained")
    time_axis, prep_axis = figure.subplots(1, 2, sharey=True)
    panels = (
        (time_axis, "time", "time per prepared call  (median; whisker: interquartile range)"),
        (prep_axis, "prep_time", "preparation  (prepare + first call, where JITs compile)"),
    )
    for axis, field, label in panels:
        values = [v for _, _, rows in groups for r in rows if (v := getattr(r, field))]
        for g in range(1, len(groups), 2):
            axis.axhspan(g - 0.5, g + 0.5, color="0.96", zorder=0)
        axis.set_title(label, fontsize=10, loc="left")
        axis.spines[["top", "right"]].set_visible(False)
        if not values:
            continue
        low, high = min(values), max(values)
        axis.set_xscale("log")
        axis.set_xlim(low / 3, high * 60)
        axis.xaxis.set_major_locator(LogLocator(base=10))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_seconds(v)))
        axis.grid(axis="x", which="major", linestyle=":", color="0.7", zorder=1)
        for g, (_, _, rows) in enumerate(groups):
            for b, row in enumerate(rows):
                y = g + (b - (len(rows) - 1) / 2) * height
                value = getattr(row, field)
                if value is None or row.status in ("failed", "unsupported"):
                    axis.text(
                        low / 2.6,
                        y,
                        f"{row.backend}: {row.status}",
                        va="center",
                        fontsize=7,
                        color="0.5",
                        style="italic",
                    )
                    continue
                wrong = row.status == "wrong"
                color = colors[row.backend]
                axis.barh(
                    y,
                    value,
                    height=height * 0.8,
                    color=color,
                    alpha=0.3 if wrong else 0.9,
                    hatch="///" if wrong else None,
                    edgecolor=color,
                    zorder=2,
                )
                end = value
                if field == "time" and row.samples > 1 and row.time_low is not None:
                    axis.plot([row.time_low, row.time_high], [y, y], color="0.25", linewidth=0.9, zorder=3)
                    end = max(value, row.time_high or value)
                text, weight = format_seconds(value), "normal"
                if field == "time" and row.relative is not None:
                    fastest = row.relative <= 1.0
                    text += "  fastest" if fastest else f"  {format_ratio(row.relative)}"
                    weight = "bold" if fastest else "normal"
                if wrong:
                    text += f"  WRONG (error {row.error:.0e})"
                axis.text(end * 1.3, y, text, va="center", fontsize=7, color="0.1", fontweight=weight, zorder=4)
    one_function = len({s.name for s, _, _ in groups}) == 1
    labels = [s.operator if one_function else f"{s.operator}\n{s.name}" for s, _, _ in groups]
    time_axis.set_yticks(range(len(groups)), labels, fontsize=9)
    time_axis.tick_params(axis="y", length=0)
    time_axis.set_ylim(len(groups) - 0.5, -0.5)
    figure.suptitle(title, fontsize=13, fontweight="bold", x=0.01, ha="left")
    figure.legend(
        handles=[Patch(color=colors[b], label=b) for b in backends],
        loc="outside lower center",
        ncols=min(len(backends), 5),
        frameon=False,
        fontsize=9,
    )
    figure.savefig(path, dpi=150)


# -- parsing the command line --------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside parentheses: `"AutoJAX(), SecondOrder(AutoJAX(), AutoTorch())"`."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _import_target(target: str) -> Any:
    """`module:attribute` or `path/to/file.py:attribute` -> the object (the module's directory
    goes on `sys.path`, which the worker processes inherit, so they can import it too)."""
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise SystemExit(f"anydiff: expected `module:function` (e.g. `mymodule:f`); got {target!r}.")
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        directory, module_name = str(path.parent), path.stem
    else:
        directory = os.getcwd()
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(
            f"anydiff: cannot import `{module_name}` ({exc}). Run from its directory or pass a path."
        ) from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"anydiff: `{module_name}` has no attribute `{attribute}`.") from None
    return obj


def parse_backends(text: str) -> list[AbstractBackend]:
    """Backends from `--backends`: names (`AutoJAX`, `jax`), expressions (`AutoFiniteDiff(method='forward')`,
    `SecondOrder(AutoJAX(), AutoTorch())`) or `module:name` of a backend defined elsewhere."""
    public = {name: getattr(ad, name) for name in ad.__all__}
    by_short = {name.lower().removeprefix("auto"): obj for name, obj in public.items() if name.startswith("Auto")}
    backends = []
    for item in _split_top_level(text):
        if ":" in item and "(" not in item:
            value = _import_target(item)
        elif item.isidentifier():
            value = public.get(item) or by_short.get(item.lower().removeprefix("auto"))
            if value is None:
                known = ", ".join(sorted(n for n in public if n.startswith("Auto")))
                raise SystemExit(f"anydiff: unknown backend {item!r}; known: {known}.")
        else:
            try:
                value = eval(compile(ast.parse(item, mode="eval"), "--backends", "eval"), {"__builtins__": {}}, public)
            except Exception as exc:
                raise SystemExit(f"anydiff: cannot read backend {item!r}: {first_line(exc)}") from None
        if isinstance(value, type) and issubclass(value, AbstractBackend):
            value = value()
        if not isinstance(value, AbstractBackend):
            raise SystemExit(f"anydiff: {item!r} is not a backend; got {type(value).__name__}.")
        backends.append(value)
    return backends


def parse_shape(text: str) -> tuple[int, ...]:
    """`"100"` -> `(100,)`, `"10,20"` -> `(10, 20)`, `"scalar"` or `"()"` -> `()`."""
    if text.strip() in ("scalar", "()", ""):
        return ()
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"anydiff: `--x` must be a shape such as 100 or 10,20 (or `scalar`); got {text!r}.") from None
    if any(n <= 0 for n in shape):
        raise SystemExit(f"anydiff: `--x` sizes must be positive; got {text!r}.")
    return shape


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anydiff",
        description="One interface to every automatic-differentiation system in Python: which backends "
        "work for your function, and which is fastest.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("backends", help="list the backends: installed, usable, versions")
    listing.add_argument("names", nargs="*", help="only these backends (AutoJAX, torch, ...); default: all")
    compare = commands.add_parser(
        "compare",
        help="run every operator on every installed backend: correctness, time, preparation",
        description=__doc__.split("\n\n", 2)[2],  # type: ignore[union-attr]
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = compare.add_argument
    add("function", nargs="?", help="`module:function` or `path/file.py:function`; default: built-in scenarios")
    add("--x", default=None, help="shape of x: 100, 10,20 or scalar (built-ins: the vector size, default 10)")
    add("--dtype", default="float64", choices=("float64", "float32"))
    add("--operators", default=None, help=f"comma-separated subset of: {', '.join(OPERATORS)}")
    add("--backends", default=None, help="comma-separated: AutoJAX, torch, AutoFiniteDiff(method='forward'), ...")
    add("--sparse", action="store_true", help="also AutoSparse(backend) for jacobian, hessian (and sparse built-ins)")
    add("--timeout", type=float, default=120.0, help="seconds a backend may spend on one operator (default 120)")
    add("--memory", type=float, default=8.0, help="gigabytes of memory per backend's process (default 8; 0: no bound)")
    add("--budget", type=float, default=0.1, help="seconds of timing per backend and operator (default 0.1)")
    add("--seed", type=int, default=0, help="seed of the random x and tangents")
    add("--plot", metavar="PNG", help="write a chart of the times")
    add("--json", metavar="PATH", help="write the results as JSON")
    add("--csv", metavar="PATH", help="write the results as CSV")
    return parser


# -- the commands --------------------------------------------------------------------------------


def _version(library: str) -> str:
    distributions = importlib.metadata.packages_distributions().get(library, [library])
    try:
        return importlib.metadata.version(distributions[0])
    except importlib.metadata.PackageNotFoundError:
        return "?"


def backends_command(names: Sequence[str] = ()) -> int:
    """`anydiff backends [NAME ...]`: registered backends, whether installed and usable, versions."""
    wanted = {type(b) for b in parse_backends(",".join(names))} if names else None
    rows, installed = [], []
    for backend_type, library in registered_backends().items():
        if wanted is not None and backend_type not in wanted:
            continue
        try:
            backend: AbstractBackend = backend_type()
        except TypeError:  # combinators (SecondOrder, AutoSparse) need their parts
            continue
        if library is not None and importlib.util.find_spec(library) is None:
            rows.append([repr(backend), library, "", f"not installed: pip install 'anydiff[{backend.extra}]'"])
            continue
        rows.append([repr(backend), library or "(none)", _version(library) if library else ad.__version__, ""])
        installed.append((len(rows) - 1, backend))
    for (row, _), status in zip(installed, probe([b for _, b in installed]), strict=True):
        rows[row][3] = status
    print(f"anydiff {ad.__version__}: backends")
    print(format_table(("backend", "library", "version", "status"), rows))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """`anydiff compare ...`: run, print the tables, write the outputs."""
    if args.memory < 0:
        raise SystemExit(f"anydiff: `--memory` is in gigabytes, 0 for no bound; got {args.memory:g}.")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("anydiff: --plot needs matplotlib: pip install 'anydiff[plot]'.") from None
    operators = None if args.operators is None else [op.strip() for op in args.operators.split(",") if op.strip()]
    unknown = [op for op in operators or () if op not in OPERATORS]
    if unknown:
        raise SystemExit(f"anydiff: unknown operators {', '.join(unknown)}; known: {', '.join(OPERATORS)}.")
    backends = ad.available_backends() if args.backends is None else parse_backends(args.backends)
    if args.sparse:
        backends += [ad.AutoSparse(b) for b in list(backends)]
    if args.function is None:
        size = parse_shape(args.x or "10")
        if len(size) != 1:
            raise SystemExit("anydiff: for the built-in scenarios `--x` is the vector size, e.g. --x 100.")
        scenarios = comparison_scenarios(size[0])
        if args.sparse:
            scenarios += sparse_scenarios(max(6, size[0]))
        if args.dtype != "float64":
            scenarios = [with_dtype(s, args.dtype) for s in scenarios]
        scenarios = [s for s in scenarios if operators is None or s.operator in operators]
        title = f"anydiff compare: built-in scenarios, vectors of {size[0]}"
        subjects = [f"{s.operator} of {s.name} at this size" for s in scenarios]
    else:
        if args.x is None:
            raise SystemExit("anydiff: give the shape of x for your function, e.g. `--x 100` or `--x 10,20`.")
        f = _import_target(args.function)
        name = args.function.rpartition(":")[2]
        shape = parse_shape(args.x)
        try:
            scenarios = user_scenarios(f, name, shape, args.dtype, operators, args.seed)
        except ValueError as exc:
            raise SystemExit(f"anydiff: {exc}") from None
        title = f"anydiff compare: {name} at x: {args.dtype} {shape}"
        subjects = [f"{s.operator} of {name} at this size" for s in scenarios]
    scenarios = [s for s in scenarios if hasattr(ad, s.operator)]
    if not scenarios or not backends:
        raise SystemExit("anydiff: nothing to compare (no scenario or no backend selected).")

    print(f"{title}: {len(scenarios)} operators × {len(backends)} backends", file=sys.stderr)
    progress = Progress(backends, len(scenarios))
    memory = int(args.memory * 2**30) if args.memory else None
    judged = compare_differentiation(
        backends, scenarios, budget=args.budget, timeout=args.timeout, memory=memory, listener=progress
    )
    groups = list(zip(scenarios, subjects, judged, strict=True))
    print(report(groups))
    records = Records(row for _, _, rows in groups for row in rows)
    if args.json:
        document = {
            "anydiff": ad.__version__,
            "title": title,
            "results": records.to_dicts(),
            "recommendations": [recommendation(rows, subject) for _, subject, rows in groups],
        }
        Path(args.json).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.csv:
        records.to_csv(args.csv)
    if args.plot:
        plot(groups, args.plot, title)
    written = [p for p in (args.json, args.csv, args.plot) if p]
    if written:
        print(f"\nwrote {', '.join(written)}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The entry point of `anydiff` and `python -m anydiff`; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")  # ✓ and × on terminals that cannot show them
    args = _parser().parse_args(argv)
    if args.command == "backends":
        return backends_command(args.names)
    return compare_command(args)
