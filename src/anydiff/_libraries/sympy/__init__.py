"""SymPy: `AutoSymPy` and its registration.

Imports no SymPy library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend

__all__ = ["AutoSymPy"]


@backend_dataclass
class AutoSymPy(AbstractBackend):
    """`AutoSymPy(max_program_size=50_000)`: trace `f` on SymPy symbols, differentiate, `lambdify`.

    Args:
        max_program_size: the most expression-tree nodes an element of an array `f` forms may
            have (measured while tracing, which stops past the limit); above it preparation
            raises `ad.UnsupportedError` within seconds, naming the size, the cause and the
            backends that suit. A Python loop is unrolled by tracing, and SymPy's trees swell
            with each step: one RK4 step of a predator-prey model gives 921 nodes (prepared in
            1 s), two give 161 001 (more than a minute); a sum of squares of 2 000 elements,
            10 001 (3 s). `None`: no limit.
    """

    max_program_size: int | None = 50_000
    extra: ClassVar[str] = "sympy"


register_backend(AutoSymPy, "anydiff._libraries.sympy.impl:SymPyImpl", library="sympy")
