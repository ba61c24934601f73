"""A backend defined outside anydiff, laid out as another package would write it (the example of
`docs/new-backend.md`, tested by `tests/test_external_backend.py`).

`AutoTorchFunc()` differentiates with `torch.func`. Importing this package registers the backend
without importing torch; `_impl.py`, which does, is imported on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import anydiff as ad

__all__ = ["AutoTorchFunc"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTorchFunc(ad.AbstractBackend):
    """`AutoTorchFunc()`: differentiate with `torch.func` (forward and reverse mode)."""

    extra: ClassVar[str] = "torch"  # named in the `BackendNotInstalledError` when torch is missing


ad.register_backend(AutoTorchFunc, f"{__name__}._impl:TorchFuncImpl", library="torch")
