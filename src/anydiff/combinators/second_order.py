"""`SecondOrder(outer, inner)`: the inner backend differentiates `f`, the outer differentiates that.

The pair's Hessian-vector strategy follows from the two parts' modes (`hvp.strategy`): forward
over reverse when the outer has forward mode and the inner reverse mode, then reverse over
forward, reverse over reverse, and forward over forward; `prep.info["strategy"]` shows it.
A pair of a backend with itself is that backend, native routes included.

Finite differences pair with any backend: they run on whatever arrays they are given, so the
other part's library owns the arrays and compiles the kernels (finite differences over JAX are
traced into one `jax.jit`). Two different AD libraries need the `DifferentiateWith` bridge.

Across two AD libraries (`SecondOrder(ad.AutoJAX(), ad.AutoTorch())`) the outer library cannot
trace the inner's code, so the generic routes receive `f` wrapped as `DifferentiateWith(f, inner)`
(a function the outer library traces, whose derivatives the inner backend computes) and, as the
inner part, `Bridged`: the outer library's transforms with the inner backend's modes, so that the
pair's strategy stays what its two modes say.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from anydiff.bridge import DifferentiateWith
from anydiff.extend import AbstractBackend, BackendImpl, Kernels, Operator, OutputSpec, UnsupportedError, implementation

from . import SecondOrder

__all__ = ["Bridged", "SecondOrderImpl", "bridged"]


class SecondOrderImpl(BackendImpl):
    """The implementation of `SecondOrder`: resolves both parts and hands them to the generic routes."""

    def __init__(self, backend: SecondOrder) -> None:
        # A combinator has no primitives of its own, so `BackendImpl.__init__`'s check does not
        # apply: everything goes through the parts.
        self.backend: SecondOrder = backend
        self.outer = implementation(backend.outer)
        self.inner = implementation(backend.inner)
        self.same = backend.outer == backend.inner
        self.owner = self.outer if self.outer.kind is not None else self.inner
        self.kind = self.owner.kind  # type: ignore[misc]
        # Finite differences as the outer part compute eagerly on the arrays they receive.
        self.accepts = self.owner.accepts if self.outer.kind is not None else frozenset()  # type: ignore[misc]

    def available(self) -> bool:
        return self.outer.available() and self.inner.available()

    def output_spec(self, f: Any, x: Any, contexts: tuple) -> OutputSpec:
        return self.owner.output_spec(self.across(f), x, contexts)

    def across(self, f: Any) -> Any:
        """`f` as the outer part can trace it: `DifferentiateWith(f, inner)` for two AD libraries."""
        outer, inner = self.outer, self.inner
        if outer.kind is None or inner.kind is None or outer.kind is inner.kind:
            return f
        return bridged(f, inner.backend)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        if "modified by an inplace operation" in str(exc) and _evaluates_inside(self.outer, self.inner):
            return UnsupportedError(
                f"{operator}: `f` overwrote an array that {self.outer.backend!r} still needed to "
                f"differentiate. Finite differences, the inner part of {self.backend!r}, evaluate `f` "
                "several times within one outer differentiation, so a buffer `f` writes in place "
                "(an `ad.Cache`) is overwritten between evaluations. Use finite differences as the "
                f"outer part, `ad.SecondOrder(ad.AutoFiniteDiff(), {self.backend.outer!r})`, or let "
                "`f` allocate its scratch arrays."
            )
        return self.outer.translate_error(exc, operator) or self.inner.translate_error(exc, operator)

    def parts(self, operator: Operator, f: Any) -> tuple[BackendImpl, BackendImpl, Any]:
        """`(outer, inner, f)` for the generic routes, after checking that they can be combined for `operator`."""
        operator, outer, inner = operator.name, self.outer, self.inner  # type: ignore[assignment]
        pair = repr(self.backend)
        for name, part in (("outer", outer), ("inner", inner)):
            if isinstance(part, SecondOrderImpl):
                raise TypeError(
                    f"{operator}: the `{name}` part of {pair} is itself a `SecondOrder`; each part "
                    "must be a first-order backend such as `ad.AutoJAX()`."
                )
        if outer.kind is not None and inner.kind is not None and outer.kind is not inner.kind:
            # Two AD libraries: the outer differentiates `DifferentiateWith(f, inner)`, whose
            # derivatives the inner computes; the inner's modes still choose the strategy.
            return outer, Bridged(outer, inner), self.across(f)
        for name, part, other in (("outer", outer, inner), ("inner", inner, outer)):
            if not part.traceable and other.kind is not None:
                raise UnsupportedError(
                    f"{operator}: the `{name}` part of {pair} evaluates through an executor, which "
                    f"cannot run inside {other.backend!r}'s traced and compiled functions. Drop "
                    "`executor=` in the pair, or use `ad.AutoFiniteDiff(executor=...)` alone, whose "
                    "second differences go through the executor."
                )
        if outer.complex_step:
            if inner.kind is not None or inner.complex_step:
                raise UnsupportedError(
                    f"{operator}: the complex-step outer part of {pair} would evaluate the inner "
                    "derivative at complex points, which only finite differences with real steps "
                    f"accept (not {inner.backend!r}). Use `ad.AutoFiniteDiff()` (central) as the "
                    "outer part."
                )
        return outer, inner, f

    def kernels(
        self, operator: Operator, f: Any, x: Any, tangents: tuple | None, contexts: tuple, spec: OutputSpec
    ) -> Kernels:
        """A pair of a backend with itself is that backend; other pairs take the generic route
        of the second-order operator, which asks `parts` for the pair."""
        if operator.order == 1:
            raise UnsupportedError(
                f"{operator.name}: {self.backend!r} is a second-order pair, for `second_derivative`, "
                f"`hvp` and `hessian`. Call `ad.{operator.name}` with one of its parts, e.g. "
                f"`ad.{operator.name}(f, {self.backend.inner!r}, x, ...)`."
            )
        if self.same:
            return self.outer.kernels(operator, f, x, tangents, contexts, spec)
        return operator.generic(self, f, x, tangents, contexts, spec)


def _evaluates_inside(outer: BackendImpl, inner: BackendImpl) -> bool:
    """Whether `inner` evaluates `f` several times inside what `outer` traces."""
    return outer.kind is not None and inner.kind is None


# -- two AD libraries: the outer differentiates `DifferentiateWith(f, inner)` --------------------

_WRAPPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bridged(f: Callable[..., Any], backend: AbstractBackend) -> Callable[..., Any]:
    """`DifferentiateWith(f, backend)`, the same object for the same `f` (so its preps are shared)."""
    if isinstance(f, DifferentiateWith) and f.backend == backend:
        return f
    try:
        by_backend = _WRAPPED.setdefault(f, {})
    except TypeError:  # `f` cannot be weakly referenced: wrap it anew
        return DifferentiateWith(f, backend)
    wrapped = by_backend.get(backend)
    if wrapped is None:
        wrapped = by_backend[backend] = DifferentiateWith(f, backend)
    return wrapped


class Bridged(BackendImpl):
    """`inner` as the outer library sees it: the outer's transforms of a bridged `f`, inner's modes."""

    def __init__(self, outer: BackendImpl, inner: BackendImpl) -> None:
        # No primitives of its own (`BackendImpl.__init__` would insist on them): the outer's.
        self.backend, self.outer = inner.backend, outer
        self.kind, self.accepts = outer.kind, outer.accepts  # type: ignore[misc]
        self.forward, self.reverse = inner.forward, inner.reverse

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        return self.outer.jvp(f, x, tangents, contexts)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        return self.outer.vjp(f, x, contexts)

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        return self.outer.gradient_function(f)

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        return self.outer.compile(fn, x)

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        return self.outer.output_spec(f, x, contexts)
