"""autograd programs calling a `DifferentiateWith` function: one autograd primitive and its rules.

Its VJP and JVP rules call the primitive again on derived nodes (`nodes.py`), so autograd
differentiates through them as through any primitive: `grad`, `make_vjp`, `make_jvp`, `jacobian`,
`hessian`, `make_hvp` and their compositions, to any order. autograd has no `vmap`, so no
batched (`Vmap`) node ever reaches the rules, which then need only `call` of the caller.
"""

from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np
from autograd.extend import defjvp_argnums, defvjp_argnums, primitive
from autograd.numpy.numpy_boxes import ArrayBox

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype, tangent
from anydiff.extend import array_kind, array_kinds

from . import AutoAutograd
from . import namespace as _namespace  # noqa: F401  (registers `ad.namespace` of autograd's boxes)

__all__ = ["asarray", "call", "owns", "transparent"]

_NUMPY = array_kinds()["numpy"]

#: the substitute that needs no bridge from autograd
transparent = AutoAutograd


def owns(x: Any) -> bool:
    """Whether `x` is an autograd box (a plain NumPy array is NumPy's call)."""
    return isinstance(x, ArrayBox)


def asarray(a: Any) -> Any:
    """A context array as NumPy (autograd's boxes and NumPy arrays as they are)."""
    kind = array_kind(a)
    return a if kind is None or kind is _NUMPY else kind.to_numpy(a)


@primitive
def _call(node: Node, *args: Any) -> np.ndarray:
    return np.asarray(evaluate(node, args, _NUMPY))  # 0-d results as arrays, not NumPy scalars


def call(node: Node, args: tuple) -> Any:
    return _call(node, *args)


class _Ops:
    call = staticmethod(call)


def _vjps(argnums: tuple, ans: Any, args: tuple, kwargs: dict) -> Any:
    node, *values = args
    wanted = tuple(i + 1 in argnums for i in range(len(values)))
    avals = tuple((tuple(v.shape), numpy_dtype(v.dtype)) for v in values)

    def vjp(ct: Any) -> tuple:
        found = cotangents(_Ops, node, tuple(values), ct, wanted, avals)
        # Context arrays get no gradient (as from torch); `x` and linear arguments always do.
        return tuple(anp.zeros_like(values[i - 1]) if found[i - 1] is None else found[i - 1] for i in argnums)

    return vjp


def _jvps(argnums: tuple, gs: list, ans: Any, args: tuple, kwargs: dict) -> Any:
    node, *values = args
    tangents: list = [None] * len(values)
    for i, g in zip(argnums, gs, strict=True):
        tangents[i - 1] = g
    ty = tangent(_Ops, node, tuple(values), tuple(tangents))
    return anp.zeros_like(ans) if ty is None else ty


defvjp_argnums(_call, _vjps)
defjvp_argnums(_call, _jvps)
