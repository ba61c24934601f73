"""PyTorch: `AutoTorch` and its registration.

Imports no PyTorch library: `impl.py` does, on the backend's first use.
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
    register_foreign_nodes,
    register_leaf_advice,
)

from .arrays import TORCH
from .trees import module_lesson, torch_nodes

__all__ = ["AutoTorch"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTorch(AbstractBackend):
    """`AutoTorch(mode=None, compile=False)`: differentiate with PyTorch.

    Args:
        mode: `None` chooses per operator, `"forward"` or `"reverse"` forces one.
        compile: wrap `f` in `torch.compile` at prepare time.

    Each operator takes the fastest native route measured on CPU: the autograd tape
    (`torch.autograd.grad`) for gradients, pullbacks and HVPs, `torch.func` transforms for
    batched pushforwards and Jacobians.
    """

    mode: Mode | None = None
    compile: bool = False
    extra: ClassVar[str] = "torch"

    def __post_init__(self) -> None:
        check_mode(self, self.mode)


register_array_kind(TORCH)
register_backend(AutoTorch, "anydiff._libraries.torch.impl:TorchImpl", library="torch")
register_bridge_caller("torch", "anydiff._libraries.torch.bridge")
register_foreign_nodes("torch", torch_nodes)
register_leaf_advice("torch", module_lesson)
