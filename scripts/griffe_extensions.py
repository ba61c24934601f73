"""A griffe extension for the API reference (`mkdocs.yml`): anydiff's docstrings title their
doctest section `Example:`, which the Google-style parser would render as a plain admonition
(prompts as quotes); this makes it the `Examples:` section, rendered as code."""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
