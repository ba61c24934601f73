"""SymPy: `AutoSymPy` and its registration.

Imports no SymPy library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from anydiff.extend import AbstractBackend, register_backend

__all__ = ["AutoSymPy"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoSymPy(AbstractBackend):
    """`AutoSymPy()`: trace `f` on SymPy symbols, differentiate symbolically, `lambdify` at prepare."""

    extra: ClassVar[str] = "sympy"


register_backend(AutoSymPy, "anydiff._libraries.sympy.impl:SymPyImpl", library="sympy")
