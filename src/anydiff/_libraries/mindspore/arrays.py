"""MindSpore tensors: detection, conversion (imports mindspore only inside its functions).

NumPy arrays come in without a copy (`Tensor.from_numpy` shares their memory) and go out
without one (`Tensor.asnumpy` is a view of a CPU tensor's memory). torch and JAX arrays come in
through DLPack (`mindspore.from_dlpack` of their capsule); MindSpore's tensors export no
`__dlpack__`, so conversions out of MindSpore go through NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anydiff.extend import ArrayKind

from .load import load_mindspore


def _is_tensor(tp: type) -> bool:
    return issubclass(tp, load_mindspore().Tensor)


def _to_numpy(a: Any) -> np.ndarray:
    return a.asnumpy()


def _from_numpy(a: np.ndarray) -> Any:
    if not a.flags.c_contiguous or not a.flags.writeable:
        # `from_numpy` shares memory, which must be C-contiguous; a read-only array is copied.
        a = np.array(a, order="C")
    return load_mindspore().Tensor.from_numpy(a)


def _from_foreign(a: Any) -> Any:
    if hasattr(a, "detach"):  # a torch tensor that requires grad exports no DLPack as is
        a = a.detach()
    return load_mindspore().from_dlpack(a.__dlpack__())


def _namespace(a: Any) -> Any:
    from .namespace import mindspore_namespace

    return mindspore_namespace


MINDSPORE = ArrayKind(
    name="mindspore",
    module="mindspore",
    is_array=_is_tensor,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    from_foreign=_from_foreign,
    namespace=_namespace,
    dlpack=False,  # MindSpore's tensors have `to_dlpack()` but no `__dlpack__`
    # MindSpore's dtypes print capitalised ("Float64") and have no `name`.
    dtype_names={
        name.capitalize(): name
        for name in ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64")
        + ("complex64", "complex128")
    }
    | {"BFloat16": "bfloat16"},
)
