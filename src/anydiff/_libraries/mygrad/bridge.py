"""MyGrad programs calling a `DifferentiateWith` function: one MyGrad operation.

MyGrad records an `Operation` per call and back-propagates through it with `backward_var`,
which receives and returns NumPy arrays: its backward pass is not itself recorded, so MyGrad
has no higher-order derivatives and no forward mode. The operation's `backward_var` therefore
evaluates the pullback node of `nodes.py` (the substitute's prepared pullback) on NumPy arrays,
and only ever meets the node of `f` itself (MyGrad never differentiates a derived node).
Context arrays enter the operation as NumPy data, which MyGrad wraps as constants: they get no
gradient, as from torch.
"""

from __future__ import annotations

from typing import Any

import mygrad as mg
import numpy as np
from mygrad.operation_base import Operation

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype
from anydiff.extend import array_kind, array_kinds

from . import AutoMyGrad

__all__ = ["asarray", "call", "owns", "transparent"]

_NUMPY = array_kinds()["numpy"]

#: the substitute that needs no bridge from MyGrad
transparent = AutoMyGrad


def owns(x: Any) -> bool:
    return isinstance(x, mg.Tensor)


def asarray(a: Any) -> Any:
    """A context array as NumPy (a MyGrad tensor's data: a constant of the operation)."""
    kind = array_kind(a)
    return a if kind is None or kind is _NUMPY else kind.to_numpy(a)


class _NumPyOps:
    """The rules' calls inside `backward_var`: plain values, on NumPy arrays."""

    @staticmethod
    def call(node: Node, args: tuple) -> Any:
        return np.asarray(evaluate(node, args, _NUMPY))


class _Call(Operation):
    """`node(x, *leaves)` with its pullback from the substitute."""

    def __call__(self, x: Any, node: Node, leaves: tuple) -> np.ndarray:  # type: ignore[override]
        self.variables = (x,)
        self.node, self.leaves = node, leaves
        y = _NumPyOps.call(node, (x.data, *leaves))
        # MyGrad's memory guard walks the base of every array in its graph and fails on a view
        # of foreign memory (a JAX or torch result seen through NumPy): such a result is copied.
        return y if y.base is None or isinstance(y.base, np.ndarray) else y.copy()

    def backward_var(self, grad: np.ndarray, index: int, **kwargs: Any) -> np.ndarray:
        x = self.variables[0].data
        args = (x, *self.leaves)
        avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
        wanted = (True,) + (False,) * len(self.leaves)
        return cotangents(_NumPyOps, self.node, args, grad, wanted, avals)[0]


def call(node: Node, args: tuple) -> Any:
    x, *leaves = args
    return mg.execute_op(_Call, x, op_args=(node, tuple(leaves)))
