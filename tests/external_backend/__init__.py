"""An AD library added to anydiff from outside it: `AutoTorchFunc()` differentiates with `torch.func`.

The example of docs/new-backend.md, tested by tests/test_external_backend.py. It uses only the
public names of `anydiff.extend`. Importing this package registers the backend without importing
torch: `_impl.py`, which does, is loaded on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from anydiff.extend import AbstractBackend, register_backend

__all__ = ["AutoTorchFunc"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTorchFunc(AbstractBackend):
    """`AutoTorchFunc()`: differentiate with the `torch.func` transforms (forward and reverse mode)."""

    #: named by `BackendNotInstalledError` when torch is missing: `pip install 'anydiff[torch]'`
    extra: ClassVar[str] = "torch"


register_backend(AutoTorchFunc, f"{__name__}._impl:TorchFuncImpl", library="torch")
