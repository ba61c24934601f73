"""`Operator`: what the shared preparation pipeline knows about one operator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .kernels import Kernels, OutputSpec

__all__ = ["Operator"]


@dataclass(frozen=True, slots=True)
class Operator:
    """What the shared pipeline needs to know about one operator.

    Attributes:
        name: the operator's name (`"gradient"`); its backend method is `prepare_<name>`.
        tangents: what the operator's tangents are shaped like: `None` (no tangents), `"x"`
            (pushforward, hvp) or `"y"` (pullback).
        output: the requirement on `f`'s output: `"any"`, `"scalar"` (shape `()`) or `"array"`.
        input: the requirement on `x`: `"any"` or `"scalar"` (derivative operators).
        two_argument: whether `f(y, x)` functions are allowed (with `y=`).
        value_form: the name of the operator's value-returning form, for messages.
    """

    name: str
    tangents: Literal["x", "y"] | None = None
    output: Literal["any", "scalar", "array"] = "any"
    input: Literal["any", "scalar"] = "any"
    two_argument: bool = False
    value_form: str = ""

    def kernels(self, impl: Any, f: Any, x: Any, tangents: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
        method = getattr(impl, f"prepare_{self.name}")
        if self.tangents is None:
            return method(f, x, contexts, spec)
        return method(f, x, tangents, contexts, spec)
