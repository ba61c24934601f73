"""JAX: `AutoJAX` and its registration.

Imports no JAX library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import (
    AbstractBackend,
    Mode,
    backend_dataclass,
    check_mode,
    register_array_kind,
    register_backend,
    register_bridge_caller,
    register_foreign_nodes,
    register_split,
)

from .arrays import JAX
from .trees import jax_jit, jax_nodes, jax_split

__all__ = ["AutoJAX"]


@backend_dataclass
class AutoJAX(AbstractBackend):
    """`AutoJAX(mode=None, jit=True, max_program_size=1000)`: differentiate with JAX.

    Args:
        mode: `None` chooses per operator (forward mode for Jacobians with fewer inputs than
            outputs, reverse otherwise); `"forward"` or `"reverse"` forces one.
        jit: compile the derivative with `jax.jit` at prepare time.
        max_program_size: the most equations `f`'s jaxpr may have (counted with
            `jax.make_jaxpr`, the bodies of `lax.scan`, `lax.fori_loop`, ... once) for the
            derivative to be compiled; a larger one runs without `jax.jit`, with an
            `ad.ProgramSizeWarning` and `prep.info["compiled"] = False`. A Python loop is
            unrolled by tracing: the jaxpr of an RK4 integration of 50 steps has about 1 300
            equations, and XLA took 50 s and 1.7 GB on a CPU to compile its gradient (a minute
            more per hundred steps, and 24 GB at 500). `None`: always compile.

    float64 inputs stay float64: anydiff enables x64 around its own calls only, never globally.
    """

    mode: Mode | None = None
    jit: bool = True
    max_program_size: int | None = 1000
    extra: ClassVar[str] = "jax"

    def __post_init__(self) -> None:
        check_mode(self, self.mode)


register_array_kind(JAX)
register_backend(AutoJAX, "anydiff._libraries.jax.impl:JAXImpl", library="jax")
register_bridge_caller("jax", "anydiff._libraries.jax.bridge")
register_foreign_nodes("jax", jax_nodes)
register_split("jax.numpy", jax_split, compile=jax_jit)
