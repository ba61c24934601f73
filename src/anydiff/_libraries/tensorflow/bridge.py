"""TensorFlow programs calling a `DifferentiateWith` function: one recorded operation.

Its gradient function applies the op again on derived nodes (`nodes.py`), so nested tapes give
second order, and its forward function (the `tangent` rule, as JAX's and autograd's) serves
`tf.autodiff.ForwardAccumulator`, nested too. Eagerly the op runs the
substitute at once; in `tf.function` graphs it runs through `tf.numpy_function`, its shape known
from the node. TensorFlow has no `vmap` that reaches the op (`vectorized_map` falls back to a
loop around it), so no batched node ever does.

The op is recorded with `record_operation`, the call on which `tf.custom_gradient` is built,
rather than with `tf.custom_gradient` itself: in a graph, `tf.custom_gradient` routes its inputs
through an `IdentityN` op that forward accumulators differentiate as an identity, so every
forward-mode derivative through it came out zero (forward over reverse Hessians included), and
nested accumulators failed on the `numpy_function` inside. The value is computed on inputs with
their gradients stopped, so that tapes and accumulators see only the recorded rules. Without a
forward function, accumulators would transpose the gradient function, whose unused cotangents
(of the linear arguments) need derivatives of a higher order than the result: a symbolic
substitute, which only computes its prepared operators, cannot give them. TensorFlow gives the
forward function zeros for inputs without tangents, so a tangent of a context is ignored (as
torch ignores it) rather than refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import record  # what `tf.custom_gradient` records with (see above)

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype, tangent
from anydiff.extend import array_kind, array_kinds

from . import AutoTensorFlow

__all__ = ["asarray", "call", "leaf_value", "owns", "transparent"]

_NUMPY = array_kinds()["numpy"]

#: the substitute that needs no bridge from TensorFlow
transparent = AutoTensorFlow


def owns(x: Any) -> bool:
    return isinstance(x, (tf.Tensor, tf.Variable))


def leaf_value(a: Any) -> Any:
    """A leaf of a tree `x`: a `tf.Variable` is read (on the tape, so its gradient flows to it)."""
    return tf.convert_to_tensor(a) if isinstance(a, tf.Variable) else a


def asarray(a: Any) -> Any:
    """A context array as TensorFlow takes it (its tensors and NumPy arrays as they are)."""
    kind = array_kind(a)
    return a if kind is None or kind.name in ("tensorflow", "numpy") else kind.to_numpy(a)


def _host(node: Node, *args: Any) -> np.ndarray:
    # `numpy_function` passes 0-d inputs as NumPy scalars, which the substitute's preps do not take
    return np.asarray(evaluate(node, tuple(np.asarray(a) for a in args), _NUMPY))


def _value(node: Node, args: list) -> Any:
    if tf.executing_eagerly():
        return tf.constant(_host(node, *(a.numpy() for a in args)))
    avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
    node.prepare(avals)  # an `f` the substitute cannot run fails here, while tracing
    shape, dtype = node.spec(avals)
    stopped = [tf.stop_gradient(a) for a in args]  # only the recorded rule differentiates it
    y = tf.numpy_function(lambda *a: _host(node, *a), stopped, Tout=tf.as_dtype(dtype), stateful=False)
    y.set_shape(shape)
    return y


class _Ops:
    @staticmethod
    def call(node: Node, args: tuple) -> Any:
        return call(node, args)


def call(node: Node, args: tuple) -> Any:
    args = tuple(tf.convert_to_tensor(a) for a in args)
    y = _value(node, list(args))

    def gradient(ct: Any) -> list:
        avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
        wanted = tuple(i <= node.k for i in range(len(args)))  # contexts get no gradient
        return cotangents(_Ops, node, args, ct, wanted, avals)

    def pushforward(*tangents: Any) -> list:
        # TensorFlow passes zeros for the inputs that carry no tangent; contexts are not differentiated.
        ty = tangent(_Ops, node, args, (*tangents[: 1 + node.k], *(None,) * (len(args) - 1 - node.k)))
        return [tf.zeros_like(y) if ty is None else ty]

    record.record_operation("DifferentiateWith", [y], list(args), gradient, pushforward)
    return y
