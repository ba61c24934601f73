"""Paddle tensors: detection, conversion (imports paddle only inside its functions).

NumPy, torch and JAX arrays come in through DLPack (`paddle.from_dlpack`), and tensors go out to
NumPy through DLPack too (`np.from_dlpack`): no copies either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anydiff.extend import ArrayKind

from .load import load_paddle


def _is_tensor(tp: type) -> bool:
    return issubclass(tp, load_paddle().Tensor)


def _to_numpy(a: Any) -> np.ndarray:
    return np.from_dlpack(a.detach())


def _from_numpy(a: np.ndarray) -> Any:
    if not a.flags.c_contiguous or not a.flags.writeable:
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
