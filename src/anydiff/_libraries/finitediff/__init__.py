"""Finite differences: `AutoFiniteDiff` and its registration.

Needs no AD library: `impl.py`, loaded on the backend's first use, computes on any array kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = ["AutoFiniteDiff"]


_FD_METHODS = ("forward", "central", "complex")


@backend_dataclass
class AutoFiniteDiff(AbstractBackend):
    """`AutoFiniteDiff(method="central", step=None, executor=None)`: finite differences.

    Needs no AD library and runs `f` on the array kind it is given (NumPy, JAX, torch, ...).

    Args:
        method: `"forward"` (error O(h)), `"central"` (O(h²), twice the evaluations) or
            `"complex"` (complex step: exact to rounding, needs `f` to accept complex input).
        step: relative step; by default the one that balances truncation and rounding error for
            the input's dtype (eps^(1/2) forward, eps^(1/3) central, 1e-20 complex step).
            Second-order operators take second differences of `f`, whose balanced steps are
            eps^(1/3) forward and eps^(1/4) central; the complex method differences its
            complex-step derivatives along real central steps of eps^(1/3).
        executor: any `concurrent.futures.Executor`, or a Dask `distributed.Client`; the
            perturbed points of a Jacobian, gradient, batched pushforward, Hessian or HVP are
            then evaluated through it, in parallel, in chunks (two per worker). A Client
            receives `f`, the contexts and `x` once per call, scattered to its workers.
    """

    method: Literal["forward", "central", "complex"] = "central"
    step: float | None = None
    executor: Executor | None = None

    def __post_init__(self) -> None:
        if self.method not in _FD_METHODS:
            raise ValueError(f"AutoFiniteDiff: `method` must be one of {_FD_METHODS}; got {self.method!r}.")
        if self.step is not None and not (isinstance(self.step, (int, float)) and self.step > 0):
            raise ValueError(f"AutoFiniteDiff: `step` must be a positive number; got {self.step!r}.")
        if self.executor is not None and not (_is_executor(self.executor) or is_dask_client(self.executor)):
            raise TypeError(
                "AutoFiniteDiff: `executor` must be a `concurrent.futures.Executor` (e.g. a "
                f"ProcessPoolExecutor) or a Dask `distributed.Client`; got {type(self.executor).__name__}."
            )


def _is_executor(value: object) -> bool:
    # `concurrent.futures` (and the `logging` it loads) costs 20 ms: imported only when used.
    from concurrent.futures import Executor

    return isinstance(value, Executor)


def is_dask_client(value: object) -> bool:
    """Whether `value` is a `distributed.Client` (told by its class, without importing Dask)."""
    return any(c.__name__ == "Client" and c.__module__.startswith("distributed.") for c in type(value).__mro__)


register_backend(AutoFiniteDiff, "anydiff._libraries.finitediff.impl:FiniteDiffImpl", library=None)
