"""HIPS autograd: `AutoAutograd` and its registration.

Imports no HIPS autograd library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend, register_bridge_caller

__all__ = ["AutoAutograd"]


@backend_dataclass
class AutoAutograd(AbstractBackend):
    """`AutoAutograd()`: differentiate with HIPS autograd (`make_vjp`; `make_jvp` for forward mode).

    autograd computes on NumPy arrays; `ad.namespace(box)` gives `f` an array-API namespace over
    `autograd.numpy` in which every function has a derivative.
    """

    extra: ClassVar[str] = "autograd"


register_backend(AutoAutograd, "anydiff._libraries.autograd.impl:AutogradImpl", library="autograd")
register_bridge_caller("autograd", "anydiff._libraries.autograd.bridge")
