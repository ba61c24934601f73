"""Second order across two AD libraries: `SecondOrder(outer, inner)` through `DifferentiateWith`.

In `SecondOrder(ad.AutoJAX(), ad.AutoTorch())` the outer library cannot trace the inner's code.
So the pair hands the second-order routes `f` wrapped as `DifferentiateWith(f, inner)` (a
function the outer library traces and differentiates, whose derivatives the inner backend
computes) and, as the inner part, `Bridged`: the outer library's transforms with the inner
backend's modes, so that the pair's strategy stays what its two modes say (JAX forward over
torch reverse: a JAX pushforward of the gradient that torch's pullback computes).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from .._core.backend_impl import BackendImpl
from .._core.kernels import OutputSpec
from ..bridge import DifferentiateWith

__all__ = ["Bridged", "bridged"]

_WRAPPED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bridged(f: Callable[..., Any], backend: Any) -> Callable[..., Any]:
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
