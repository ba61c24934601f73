"""MLX: `AutoMLX` and its registration.

Imports no MLX library: `impl.py` does, on the backend's first use.
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
)

from .arrays import MLX

__all__ = ["AutoMLX"]


@backend_dataclass
class AutoMLX(AbstractBackend):
    """`AutoMLX(mode=None, compile=True, max_program_size=2000)`: differentiate with MLX (`mx.jvp`, `mx.vjp`,
    `mx.vmap`).

    Args:
        mode: `None` chooses per operator, `"forward"` (`mx.jvp`) or `"reverse"` (`mx.vjp`)
            forces one. Jacobians and Hessians, which MLX lacks, are batched (`mx.vmap`)
            pushforwards or pullbacks.
        compile: compile every derivative with `mx.compile` at prepare time; `False` runs
            eagerly (slower, but `f` may branch on array values). Python numbers among the
            contexts are constants of the compiled function: a new value compiles it again.
        max_program_size: the most primitives `f`'s lazy graph may have (counted from one lazy
            evaluation of `f`, which computes nothing) for the derivative to be compiled; a
            larger one runs uncompiled, as with `compile=False`, with an
            `ad.ProgramSizeWarning` and `prep.info["compiled"] = False`. A Python loop is
            unrolled: an RK4 integration of 500 steps has about 19 500 primitives, and
            `mx.compile` took 18 s on its gradient; one of 40 steps has about 3 200, and its
            Jacobian (batched with `mx.vmap`) took close to a minute to compile on a loaded
            2-core machine. `None`: always compile.

    Precision on the CPU: float64 stays float64, but MLX computes `exp`, `sin`, `cos`, `erf` and
    `erfinv` of float64 arrays in float32 arithmetic (relative error ~1e-7, and `exp` overflows
    above 88.7); derivatives through them are as accurate. On Linux, install with
    `pip install 'anydiff[mlx]'` (MLX's CPU build, `mlx[cpu]`).
    """

    mode: Mode | None = None
    compile: bool = True
    max_program_size: int | None = 2000
    extra: ClassVar[str] = "mlx"

    def __post_init__(self) -> None:
        check_mode(self, self.mode)


register_array_kind(MLX)
register_backend(AutoMLX, "anydiff._libraries.mlx.impl:MLXImpl", library="mlx")
register_bridge_caller("mlx", "anydiff._libraries.mlx.bridge")
