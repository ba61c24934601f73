"""`Operator`: what the shared preparation pipeline knows about one operator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from .frozen import frozen_dataclass
from .kernels import Kernels

__all__ = ["Operator", "Route"]


#: A route of one operator: `route(impl, f, x, tangents, contexts, spec) -> Kernels`, where `impl` is
#: the backend's `BackendImpl`, `tangents` the tuple of native tangents (`None` for operators
#: without tangents) and `spec` the shape and dtype of `f(x)`.
Route = Callable[..., Kernels]


@frozen_dataclass
class Operator:
    """What the shared pipeline needs to know about one operator, and its generic route.

    Operators are compared by identity: each is one record (`GRADIENT`, `HESSIAN`, ...), used as
    the key of a backend's `native` table.

    Attributes:
        name: the operator's name (`"gradient"`), as in its functions and messages.
        tangents: what the operator's tangents are shaped like: `None` (no tangents), `"x"`
            (pushforward, hvp) or `"y"` (pullback).
        output: the requirement on `f`'s output: `"any"`, `"scalar"` (shape `()`) or `"array"`.
        input: the requirement on `x`: `"any"` or `"scalar"` (derivative operators).
        two_argument: whether `f(y, x)` functions are allowed (with `y=`).
        order: 1 or 2 (second-order operators differentiate twice, with a pair of backends).
        results: what the results of the `value_and_` form are shaped like, in order (the plain
            form returns the last): `"y"` / `"x"` (like `f`'s output / like `x`), `"ys"` / `"xs"`
            (a tuple of those, one per tangent), `"J"` (a Jacobian), `"H"` (a Hessian). Trees are
            rebuilt from the flat results by these roles (`_core/trees.py`).
        generic: the route written on the backend's primitives alone (`generic_<name>` in the
            operator's module), taken by every backend without a native route for it.
    """

    name: str
    generic: Route  # keyword-only in `__init__`
    tangents: Literal["x", "y"] | None = None
    output: Literal["any", "scalar", "array"] = "any"
    input: Literal["any", "scalar"] = "any"
    two_argument: bool = False
    order: Literal[1, 2] = 1
    results: tuple[Literal["y", "x", "ys", "xs", "J", "H"], ...] = ()

    def __init__(
        self,
        name: str,
        tangents: Literal["x", "y"] | None = None,
        output: Literal["any", "scalar", "array"] = "any",
        input: Literal["any", "scalar"] = "any",
        two_argument: bool = False,
        order: Literal[1, 2] = 1,
        results: tuple[Literal["y", "x", "ys", "xs", "J", "H"], ...] = (),
        *,
        generic: Route,
    ) -> None:
        # Written out: every operator record is made at import, where a generated `__init__`
        # would cost the dataclass machinery (0.5 ms) and the import of `dataclasses`.
        for field, value in (
            ("name", name),
            ("tangents", tangents),
            ("output", output),
            ("input", input),
            ("two_argument", two_argument),
            ("order", order),
            ("results", results),
            ("generic", generic),
        ):
            object.__setattr__(self, field, value)

    # Compared by identity (a record per operator), as `dataclass(eq=False)` does.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return self.name.upper()
