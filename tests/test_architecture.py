"""The rules of the house (docs/architecture.md), checked on the source with `ast`.

1. Imports go down: a module imports only from lower floors and from its own folder; two folders
   on one floor do not import each other (`second_order/` may use `first_order/`, the symbolic
   libraries `_libraries/symbolic/`). Imports inside functions count too.
2. The core knows nobody above it: `_core/` imports the standard library and NumPy (SciPy and
   array_api_compat inside functions only) and never branches on a library's name.
3. Library folders import their AD library only inside functions in `__init__.py` and
   `arrays.py`, so that `import anydiff` loads none (checked in a subprocess too).
4. Only through the front doors: no module imports another module's `_private` name; library
   folders and combinators use `anydiff.extend` (and the public modules listed in FRONT_DOORS);
   `testing/` and `cli.py` use the face and `anydiff.extend`.

There is no list of known violations: the house has none, and this test keeps it so.
Run `python tests/test_architecture.py` to print what it finds.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "anydiff"

#: The floors, from the ground; a module's floor is that of the longest matching prefix.
FLOORS = {
    "_core": 0,
    "first_order": 1,
    "second_order": 1,
    "sparse": 2,
    "bridge": 2,
    "extend": 2,
    "combinators": 3,
    "_libraries": 3,
    "scipy": 3,
    "": 4,  # the face, `anydiff/__init__.py`
    "testing": 5,
    "cli": 6,
    "__main__": 7,  # `python -m anydiff`: runs the command line
}

#: Folders on one floor that may import each other, (importer, imported).
NEIGHBOURS = {
    ("second_order", "first_order"),
    *((f"_libraries.{lib}", "_libraries.symbolic") for lib in ("sympy", "casadi", "pytensor")),
}

#: What library folders and combinators may import from anydiff besides their own folder.
FRONT_DOORS = {
    "anydiff",
    "anydiff.extend",
    "anydiff.bridge",
    "anydiff.bridge.nodes",
    "anydiff.sparse.tracer",
    "anydiff.sparse.coloring",
    "anydiff.sparse.decompression",
    "anydiff.sparse.detection",
}

#: AD libraries: the core never names them, and `import anydiff` never loads them.
AD_LIBRARIES = ("jax", "torch", "tensorflow", "mlx", "tinygrad", "autograd", "sympy", "casadi", "pytensor")

#: What `_core/` may import at module level, and what only inside functions.
CORE_MODULE_LEVEL = {"numpy"}
CORE_FUNCTION_LEVEL = {"numpy", "scipy", "array_api_compat", "optree"}


@dataclass(frozen=True)
class Import:
    importer: str  # "anydiff._core.prepare"
    target: str  # the module imported, "anydiff._core.arrays"
    names: tuple[str, ...]  # the names taken from it (`from target import a, b`)
    line: int
    in_function: bool


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, root: Path = PACKAGE) -> list[Import]:
    """Every import statement of the module, absolute, with whether it runs inside a function."""
    name = module_name(path, root)
    base = name.split(".") if is_package(path) else name.split(".")[:-1]
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(name, alias.name, (), child.lineno, in_function))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    anchor = base[: len(base) - child.level + 1]
                    target = ".".join([*anchor, *([child.module] if child.module else [])])
                else:
                    target = child.module or ""
                found.append(Import(name, target, tuple(a.name for a in child.names), child.lineno, in_function))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: never run
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id in ("TYPE_CHECKING", "_TYPE_CHECKING")) or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def anydiff_targets(imp: Import, known: dict[str, Path]) -> list[str]:
    """The anydiff modules an import loads: the module, or its submodules named in `from`."""
    if imp.target != "anydiff" and not imp.target.startswith("anydiff."):
        return []
    submodules = [f"{imp.target}.{n}" for n in imp.names if f"{imp.target}.{n}" in known]
    return submodules or [imp.target]


def place(module: str) -> str:
    """The part of `anydiff.<place>` that names a module's folder (or top-level module)."""
    rest = module.split(".")[1:]
    if not rest:
        return ""
    if rest[0] == "_libraries" and len(rest) > 1:
        return f"_libraries.{rest[1]}"
    return rest[0]


def floor(module: str) -> int:
    return FLOORS[place(module).split(".")[0]]


def folder(module: str, known: dict[str, Path]) -> str:
    """The package holding `module` (itself for a package)."""
    return module if is_package(known[module]) else module.rpartition(".")[0]


# -- the rules ---------------------------------------------------------------------------------


def rule_imports_go_down(known: dict[str, Path]) -> list[str]:
    problems = []
    for module, path in known.items():
        for imp in imports(path):
            for target in anydiff_targets(imp, known):
                if target not in known or place(target) == place(module):
                    continue
                if target == folder(module, known) or module.startswith(target + "."):
                    continue  # a parent package: its own folder
                if module != "anydiff" and target.startswith(folder(module, known) + "."):
                    continue  # a package's own subfolders
                pair = (place(module), place(target))
                if floor(target) < floor(module) or pair in NEIGHBOURS:
                    continue
                problems.append(
                    f"rule 1: {module} imports {target} (floor {floor(target)} >= {floor(module)}), line {imp.line}"
                )
    return problems


def rule_no_cycles(known: dict[str, Path]) -> list[str]:
    graph = {
        m: sorted({t for imp in imports(p) for t in anydiff_targets(imp, known) if t in known and t != m})
        for m, p in known.items()
    }
    cycles, state, stack = [], {}, []

    def walk(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == "open":
                cycles.append(" -> ".join([*stack[stack.index(t) :], t]))
            elif t not in state:
                walk(t)
        stack.pop()
        state[m] = "done"

    for m in graph:
        if m not in state:
            walk(m)
    # a parent package importing its own submodules (`__init__` re-exports) is not a loop
    return [f"cycle: {c}" for c in cycles if not _package_reexport(c)]


def _package_reexport(cycle: str) -> bool:
    first, *_ = cycle.split(" -> ")
    return all(m == first or m.startswith(first + ".") for m in cycle.split(" -> "))


def rule_core_knows_nobody(known: dict[str, Path]) -> list[str]:
    problems = []
    for module, path in known.items():
        if place(module) != "_core":
            continue
        for imp in imports(path):
            top = imp.target.split(".")[0]
            if top == "anydiff" or top in sys.stdlib_module_names:
                continue
            allowed = CORE_FUNCTION_LEVEL if imp.in_function else CORE_MODULE_LEVEL
            if top not in allowed:
                problems.append(f"rule 2: {module} imports {imp.target}, line {imp.line}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = _library_named(node)
            if named:
                problems.append(f"rule 2: {module} names {named!r}, line {node.lineno}")  # type: ignore[attr-defined]
    return problems


def _library_named(node: ast.AST) -> str | None:
    """An AD library's name used in code: an identifier, or a string compared or looked up."""
    if isinstance(node, ast.Name) and node.id in AD_LIBRARIES:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in AD_LIBRARIES:
        return node.attr
    if isinstance(node, (ast.Compare, ast.Subscript, ast.Dict)):
        for leaf in ast.walk(node):
            if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                if leaf.value.lower() in AD_LIBRARIES or leaf.value.startswith(
                    tuple(f"{lib}." for lib in AD_LIBRARIES)
                ):
                    return leaf.value
    return None


def rule_libraries_load_late(known: dict[str, Path]) -> list[str]:
    problems = []
    for module, path in known.items():
        if not place(module).startswith("_libraries.") or path.name not in ("__init__.py", "arrays.py"):
            continue
        for imp in imports(path):
            top = imp.target.split(".")[0]
            if not imp.in_function and top not in ("anydiff", "numpy") and top not in sys.stdlib_module_names:
                problems.append(f"rule 3: {module} imports {imp.target} at module level, line {imp.line}")
    return problems


def rule_front_doors(known: dict[str, Path]) -> list[str]:
    problems = []
    for module, path in known.items():
        where = place(module)
        for imp in imports(path):
            targets = anydiff_targets(imp, known)
            private = [n for n in imp.names if n.startswith("_") and not n.startswith("__")]
            if targets and private and not all(f"{imp.target}.{n}" in known for n in private):
                problems.append(
                    f"rule 4: {module} imports the private {', '.join(private)} of {imp.target}, line {imp.line}"
                )
            for target in targets:
                if place(target) == where or target == folder(module, known):
                    continue
                if (where.startswith("_libraries.") or where == "combinators") and target not in FRONT_DOORS:
                    if (where, place(target)) not in NEIGHBOURS:
                        problems.append(f"rule 4: {module} imports {target}, not a front door, line {imp.line}")
                face = ("anydiff", "anydiff.extend", "anydiff.cli" if where == "__main__" else "anydiff")
                if where in ("testing", "cli", "__main__") and target not in face and place(target) != "testing":
                    problems.append(f"rule 4: {module} imports {target}, not the face, line {imp.line}")
    return problems


RULES = (rule_imports_go_down, rule_no_cycles, rule_core_knows_nobody, rule_libraries_load_late, rule_front_doors)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_the_house_keeps_its_rules(rule) -> None:
    problems = rule(modules())
    assert not problems, "\n".join(problems)


def test_import_anydiff_loads_no_ad_library_scipy_or_metadata() -> None:
    heavy = [*AD_LIBRARIES, "scipy", "importlib.metadata", "concurrent.futures"]
    code = f"import sys, anydiff; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"`import anydiff` loaded {loaded}"


def test_the_guard_sees_violations(tmp_path: Path) -> None:
    """The checks find what they look for: a guard that passes everything guards nothing."""
    fake = tmp_path / "anydiff" / "_core" / "arrays.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f(kind):\n    from ..combinators import SecondOrder\n    return kind.name == 'jax'\n")
    (imp,) = imports(fake, root=tmp_path / "anydiff")
    assert (imp.target, imp.in_function) == ("anydiff.combinators", True)
    assert floor(imp.target) > floor("anydiff._core.arrays")
    assert [_library_named(n) for n in ast.walk(ast.parse(fake.read_text())) if _library_named(n)] == ["jax"]


if __name__ == "__main__":
    everything = modules()
    for rule in RULES:
        for problem in rule(everything):
            print(problem)
