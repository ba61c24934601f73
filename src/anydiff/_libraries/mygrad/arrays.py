"""MyGrad tensors: detection and conversion (imports mygrad only inside its functions).

A `mygrad.Tensor` wraps a NumPy array (`.data`) and exports no DLPack: conversions to other
kinds go through NumPy, without copies.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from anydiff.extend import ArrayKind


def _is_tensor(tp: type) -> bool:
    import mygrad

    return issubclass(tp, mygrad.Tensor)


def _to_numpy(a: Any) -> np.ndarray:
    return a.data


@functools.cache  # kept on first use: an `import mygrad` in a function costs 0.3 µs per call
def _tensor() -> Any:
    import mygrad

    return mygrad.Tensor


def _from_numpy(a: np.ndarray) -> Any:
    return _tensor()(a, copy=False)


def _namespace(a: Any) -> Any:
    from .namespace import mygrad_namespace

    return mygrad_namespace


MYGRAD = ArrayKind(
    name="mygrad",
    module="mygrad",
    is_array=_is_tensor,
    to_numpy=_to_numpy,
    from_numpy=_from_numpy,
    namespace=_namespace,
    dlpack=False,
)
