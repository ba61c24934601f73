"""tinygrad: `AutoTinygrad` and its registration.

Imports no tinygrad library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from anydiff.extend import AbstractBackend, register_array_kind, register_backend

from .arrays import TINYGRAD

__all__ = ["AutoTinygrad"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTinygrad(AbstractBackend):
    """`AutoTinygrad()`: differentiate with tinygrad (`Tensor.gradient`, reverse mode).

    Derivatives run under `TinyJit` from their first call (eagerly when a context is a Python
    value, which the jit would bake in). Pushforwards cost two reverse passes. tinygrad's CPU
    device needs a C compiler at run time (`clang`; `apt-get install clang` on Debian):
    without one, `ad.check_available(ad.AutoTinygrad())` is False.
    """

    extra: ClassVar[str] = "tinygrad"


register_array_kind(TINYGRAD)
register_backend(AutoTinygrad, "anydiff._libraries.tinygrad.impl:TinygradImpl", library="tinygrad")
