"""Paddle tensors: detection, conversion (imports paddle only inside its functions).

NumPy, torch and JAX arrays come in through DLPack (`paddle.from_dlpack`), without copies.
Tensors go out to NumPy by `Tensor.numpy()`, a copy, below `_SHARED_FROM` elements (0.7 µs up
to 1 000 elements, 2.3 µs at 10 000), and through DLPack above (`np.from_dlpack`, 2.7 µs at any
size, sharing memory).
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from anydiff.extend import ArrayKind

from .load import load_paddle


def _is_tensor(tp: type) -> bool:
    return issubclass(tp, load_paddle().Tensor)


#: the size from which sharing a tensor's memory through DLPack beats copying it (measured, Paddle 3.3)
_SHARED_FROM = 12_000


def _to_numpy(a: Any) -> np.ndarray:
    if prod(a.shape) < _SHARED_FROM:  # `a.shape` is a list: 0.15 µs, where `a.size` takes 4 µs
        found = a.numpy()
        if found.dtype != np.uint16:  # `numpy()` gives bfloat16 tensors as their uint16 bits: DLPack refuses them
            return found
    return np.from_dlpack(a.detach())


def _from_numpy(a: np.ndarray) -> Any:
    flags = a.flags  # a new object on each read
    if not (flags.c_contiguous and flags.writeable):
        # Paddle's DLPack import wants C-contiguous memory; a read-only array cannot be shared.
        a = np.array(a, order="C")
    return load_paddle().from_dlpack(a)


def _from_foreign(a: Any) -> Any:
    if hasattr(a, "detach"):  # a torch tensor that requires grad cannot be exported as is
        a = a.detach()
    return load_paddle().from_dlpack(a)


def _namespace(a: Any) -> Any:
    from .namespace import paddle_namespace

    return paddle_namespace


PADDLE = ArrayKind(
    name="paddle",
    module="paddle",
    is_array=_is_tensor,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    from_foreign=_from_foreign,
    namespace=_namespace,
    # Paddle exports DLPack, but JAX cannot import its capsules (`device_from_local_hardware_id`
    # refuses Paddle's CPU device) and a tensor that requires a gradient exports none: out of
    # Paddle, conversions go through `to_numpy`, which detaches and shares memory all the same.
    dlpack=False,
    # Paddle's dtypes are enum members, whose `name` is upper case ("FLOAT64").
    dtype_names={
        name.upper(): name
        for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "bfloat16", "float32", "float64")
        + ("complex64", "complex128")
    },
)
