"""The tables that full test runs generate into the docs, between `<!-- NAME: begin (generated) -->`
and `<!-- NAME: end -->` on a page of docs/.

A test that runs everything (`ANYDIFF_FULL_MATRIX=1`) checks that the committed table is the one
it produced, or rewrites it with `ANYDIFF_WRITE_MATRIX=1`.
"""

from __future__ import annotations

import os
from pathlib import Path

FULL = os.environ.get("ANYDIFF_FULL_MATRIX") == "1"
WRITE = os.environ.get("ANYDIFF_WRITE_MATRIX") == "1"
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _bounds(text: str, name: str) -> tuple[int, int]:
    begin, end = f"<!-- {name}: begin (generated) -->", f"<!-- {name}: end -->"
    return text.index(begin) + len(begin), text.index(end)


def section(page: str, name: str) -> str:
    """The committed table `name` of `docs/page`."""
    text = (DOCS / page).read_text()
    start, stop = _bounds(text, name)
    return text[start:stop].strip()


def check_or_write(page: str, name: str, table: str) -> None:
    """Rewrite the table `name` of `docs/page` with `table` (WRITE), or assert that it is `table`."""
    path = DOCS / page
    text = path.read_text()
    start, stop = _bounds(text, name)
    if WRITE:
        path.write_text(text[:start] + "\n" + table + "\n" + text[stop:])
        return
    assert text[start:stop].strip() == table, (
        f"docs/{page}: the {name} is out of date (ANYDIFF_FULL_MATRIX=1 ANYDIFF_WRITE_MATRIX=1 rewrites it)"
    )
