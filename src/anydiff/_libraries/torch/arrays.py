"""PyTorch arrays: detection, conversion (imports torch only inside its functions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from anydiff.extend import ArrayKind


def _torch_is_array(tp: type) -> bool:
    import torch

    return issubclass(tp, torch.Tensor)


def _torch_to_numpy(a: Any) -> np.ndarray:
    # `detach` costs ~0.4 µs, so only for the tensors that need it (a `try` is free until it raises)
    try:
        return a.numpy()
    except RuntimeError:  # "Can't call numpy() on Tensor that requires grad"
        return a.detach().numpy()


# `torch.from_numpy`, kept on first use: the per-call `import torch` costs ~0.1 µs of a 0.5 µs conversion.
_from_numpy: list[Callable[[np.ndarray], Any]] = []


def _torch_from_numpy(a: np.ndarray) -> Any:
    # `torch.from_numpy` (~0.5 µs) warns on read-only arrays (e.g. NumPy views of JAX results);
    # DLPack (~1.5 µs) shares their memory without the warning: anydiff never writes into an input.
    if type(a) is np.ndarray and _from_numpy:
        flags = a.flags
        if flags.writeable and flags.c_contiguous:
            return _from_numpy[0](a)
    import torch

    if not _from_numpy:
        _from_numpy.append(torch.from_numpy)
    a = np.asarray(a)
    flags = a.flags
    if not flags.c_contiguous:
        return torch.from_numpy(a.copy())
    return torch.from_numpy(a) if flags.writeable else torch.from_dlpack(a)


def _torch_from_foreign(a: Any) -> Any:
    import torch

    return torch.from_dlpack(a)


def _torch_sparse(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> Callable[[Any], Any]:
    import warnings

    import torch

    rows, columns = torch.from_numpy(indptr.astype(np.int64)), torch.from_numpy(indices.astype(np.int64))

    def build(data: Any) -> Any:
        # Fresh index tensors (a caller editing one result must not change the next ones), on
        # the device of the data.
        return torch.sparse_csr_tensor(
            rows.to(data.device, copy=True),
            columns.to(data.device, copy=True),
            data,
            size=shape,
            check_invariants=False,
        )

    # torch warns once per process that sparse CSR tensors are in beta: let that happen here,
    # not in the user's calls.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        build(torch.zeros(indices.size, dtype=torch.float64))
    return build


TORCH = ArrayKind(
    name="torch",
    module="torch",
    is_array=_torch_is_array,
    to_numpy=_torch_to_numpy,
    from_numpy=_torch_from_numpy,
    from_foreign=_torch_from_foreign,
    sparse=_torch_sparse,
)
