"""Backend objects: immutable, hashable, keyword-only configuration (API.md section 1).

A backend object says *which* library differentiates and how; it holds no state and imports
nothing. The code that does the work lives in `anydiff._libraries.<library>` and is found through
the registry in `anydiff._core.registry`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

__all__ = [
    "AbstractBackend",
    "Mode",
    "check_mode",
]

Mode = Literal["forward", "reverse"]
_MODES = (None, "forward", "reverse")


class AbstractBackend:
    """Base class of every backend object.

    Subclasses are frozen, slotted dataclasses named `Auto<Library>`; `repr` shows only the
    fields that differ from their defaults.
    """

    __slots__ = ()
    #: the `pip install anydiff[<extra>]` that provides the backend's library
    extra: ClassVar[str | None] = None
    #: whether the backend combines other backends (`SecondOrder`, `AutoSparse`, `MixedMode`)
    #: rather than differentiating with a library of its own
    combinator: ClassVar[bool] = False

    def __repr__(self) -> str:
        shown = []
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if field.default is dataclasses.MISSING or value != field.default:
                shown.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def check_mode(backend: AbstractBackend, mode: object) -> None:
    """Raise `ValueError` unless `mode` is `None`, `"forward"` or `"reverse"` (for `__post_init__`)."""
    if mode not in _MODES:
        raise ValueError(
            f"{type(backend).__name__}: `mode` must be None (choose per operator), 'forward' or "
            f"'reverse'; got {mode!r}."
        )
