"""MLX arrays: detection, conversion (imports mlx only inside its functions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from anydiff.extend import ArrayKind


def _mlx_is_array(tp: type) -> bool:
    import mlx.core as mx

    return issubclass(tp, mx.array)


_FLOAT64 = np.dtype(np.float64)

# `mx.array`, `mx.float64` and `mx.eval`, kept on first use: an `import mlx.core` in a function
# costs 0.3 µs per call, and lookups more; `mx.array(a, dtype=mx.float64)` alone takes 1.0.
_mlx: list[Any] = []


def _loaded() -> list[Any]:
    import mlx.core as mx

    _mlx[:] = (mx.array, mx.float64, mx.eval)  # assigned, not extended: two threads may load at once
    return _mlx


def _mlx_from_numpy(a: np.ndarray) -> Any:
    # `mx.array` and `mx.from_dlpack` turn float64 into MLX's default float32 unless told, and
    # refuse negative strides (a reversed view, as PyTensor's results can be): such a view is
    # copied when refused, rather than `a.flags` read on every call.
    array, float64, _ = _mlx or _loaded()
    try:
        return array(a, dtype=float64) if (d := a.dtype) is _FLOAT64 or d == _FLOAT64 else array(a)
    except ValueError:
        if a.flags.c_contiguous:
            raise
        return _mlx_from_numpy(np.ascontiguousarray(a))


def _mlx_evaluate(results: tuple) -> None:
    (_mlx or _loaded())[2](results)


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
    evaluate=_mlx_evaluate,  # one evaluation for a tuple of results, where `np.asarray` makes one each
)
