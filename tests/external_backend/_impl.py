"""`AutoTorchFunc`'s implementation: the two primitives, `jvp` and `vjp`, and nothing else.

Every operator, first and second order, comes from anydiff's generic fallbacks over them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.func import jvp, vjp, vmap

import anydiff as ad
from anydiff._core.arrays import array_kind  # not public API yet: see docs/new-backend.md


class TorchFuncImpl(ad.BackendImpl):
    kind = array_kind(torch.zeros(()))  # anydiff converts `x`, tangents and contexts to torch

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        return g(x), vmap(lambda t: jvp(g, (x,), (t,))[1])(tangents)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        y, pullback = vjp(lambda x: f(x, *contexts), x)
        return y, vmap(lambda u: pullback(u)[0])
