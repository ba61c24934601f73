"""MindSpore: `AutoMindSpore`, its array kind and their registration.

Imports no MindSpore: `arrays.py` does inside its functions, `impl.py` on the backend's first use.
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

from .arrays import MINDSPORE

__all__ = ["AutoMindSpore"]


@backend_dataclass
class AutoMindSpore(AbstractBackend):
    """`AutoMindSpore()`: differentiate with MindSpore in PyNative mode (`mindspore.grad`), on CPU.

    Reverse mode: `mindspore.grad` for gradients, `mindspore.vjp` for pullbacks (run once per
    cotangent); pushforwards are built from pullbacks. MindSpore's forward mode (`mindspore.jvp`)
    and graph mode (`mindspore.jit`) compile `f` from its Python source, which fails for lambdas,
    closures and most functions written with `ad.namespace(x)`: they are not used. MindSpore
    2.10's own second derivatives (`grad` of `grad`) are wrong where a reduction feeds a
    nonlinear operation (the Hessian of `sum(x) ** 2` comes out zero): `second_derivative`,
    `hvp` and `hessian` difference its exact gradients (Richardson-extrapolated central
    differences, about 12 digits in float64), and it is not the outer part of a `SecondOrder`.

    `f` receives `mindspore.Tensor`s; `ad.namespace(x)` gives it an array-API namespace over
    MindSpore. MindSpore 2.10 under NumPy 2 takes no NumPy array or NumPy integer as an operand:
    convert them with `xp.asarray`, or pass them as contexts (`ad.Constant(data)`). It rounds a
    Python float operand to float32 (`x * 0.7`): `xp.multiply(x, 0.7)` is exact in float64.
    """

    extra: ClassVar[str] = "mindspore"


register_array_kind(MINDSPORE)
register_backend(AutoMindSpore, "anydiff._libraries.mindspore.impl:MindSporeImpl", library="mindspore")
register_bridge_caller("mindspore", "anydiff._libraries.mindspore.bridge")
