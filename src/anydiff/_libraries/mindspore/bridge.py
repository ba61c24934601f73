"""MindSpore programs calling a `DifferentiateWith` function: one `mindspore.nn.Cell` with `bprop`.

In PyNative mode MindSpore differentiates a cell with a `bprop` method by calling it instead of
recording the cell's operations: `bprop(x, out, dout)` evaluates the pullback node of
`nodes.py` (the substitute's prepared pullback). Each call makes one cell, holding the node and
the context arrays, whose `construct` takes `x` alone: MindSpore matches `bprop`'s arguments
to `construct`'s. Context arrays are constants of the cell: they get no gradient, as from torch.

First order only, as for MyGrad: MindSpore differentiates its own derivatives wrongly (see
`impl.py`), and differentiating through `bprop` again (`grad` of `grad`, which MindSpore runs with
its executor's grad flag set inside `bprop`) would see the pullback as a constant and give zero,
silently: that raises `ad.UnsupportedError` instead. MindSpore has no forward mode that reaches
the cell (`mindspore.jvp` compiles its caller from source).
"""

from __future__ import annotations

import importlib
from typing import Any

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype
from anydiff.extend import UnsupportedError, array_kind, converter

from . import AutoMindSpore
from .arrays import MINDSPORE
from .load import load_mindspore

ms = load_mindspore()
_Cell: Any = ms.nn.Cell  # a class of a module loaded at run time
_executor: Any = getattr(importlib.import_module("mindspore.graph.api"), "_pynative_executor", None)

__all__ = ["asarray", "call", "owns", "transparent"]

#: the substitute that needs no bridge from MindSpore
transparent = AutoMindSpore


def owns(x: Any) -> bool:
    return isinstance(x, ms.Tensor)


def asarray(a: Any) -> Any:
    """A context array as a MindSpore tensor (a constant of the cell)."""
    kind = array_kind(a)
    if kind is None or kind is MINDSPORE:
        return a
    return converter(kind, MINDSPORE)(a)  # type: ignore[misc]


class _Ops:
    """The rules' calls inside `bprop`: plain values (MindSpore never differentiates them)."""

    @staticmethod
    def call(node: Node, args: tuple) -> Any:
        return evaluate(node, args, MINDSPORE)


class _Call(_Cell):
    """`node(x, *leaves)` with its pullback from the substitute."""

    def __init__(self, node: Node, leaves: tuple) -> None:
        super().__init__()
        self.node, self.leaves = node, leaves

    def construct(self, x: Any) -> Any:
        return _Ops.call(self.node, (x, *self.leaves))

    def bprop(self, x: Any, out: Any, dout: Any) -> tuple:
        if _executor is not None and _executor.grad_flag():
            raise UnsupportedError(
                f"MindSpore differentiates a `DifferentiateWith` function to first order only: "
                f"{self.node.base!r} is being differentiated again (a `grad` of a `grad`). Take the "
                "second derivatives with anydiff instead, or in another library calling it "
                "(JAX, torch, TensorFlow)."
            )
        args = (x, *self.leaves)
        avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
        wanted = (True,) + (False,) * len(self.leaves)
        return (cotangents(_Ops, self.node, args, dout, wanted, avals)[0],)


def call(node: Node, args: tuple) -> Any:
    x, *leaves = args
    return _Call(node, tuple(leaves))(x)
