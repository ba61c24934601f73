"""MyGrad: `AutoMyGrad`, its array kind and their registration.

Imports no MyGrad: `arrays.py` does inside its functions, `impl.py` on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import (
    AbstractBackend,
    backend_dataclass,
    register_array_kind,
    register_backend,
    register_bridge_caller,
)

from .arrays import MYGRAD

__all__ = ["AutoMyGrad"]


@backend_dataclass
class AutoMyGrad(AbstractBackend):
    """`AutoMyGrad()`: differentiate with MyGrad (reverse mode over NumPy).

    MyGrad records a graph of `mygrad.Tensor` operations on NumPy arrays and back-propagates
    through it (`Tensor.backward`); it has no forward mode and no higher-order derivatives.
    First-order operators are MyGrad's reverse mode, exact to rounding; second-order operators
    difference MyGrad's exact gradients along each direction (central differences at two steps,
    Richardson-extrapolated: about 12 digits in float64).

    `f` receives `mygrad.Tensor`s; NumPy's functions work on them, and `ad.namespace(x)` gives
    `f` an array-API namespace over MyGrad. NumPy inputs and results need no conversion;
    `mygrad.Tensor` inputs come back as tensors.
    """

    extra: ClassVar[str] = "mygrad"


register_array_kind(MYGRAD)
register_backend(AutoMyGrad, "anydiff._libraries.mygrad.impl:MyGradImpl", library="mygrad")
register_bridge_caller("mygrad", "anydiff._libraries.mygrad.bridge")
