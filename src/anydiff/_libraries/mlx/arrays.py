"""MLX arrays: detection, conversion (imports mlx only inside its functions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from anydiff.extend import ArrayKind


def _mlx_is_array(tp: type) -> bool:
    import mlx.core as mx

    return issubclass(tp, mx.array)


def _mlx_from_numpy(a: np.ndarray) -> Any:
    import mlx.core as mx

    # `mx.array` and `mx.from_dlpack` turn float64 into MLX's default float32 unless told, and
    # refuse negative strides (a reversed view, as PyTensor's results can be).
    a = a if a.flags.c_contiguous else a.copy()
    return mx.array(a, dtype=mx.float64) if a.dtype == np.float64 else mx.array(a)


def _mlx_namespace(a: Any) -> Any:
    from .namespace import mlx_namespace

    return mlx_namespace


MLX = ArrayKind(
    name="mlx",
    module="mlx",
    is_array=_mlx_is_array,
    to_numpy=np.asarray,  # evaluates the lazy array; shares its memory through the buffer protocol
    from_numpy=_mlx_from_numpy,
    namespace=_mlx_namespace,
)
