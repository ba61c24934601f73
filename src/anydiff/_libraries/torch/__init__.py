"""PyTorch: `AutoTorch` and its registration.

Imports no PyTorch library: `impl.py` does, on the backend's first use.
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
    register_leaf_advice,
    register_split,
)

from .arrays import TORCH
from .trees import module_lesson, torch_nodes, torch_split

__all__ = ["AutoTorch"]


@backend_dataclass
class AutoTorch(AbstractBackend):
    """`AutoTorch(mode=None, compile=False, max_program_size=2000)`: differentiate with PyTorch.

    Args:
        mode: `None` chooses per operator, `"forward"` or `"reverse"` forces one.
        compile: wrap `f` in `torch.compile` at prepare time.
        max_program_size: with `compile=True`, the most operations `f` may record on the
            autograd tape (counted from one evaluation of `f`) for it to be compiled; a larger
            `f` runs uncompiled, with an `ad.ProgramSizeWarning` and
            `prep.info["compiled"] = False`. A Python loop is unrolled by `torch.compile`'s
            tracing: an RK4 integration of 500 steps records about 12 500 operations. `None`:
            always compile.

    Each operator takes the fastest native route measured on CPU: the autograd tape
    (`torch.autograd.grad`) for gradients, pullbacks and HVPs, `torch.func` transforms for
    batched pushforwards and Jacobians.
    """

    mode: Mode | None = None
    compile: bool = False
    max_program_size: int | None = 2000
    extra: ClassVar[str] = "torch"

    def __post_init__(self) -> None:
        check_mode(self, self.mode)


register_array_kind(TORCH)
register_backend(AutoTorch, "anydiff._libraries.torch.impl:TorchImpl", library="torch")
register_bridge_caller("torch", "anydiff._libraries.torch.bridge")
register_foreign_nodes("torch", torch_nodes)
register_leaf_advice("torch", module_lesson)
register_split("array_api_compat.torch", torch_split)
