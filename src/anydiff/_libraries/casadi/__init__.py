"""CasADi: `AutoCasADi` and its registration.

Imports no CasADi library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from anydiff.extend import AbstractBackend, register_backend

__all__ = ["AutoCasADi"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoCasADi(AbstractBackend):
    """`AutoCasADi()`: trace `f` onto CasADi expressions, compile `casadi.Function`s at prepare."""

    extra: ClassVar[str] = "casadi"


register_backend(AutoCasADi, "anydiff._libraries.casadi.impl:CasADiImpl", library="casadi")
