"""JAX: `AutoJAX` and its registration.

Imports no JAX library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from anydiff.extend import (
    AbstractBackend,
    Mode,
    check_mode,
    register_array_kind,
    register_backend,
    register_bridge_caller,
)

from .arrays import JAX

__all__ = ["AutoJAX"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoJAX(AbstractBackend):
    """`AutoJAX(mode=None, jit=True)`: differentiate with JAX.

    Args:
        mode: `None` chooses per operator (forward mode for Jacobians with fewer inputs than
            outputs, reverse otherwise); `"forward"` or `"reverse"` forces one.
        jit: compile the derivative with `jax.jit` at prepare time.

    float64 inputs stay float64: anydiff enables x64 around its own calls only, never globally.
    """

    mode: Mode | None = None
    jit: bool = True
    extra: ClassVar[str] = "jax"

    def __post_init__(self) -> None:
        check_mode(self, self.mode)


register_array_kind(JAX)
register_backend(AutoJAX, "anydiff._libraries.jax.impl:JAXImpl", library="jax")
register_bridge_caller("jax", "anydiff._libraries.jax.bridge")
