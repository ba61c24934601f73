"""numdifftools: `AutoNumdifftools` and its registration.

Imports no numdifftools: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend

__all__ = ["AutoNumdifftools"]

_METHODS = ("central", "forward", "backward", "complex")


@backend_dataclass
class AutoNumdifftools(AbstractBackend):
    """`AutoNumdifftools(method="central", order=2, step=None)`: adaptive finite differences.

    numdifftools evaluates `f` along a decreasing sequence of steps, extrapolates the difference
    quotients to a zero step (Richardson extrapolation) and keeps, element by element, the
    estimate with the smallest estimated error: first derivatives keep 12-14 digits and Hessians
    about 11 in float64, where fixed-step central differences (`AutoFiniteDiff`) keep about 10
    and 7, at about 30 evaluations of `f` per direction (30 n for a gradient or Jacobian of n
    inputs, 30 n² for a Hessian). It computes on NumPy arrays and needs no AD library: `f`
    receives NumPy arrays and may be any black box.

    Args:
        method: `"central"` (the default), `"forward"`, `"backward"` (one-sided, for an `f`
            defined on one side only) or `"complex"` (complex step: `f` must accept complex
            input and be analytic).
        order: order of the error term of each difference formula before extrapolation; even
            for `"central"` and `"complex"`. Hessians use numdifftools' own second-order formula
            whatever the order.
        step: base step of the sequence numdifftools extrapolates over; `None` lets it choose
            from the size of `x`.

    float32 inputs are differentiated in float64 (a float32 `f(x + h)` would keep 3 digits of a
    difference) and the results rounded to float32.
    """

    method: Literal["central", "forward", "backward", "complex"] = "central"
    order: int = 2
    step: float | None = None
    extra: ClassVar[str] = "numdifftools"

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"AutoNumdifftools: `method` must be one of {_METHODS}; got {self.method!r}.")
        if not (isinstance(self.order, int) and not isinstance(self.order, bool) and self.order > 0):
            raise ValueError(f"AutoNumdifftools: `order` must be a positive integer; got {self.order!r}.")
        if self.method in ("central", "complex") and self.order % 2:
            raise ValueError(
                f"AutoNumdifftools: `order` must be even for method={self.method!r} (its difference "
                f"formulas are symmetric); got {self.order}."
            )
        if self.step is not None and not (
            isinstance(self.step, (int, float)) and not isinstance(self.step, bool) and self.step > 0
        ):
            raise ValueError(f"AutoNumdifftools: `step` must be a positive number or None; got {self.step!r}.")


register_backend(AutoNumdifftools, "anydiff._libraries.numdifftools.impl:NumdifftoolsImpl", library="numdifftools")
