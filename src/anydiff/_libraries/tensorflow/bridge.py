"""TensorFlow programs calling a `DifferentiateWith` function: one `tf.custom_gradient` op.

Its gradient function applies the op again on derived nodes (`nodes.py`), so nested tapes give
second order, and `tf.autodiff.ForwardAccumulator`, which TensorFlow derives from gradient
functions (by transposing them once more), gives forward mode. Eagerly the op runs the
substitute at once; in `tf.function` graphs it runs through `tf.numpy_function`, its shape known
from the node. TensorFlow has no `vmap` that reaches the op (`vectorized_map` falls back to a
loop around it), so no batched node ever does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype
from anydiff.extend import array_kind, array_kinds

from . import AutoTensorFlow

__all__ = ["asarray", "call", "owns", "transparent"]

_NUMPY = array_kinds()["numpy"]

#: the substitute that needs no bridge from TensorFlow
transparent = AutoTensorFlow


def owns(x: Any) -> bool:
    return isinstance(x, (tf.Tensor, tf.Variable))


def asarray(a: Any) -> Any:
    """A context array as TensorFlow takes it (its tensors and NumPy arrays as they are)."""
    kind = array_kind(a)
    return a if kind is None or kind.name in ("tensorflow", "numpy") else kind.to_numpy(a)


def _host(node: Node, *args: Any) -> np.ndarray:
    return np.asarray(evaluate(node, args, _NUMPY))


def _value(node: Node, args: list) -> Any:
    if tf.executing_eagerly():
        return tf.constant(_host(node, *(a.numpy() for a in args)))
    avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
    node.prepare(avals)  # an `f` the substitute cannot run fails here, while tracing
    shape, dtype = node.spec(avals)
    y = tf.numpy_function(lambda *a: _host(node, *a), args, Tout=tf.as_dtype(dtype), stateful=False)
    y.set_shape(shape)
    return y


class _Ops:
    @staticmethod
    def call(node: Node, args: tuple) -> Any:
        return call(node, args)


def call(node: Node, args: tuple) -> Any:
    @tf.custom_gradient
    def op(*args: Any) -> tuple[Any, Any]:
        def gradient(ct: Any) -> list:
            avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
            wanted = tuple(i <= node.k for i in range(len(args)))  # contexts get no gradient
            return cotangents(_Ops, node, args, ct, wanted, avals)

        return _value(node, list(args)), gradient

    return op(*(tf.convert_to_tensor(a) for a in args))
