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
pair's strategy stays what its two modes say. Two libraries are told apart by the import name
their backends were registered with, not by their arrays: autograd and the symbolic backends all
compute on NumPy arrays, yet autograd cannot trace SymPy's compiled functions.

Some pairs cannot work, and `parts` refuses them with `ad.UnsupportedError` when the operator is
prepared, naming pairs that work: an outer library that cannot call a `DifferentiateWith` (one
without a bridge caller that serves its compiled programs: tinygrad, MLX) or cannot
differentiate its own derivatives (MyGrad) over another library, and a symbolic outer part
(SymPy, CasADi, PyTensor, whose primitives trace and compile at every call) over any other
backend. `prep.info["route"]` says how the parts of a pair meet: directly, or for two AD
libraries through `DifferentiateWith`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from anydiff.bridge import DifferentiateWith, callable_from
from anydiff.extend import (
    AbstractBackend,
    BackendImpl,
    Kernels,
    Operator,
    OutputSpec,
    UnsupportedError,
    implementation,
    registered_backends,
)

from . import SecondOrder
from .mixed_mode import MixedModeImpl

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
        outer, inner = self.outer, self.inner
        #: two AD libraries, whose pair goes through `DifferentiateWith(f, inner)` (when it can)
        self.libraries = outer.kind is not None and inner.kind is not None and library(outer) != library(inner)
        self.owner = self.outer if self.outer.kind is not None else self.inner
        self.kind = self.owner.kind  # type: ignore[misc]
        # Finite differences as the outer part compute eagerly on the arrays they receive.
        self.accepts = self.owner.accepts if self.outer.kind is not None else frozenset()  # type: ignore[misc]

    def available(self) -> bool:
        return self.outer.available() and self.inner.available()

    def output_spec(self, f: Any, x: Any, contexts: tuple) -> OutputSpec:
        return self.owner.output_spec(self.across(f), x, contexts)

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        # The library that owns the pair's arrays compiles (finite differences own none): what
        # `AutoSparse(SecondOrder(...))` builds around the pair's products runs on its arrays.
        return (self.inner if self.outer.kind is None else self.outer).compile(fn, x)

    def across(self, f: Any) -> Any:
        """`f` as the outer part can trace it: `DifferentiateWith(f, inner)` for two AD libraries.

        A pair that `parts` refuses gets `f` itself, which its outer part evaluates as any `f`
        (for the output's shape), so that the refusal, not a failed bridge, explains it.
        """
        if not self.libraries or not self.works():
            return f
        return bridged(f, self.inner.backend)

    def works(self) -> bool:
        """Whether the two parts make a pair (`refusal` says why not)."""
        outer = self.outer
        if self.same:
            return True
        if outer.prepares_per_call or (self.libraries and not outer.higher_order):
            return False
        if self.libraries and outer.callback_threads and self.inner.thread_bound:
            return False
        return not self.libraries or (callable_from(library(outer)) and not self.inner.backend.combinator)

    def refusal(self, operator: str) -> str | None:
        """Why the two parts cannot make a pair, naming pairs that can, or `None` if they can."""
        if self.works():
            return None
        outer, inner, pair = self.outer.backend, self.inner.backend, repr(self.backend)
        if self.outer.prepares_per_call:
            return (
                f"{operator}: {outer!r} cannot be the outer part of {pair}: it differentiates by "
                "tracing `f` into symbolic expressions and compiling them, which another backend "
                f"cannot trace in turn; as an outer part it would have to trace {inner!r}'s "
                "derivatives into its expressions, and compile them again at every call. Use "
                f"{_alternatives(self.backend)}."
            )
        if not self.outer.higher_order:
            return (
                f"{operator}: {outer!r} cannot be the outer part of {pair}: it does not record its "
                "own backward pass (it has no higher-order derivatives), so it would see the "
                f"derivatives of {inner!r} as constants, and give a zero Hessian. Use "
                f"{_alternatives(self.backend)}."
            )
        if self.libraries and self.outer.callback_threads and self.inner.thread_bound:
            return (
                f"{operator}: {outer!r} runs the computations of the `ad.DifferentiateWith(f, {inner!r})` "
                f"it differentiates in {pair} on threads of its own, where {inner!r}'s arrays cannot "
                f"live (the process aborts when they are freed). Use {_alternatives(self.backend)}."
            )
        if inner.combinator:
            part = self.inner.owner.backend if isinstance(self.inner, MixedModeImpl) else None
            return (
                f"{operator}: {pair} pairs two AD libraries, so its outer part would differentiate "
                f"`ad.DifferentiateWith(f, {inner!r})`, whose backend must be a first-order one, "
                f"not a combinator. Use one of {inner!r}'s parts as the inner part"
                + (f", e.g. `ad.SecondOrder(ad.{outer!r}, ad.{part!r})`." if part is not None else ".")
            )
        return (
            f"{operator}: {pair} pairs two AD libraries, so its outer part would differentiate "
            f"`ad.DifferentiateWith(f, {inner!r})`, but {outer!r}'s transforms cannot call a "
            f"`DifferentiateWith` (no bridge caller of {library(self.outer)} serves its compiled "
            f"programs). Use {_alternatives(self.backend)}."
        )

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
        refusal = self.refusal(operator)  # type: ignore[arg-type]
        if refusal is not None:
            raise UnsupportedError(refusal)
        if self.libraries:
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
        kernels = operator.generic(self, f, x, tangents, contexts, spec)
        return kernels._replace(info={**kernels.info, "route": self.route()})

    def route(self) -> str:
        """How the two parts meet, for `prep.info["route"]`: two AD libraries through
        `DifferentiateWith` (what the outer part sees), otherwise directly (the outer part
        differentiates the inner part's derivative code as it runs)."""
        outer, inner = self.backend.outer, self.backend.inner
        if self.libraries:
            return f"{outer!r} over DifferentiateWith(f, {inner!r})"
        return f"{outer!r} directly over {inner!r}"


def library(impl: BackendImpl) -> str | None:
    """The AD library `impl` computes with: the import name its backend was registered with (or
    its array kind's name), `None` for finite differences, which compute with any arrays."""
    if isinstance(impl, MixedModeImpl):
        return library(impl.owner)
    registered = registered_backends()
    for tp in type(impl.backend).__mro__:
        if registered.get(tp) is not None:
            return registered[tp]
    return None if impl.kind is None else impl.kind.name


def _alternatives(pair: SecondOrder) -> str:
    """Pairs that work in place of a refused one: the parts swapped, finite differences over the
    inner part, or the outer part alone."""
    outer, inner = pair.outer, pair.inner
    swapped = SecondOrder(inner, outer)
    found = [f"`ad.SecondOrder(ad.{inner!r}, ad.{outer!r})`"] if implementation(swapped).works() else []  # type: ignore[attr-defined]
    if implementation(inner).kind is not None:
        found.append(f"`ad.SecondOrder(ad.AutoFiniteDiff(), ad.{inner!r})`")
    found.append(f"`ad.{outer!r}` alone")
    return ", ".join(found[:-1]) + f" or {found[-1]}"


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
