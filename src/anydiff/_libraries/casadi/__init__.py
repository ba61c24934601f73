"""CasADi: `AutoCasADi` and its registration.

Imports no CasADi library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend, register_bridge_caller

__all__ = ["AutoCasADi"]


@backend_dataclass
class AutoCasADi(AbstractBackend):
    """`AutoCasADi(max_program_size=100_000)`: trace `f` onto CasADi expressions, compile them.

    `casadi.Function`s are built at prepare.

    Args:
        max_program_size: the most symbolic operations `f` may trace to (the elements of the
            arrays its operations produce, counted while tracing, which stops past the limit);
            above it preparation raises `ad.UnsupportedError` within seconds, naming the size,
            the cause (usually a Python loop, which tracing unrolls) and the backends that suit.
            CasADi's shared expression graphs stay cheap far longer than SymPy's. `None`: no
            limit.
    """

    max_program_size: int | None = 100_000
    extra: ClassVar[str] = "casadi"


register_backend(AutoCasADi, "anydiff._libraries.casadi.impl:CasADiImpl", library="casadi")
register_bridge_caller("casadi", "anydiff._libraries.casadi.bridge")
