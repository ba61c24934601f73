"""PyTensor: `AutoPyTensor` and its registration.

Imports no PyTensor library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend, register_bridge_caller

__all__ = ["AutoPyTensor"]


@backend_dataclass
class AutoPyTensor(AbstractBackend):
    """`AutoPyTensor(max_program_size=500)`: trace `f` onto PyTensor variables, compile graphs.

    Derivative graphs are compiled at prepare.

    Args:
        max_program_size: the most graph nodes (`Apply` nodes) `f`'s PyTensor graph may have;
            above it preparation raises `ad.UnsupportedError` within seconds, naming the size,
            the cause and the backends that suit. A Python loop is unrolled by tracing: ten RK4
            steps of a predator-prey model make 954 nodes, whose gradient took PyTensor a minute
            to prepare. `None`: no limit.
    """

    max_program_size: int | None = 500
    extra: ClassVar[str] = "pytensor"


register_backend(AutoPyTensor, "anydiff._libraries.pytensor.impl:PyTensorImpl", library="pytensor")
register_bridge_caller("pytensor", "anydiff._libraries.pytensor.bridge")
