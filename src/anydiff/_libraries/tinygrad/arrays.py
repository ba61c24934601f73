"""tinygrad arrays: detection, conversion (imports tinygrad only inside its functions)."""

from __future__ import annotations

from typing import Any

import numpy as np

from anydiff.extend import ArrayKind


def _tinygrad_is_array(tp: type) -> bool:
    from tinygrad import Tensor

    return issubclass(tp, Tensor)


def _tinygrad_to_numpy(a: Any) -> np.ndarray:
    from .namespace import to_numpy

    return to_numpy(a)


def _tinygrad_from_numpy(a: np.ndarray) -> Any:
    from .namespace import from_numpy

    return from_numpy(a)


def _tinygrad_namespace(a: Any) -> Any:
    from .namespace import tinygrad_namespace

    return tinygrad_namespace


TINYGRAD = ArrayKind(
    name="tinygrad",
    module="tinygrad",
    is_array=_tinygrad_is_array,
    to_numpy=_tinygrad_to_numpy,
    from_numpy=_tinygrad_from_numpy,
    namespace=_tinygrad_namespace,
    dlpack=False,
    # tinygrad names its dtypes after C's types.
    dtype_names={"double": "float64", "float": "float32", "half": "float16"},
)
