"""TensorFlow arrays: detection, conversion (imports tensorflow only inside its functions)."""

from __future__ import annotations

from collections.abc import Callable
from operator import methodcaller
from typing import Any

import numpy as np

from anydiff.extend import ArrayKind, csr_rows


def _tensorflow_is_array(tp: type) -> bool:
    import tensorflow as tf

    return issubclass(tp, tf.Tensor)


# TensorFlow's eager tensor type, kept on first use. `tf.convert_to_tensor` takes 10 µs for 10
# values, most of it in Python before it makes this tensor on the default device (4.5 µs); made
# on the host from a copy of the array, the tensor takes 1.3 µs (measured). The copy is ours:
# TensorFlow shares an aligned array's memory rather than copying it.
_eager_tensor: list[Any] = []


def _tensorflow_from_numpy(a: np.ndarray) -> Any:
    if not _eager_tensor:
        from tensorflow.python.eager import context
        from tensorflow.python.framework.ops import EagerTensor

        context.ensure_initialized()  # the host tensor needs the eager context
        _eager_tensor.append(EagerTensor)
    return _eager_tensor[0](a.copy(), None, None)


def _tensorflow_namespace(a: Any) -> Any:
    # Importing `namespace.py` also registers the namespace for TensorFlow's eager and graph tensor types.
    from .namespace import tensorflow_namespace

    return tensorflow_namespace


def _tensorflow_sparse(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> Callable[[Any], Any]:
    import tensorflow as tf

    rows = csr_rows(indptr)
    coordinates = tf.constant(np.stack([rows, indices], axis=1).astype(np.int64))
    # Tensors are immutable: every result shares the coordinates.
    return lambda data: tf.sparse.SparseTensor(coordinates, data, shape)


TENSORFLOW = ArrayKind(
    name="tensorflow",
    module="tensorflow",
    is_array=_tensorflow_is_array,
    to_numpy=methodcaller("numpy"),  # a copy; called from C, without a Python frame
    from_numpy=_tensorflow_from_numpy,
    # No DLPack import: TensorFlow's kernels assume aligned buffers and abort the process on
    # a view into another library's memory (seen with slices of torch tensors). Through
    # NumPy, `tf.convert_to_tensor` copies into TensorFlow's own aligned memory.
    namespace=_tensorflow_namespace,
    sparse=_tensorflow_sparse,
)
