"""`MixedMode(forward, reverse)`: pushforwards from one backend, pullbacks from the other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anydiff.extend import (
    DERIVATIVE,
    GRADIENT,
    PULLBACK,
    PUSHFORWARD,
    BackendImpl,
    Kernels,
    Operator,
    OutputSpec,
    UnsupportedError,
    implementation,
)

from . import MixedMode

__all__ = ["MixedModeImpl"]


class MixedModeImpl(BackendImpl):
    """The implementation of `MixedMode`: pushforwards by one backend, pullbacks by the other."""

    def __init__(self, backend: MixedMode) -> None:
        # The primitives are the parts': `BackendImpl.__init__`'s check does not apply.
        self.backend = backend
        forward, reverse = implementation(backend.forward), implementation(backend.reverse)
        if forward.kind is not None and reverse.kind is not None and forward.kind is not reverse.kind:
            raise UnsupportedError(
                f"{backend!r}: its parts compute on different kinds of arrays ({forward.kind.name} "
                f"and {reverse.kind.name}), which one kernel cannot combine. Use two backends of "
                "the same library, or finite differences (`ad.AutoFiniteDiff()`) for one part."
            )
        self.forward_part, self.reverse_part = forward, reverse
        # The part with an array kind owns the arrays and compiles (finite differences own none).
        self.owner = reverse if reverse.kind is not None else forward
        self.kind = self.owner.kind  # type: ignore[misc]
        self.accepts = forward.accepts & reverse.accepts  # type: ignore[misc]
        self.mutation = forward.mutation and reverse.mutation  # type: ignore[misc]
        self.forward = forward.forward
        self.reverse = reverse.reverse
        self.prepares_per_call = forward.prepares_per_call or reverse.prepares_per_call  # type: ignore[misc]

    def available(self) -> bool:
        return self.forward_part.available() and self.reverse_part.available()

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        return self.forward_part.jvp(f, x, tangents, contexts)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        return self.reverse_part.vjp(f, x, contexts)

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        return self.reverse_part.gradient_function(f)

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        return self.owner.compile(fn, x)

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        return self.owner.output_spec(f, x, contexts)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        return self.forward_part.translate_error(exc, operator) or self.reverse_part.translate_error(exc, operator)

    def one_argument(self, f: Callable[..., Any], y: Any) -> Callable[..., Any]:
        if not self.mutation:
            return super().one_argument(f, y)  # raises, naming the backend
        return self.owner.one_argument(f, y)

    def kernels(
        self, operator: Operator, f: Any, x: Any, tangents: tuple | None, contexts: tuple, spec: OutputSpec
    ) -> Kernels:
        """Pushforwards and derivatives from the forward part, pullbacks and gradients from the
        reverse part, each by its own (native or generic) route; the rest generic, on both."""
        if operator in (PUSHFORWARD, DERIVATIVE):
            return self.forward_part.kernels(operator, f, x, tangents, contexts, spec)
        if operator in (PULLBACK, GRADIENT):
            return self.reverse_part.kernels(operator, f, x, tangents, contexts, spec)
        return super().kernels(operator, f, x, tangents, contexts, spec)
