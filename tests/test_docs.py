"""The documentation site: its code runs, it documents every public name, it builds without warnings,
and its generated support table matches the code.

Code blocks in `docs/*.md` fenced as `pycon` (with `>>>` prompts and the expected output) run as
doctests; blocks fenced as `python` run as they are. Each page's blocks share one namespace, in
order. Other fences (`bash`, `text`, `py`) are shown only, as are blocks that include a file
(`--8<--`), which is tested on its own.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUNNABLE = {"python", "pycon"}
PUBLIC_MODULES = ("anydiff", "anydiff.scipy", "anydiff.testing")


def code_blocks(page: Path) -> list[tuple[str, str, int]]:
    """`(language, code, line)` of every runnable block of `page`."""
    text = page.read_text(encoding="utf-8")
    return [
        (m.group(1), m.group(2), text.count("\n", 0, m.start()) + 2)
        for m in FENCE.finditer(text)
        if m.group(1) in RUNNABLE and "--8<--" not in m.group(2)
    ]


@pytest.mark.parametrize("page", [p for p in PAGES if code_blocks(p)], ids=lambda p: str(p.relative_to(DOCS)))
def test_code_examples_run(page, monkeypatch):
    module = types.ModuleType("__docs__")  # a module, so that classes defined in a page (dataclasses) work
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict = vars(module)
    parser = doctest.DocTestParser()
    # exceptions: the type is checked, not the module path nor the message (tested elsewhere)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL
    runner = doctest.DocTestRunner(optionflags=flags)
    for language, code, line in code_blocks(page):
        name = f"{page.relative_to(ROOT)}:{line}"
        if language == "python":
            exec(compile(code, name, "exec"), namespace)
            continue
        test = parser.get_doctest(code, namespace, name, str(page), line)
        runner.run(test, clear_globs=False)
        namespace.update(test.globs)  # a doctest runs on a copy of the namespace
    failed = runner.summarize(verbose=False).failed
    assert failed == 0, f"{failed} doctest example(s) failed in {page.relative_to(ROOT)} (report above)"


def documented_objects() -> tuple[set[int], set[str]]:
    """The ids of the objects the pages document with `::: dotted.path`, and the paths."""
    paths = set(re.findall(r"^::: ([\w.]+)", "\n".join(p.read_text(encoding="utf-8") for p in PAGES), re.MULTILINE))
    objects = set()
    for path in paths:
        module, _, name = path.rpartition(".")
        try:
            objects.add(id(getattr(importlib.import_module(module), name)))
        except (ImportError, AttributeError):
            objects.add(id(importlib.import_module(path)))
    return objects, paths


def test_every_public_name_is_in_the_api_reference():
    objects, paths = documented_objects()
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if f"{module_name}.{name}" not in paths and id(getattr(module, name)) not in objects:
                missing.append(f"{module_name}.{name}")
    assert not missing, (
        f"undocumented public names: {', '.join(missing)}. Add `::: <module>.<name>` for each to the "
        "matching page of docs/api/."
    )


def test_the_site_builds_without_warnings(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package is missing
            found = False
        if not found:
            pytest.skip(f"{module} is not installed: pip install '.[docs]'")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice about MkDocs 2
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").exists()


def test_support_table_is_up_to_date(capsys):
    import anydiff as ad

    spec = importlib.util.spec_from_file_location("support_table", ROOT / "scripts" / "support_table.py")
    support_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(support_table)
    try:
        status = support_table.main(["--check"])
    except ad.BackendNotInstalledError as exc:
        pytest.skip(f"the table is generated from every backend's code: {exc}")
    assert status == 0, capsys.readouterr().err


def test_benchmark_page_is_the_committed_results():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    assert report.PAGE.read_text() == report.render(), "docs/benchmarks.md: run python benchmarks/report.py"
