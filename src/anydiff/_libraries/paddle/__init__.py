"""PaddlePaddle: `AutoPaddle`, its array kind and their registration.

Imports no Paddle: `arrays.py` does inside its functions, `impl.py` on the backend's first use.
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

from .arrays import PADDLE

__all__ = ["AutoPaddle"]


@backend_dataclass
class AutoPaddle(AbstractBackend):
    """`AutoPaddle()`: differentiate with PaddlePaddle's dynamic graph (`paddle.grad`), on CPU.

    Reverse mode: `paddle.grad` with `grad_outputs` for pullbacks, `create_graph=True` for
    second order (reverse over reverse). Pushforwards are built from pullbacks: Paddle's own
    forward-mode API (`paddle.incubate.autograd.jvp`, two reverse passes in dynamic mode) fails
    on common operations (`x ** 2`) in Paddle 3.3. Operations without a second derivative in
    Paddle (`cumsum`, `sort`) make second-order operators raise
    `ad.FunctionNotDifferentiableError`.

    `f` receives `paddle.Tensor`s; `ad.namespace(x)` gives it an array-API namespace over Paddle.
    """

    extra: ClassVar[str] = "paddle"


register_array_kind(PADDLE)
register_backend(AutoPaddle, "anydiff._libraries.paddle.impl:PaddleImpl", library="paddle")
register_bridge_caller("paddle", "anydiff._libraries.paddle.bridge")
