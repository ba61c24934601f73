"""PyTensor programs calling a `DifferentiateWith` function: one `Op` per node.

The `Op` of a node runs it in `perform` (the substitute computes, on NumPy arrays); its
`pullback` (PyTensor 2's `L_op`) and `pushforward` (`R_op`) build the `Op`s of derived nodes
(`nodes.py`), which have gradients in turn: `pytensor.grad` of a gradient,
`pytensor.gradient.hessian`, `jacobian` and `Rop` all work, in graphs compiled by
`pytensor.function` (PyTensor runs an `Op` without a compiled implementation through its
`perform`, in Numba's object mode or its C linker's Python thunk).

PyTensor gives an `Op`'s output a type when the graph is built, so the shapes of its inputs
must be static there: the node is prepared (and `f` evaluated once, at zeros) at that moment,
which also makes an `f` the substitute cannot run fail while the graph is built. The cotangents
and tangents PyTensor hands the rules get their static shapes back from the `Op`'s own inputs
and output. Contexts are not differentiated: their gradient is undefined (`pytensor.grad`
raises if asked for it) and a tangent on one raises `ad.UnsupportedError`.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type, grad_undefined
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import generate_fallback_impl, numba_funcify
from pytensor.tensor.variable import TensorVariable

from anydiff.bridge.nodes import Aval, Node, cotangents, evaluate, numpy_dtype, tangent
from anydiff.extend import UnsupportedError, array_kind, array_kinds

from . import AutoPyTensor
from . import impl as _impl  # noqa: F401  (`ad.namespace` of PyTensor variables, to ravel trees)

__all__ = ["asarray", "call", "leaf_aval", "owns", "transparent"]

_NUMPY = array_kinds()["numpy"]

#: the substitute that needs no bridge from PyTensor (its `f` is traced onto PyTensor variables)
transparent = AutoPyTensor


def owns(x: Any) -> bool:
    """Whether `x` is a PyTensor tensor variable (constants and shared variables included)."""
    return isinstance(x, TensorVariable)


def asarray(a: Any) -> Any:
    """A context array as the `Op` takes it: PyTensor variables as they are, others as NumPy."""
    kind = array_kind(a)
    return a if kind is None or kind is _NUMPY else kind.to_numpy(a)


def leaf_aval(v: Variable) -> tuple[tuple[int, ...], str]:
    """The static shape and dtype of a leaf of a tree `x` (whose `shape` is symbolic)."""
    return tuple(v.type.shape), str(v.type.dtype)


def _aval(v: Variable, node: Node) -> Aval:
    shape = v.type.shape
    if any(d is None for d in shape):
        raise UnsupportedError(
            f"{node.base!r} called on the PyTensor variable {v} of shape {shape}: PyTensor needs "
            "the shapes of an `Op`'s inputs when the graph is built. Give them static shapes, "
            "e.g. `pt.tensor('x', shape=(3,), dtype='float64')` or `pt.specify_shape(x, (3,))`."
        )
    return tuple(shape), numpy_dtype(v.type.dtype)


def _like(v: Variable, model: Variable) -> Variable:
    """`v` (a cotangent or tangent from PyTensor) with the static shape and dtype of `model`."""
    v = pt.specify_shape(v, model.type.shape)
    return v if v.type.dtype == model.type.dtype else pt.cast(v, model.type.dtype)


#: the nodes of the `Op`s alive, by `id`, for `_Call.__reduce__`
_NODES: weakref.WeakValueDictionary[int, Node] = weakref.WeakValueDictionary()


def _op_of(node_id: int) -> _Call:
    return _Call(_NODES[node_id])


class _Call(Op):
    """`node(*args)`, with derivatives from the node's derived nodes."""

    __props__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node
        _NODES[id(node)] = node

    def __reduce__(self) -> tuple:
        # Numba's object mode, which runs `perform` in a compiled graph, pickles the `Op` (to
        # check that it could cache it); a node holds locks and compiled functions: by reference.
        return _op_of, (id(self.node),)

    def __str__(self) -> str:
        return f"DifferentiateWith:{self.node!r}"

    def make_node(self, *inputs: Any) -> Apply:
        variables = [pt.as_tensor_variable(a) for a in inputs]
        avals = tuple(_aval(v, self.node) for v in variables)
        self.node.prepare(avals)
        shape, dtype = self.node.spec(avals)
        return Apply(self, variables, [pt.tensor(dtype=dtype.name, shape=shape)])

    def perform(self, apply: Apply, inputs: Sequence[Any], output_storage: list) -> None:
        output_storage[0][0] = np.asarray(evaluate(self.node, tuple(inputs), _NUMPY))

    def infer_shape(self, fgraph: Any, apply: Apply, input_shapes: list) -> list:
        return [apply.outputs[0].type.shape]

    def pullback(self, inputs: Any, outputs: Any, cotangents_: Any) -> list:
        ct = cotangents_[0]
        if isinstance(ct.type, DisconnectedType):
            return [disconnected_type() for _ in inputs]
        avals = tuple(_aval(v, self.node) for v in inputs)
        wanted = tuple(i <= self.node.k for i in range(len(inputs)))
        found = cotangents(_Ops, self.node, tuple(inputs), _like(ct, outputs[0]), wanted, avals)
        return [
            grad_undefined(self, i, v, "the contexts of a DifferentiateWith are not differentiated") if g is None else g
            for i, (v, g) in enumerate(zip(inputs, found, strict=True))
        ]

    def pushforward(self, inputs: Any, outputs: Any, tangents: Any) -> list:
        live = (
            None if isinstance(t.type, DisconnectedType) else _like(t, v) for v, t in zip(inputs, tangents, strict=True)
        )
        ty = tangent(_Ops, self.node, tuple(inputs), tuple(live))
        return [disconnected_type() if ty is None else ty]


@numba_funcify.register(_Call)
def _numba(op: _Call, node: Apply, storage_map: Any = None, **kwargs: Any) -> Any:
    # Numba's object mode, calling `perform`, is the way to run the substitute's Python code in
    # a compiled graph; PyTensor warns that it falls back to it for every such `Op`.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Numba will use object mode", UserWarning)
        return generate_fallback_impl(op, node, storage_map, **kwargs)


def call(node: Node, args: tuple) -> Any:
    return _Call(node)(*args)


class _Ops:
    call = staticmethod(call)
