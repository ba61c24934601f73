"""tinygrad: `AutoTinygrad` and its registration.

Imports no tinygrad library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import AbstractBackend, backend_dataclass, register_array_kind, register_backend

from .arrays import TINYGRAD

__all__ = ["AutoTinygrad"]


@backend_dataclass
class AutoTinygrad(AbstractBackend):
    """`AutoTinygrad(max_program_size=1000)`: differentiate with tinygrad (`Tensor.gradient`, reverse mode).

    Derivatives run under `TinyJit` from their first call (eagerly when a context is a Python
    value, which the jit would bake in). Pushforwards cost two reverse passes. tinygrad's CPU
    device needs a C compiler at run time (`clang`; `apt-get install clang` on Debian):
    without one, `ad.check_available(ad.AutoTinygrad())` is False.

    Args:
        max_program_size: the most nodes (UOps) the lazy graph of `f` may have; a larger one is
            refused at preparation with `ad.UnsupportedError`, since tinygrad schedules and
            compiles the whole graph of every derivative, jitted or not. A Python loop is
            unrolled: the graph of an RK4 integration of 50 steps has about 1 700 nodes, and its
            gradient took 34 s (500 steps: 16 500 nodes, more than 200 s). `None`: no limit.
    """

    max_program_size: int | None = 1000
    extra: ClassVar[str] = "tinygrad"


register_array_kind(TINYGRAD)
register_backend(AutoTinygrad, "anydiff._libraries.tinygrad.impl:TinygradImpl", library="tinygrad")
