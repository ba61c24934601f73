"""PyTensor: `AutoPyTensor` and its registration.

Imports no PyTensor library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from anydiff.extend import AbstractBackend, register_backend

__all__ = ["AutoPyTensor"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoPyTensor(AbstractBackend):
    """`AutoPyTensor()`: trace `f` onto PyTensor variables, compile derivative graphs at prepare."""

    extra: ClassVar[str] = "pytensor"


register_backend(AutoPyTensor, "anydiff._libraries.pytensor.impl:PyTensorImpl", library="pytensor")
