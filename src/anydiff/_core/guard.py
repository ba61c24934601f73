"""The size guard: programs too big to compile run uncompiled, or are refused within seconds.

Tracing unrolls Python loops: an RK4 integration of 500 steps becomes a program of tens of
thousands of operations, which `jax.jit` compiled for minutes and past 24 GB, and which symbolic
backends differentiated for longer than anyone waits. At preparation the pipeline asks the
backend for the size of `f`'s traced program (`BackendImpl.program_size`, each library counting
its own way and stopping early); above the backend's `max_program_size` the derivative runs
uncompiled (`BackendImpl.eager`), with a `ProgramSizeWarning` and `prep.info["compiled"] = False`,
or, where the library has no uncompiled way, preparation raises `UnsupportedError`.

A combinator (`SecondOrder`, `AutoSparse`, `MixedMode`) compiles nothing itself: the guard applies
to each of its parts that computes on the combinator's arrays, and a part above its limit is
replaced by its uncompiled version in a copy of the combinator (a `SecondOrder` whose inner part
is JAX runs that part without `jax.jit`), or refuses as it would alone.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from .backend import AbstractBackend
from .backend_impl import BackendImpl
from .errors import ProgramSizeWarning, UnsupportedError
from .operator import Operator
from .registry import implementation

__all__ = ["size_guard"]

_WARNED: set[tuple] = set()
_WARNED_LOCK = threading.Lock()

_CAUSE = (
    "Tracing runs `f`'s Python code once and records every operation, so a Python loop (such as "
    "`for step in range(500):` in an ODE integrator) is unrolled: the program grows with the "
    "number of iterations"
)
_SUITED = (
    "backends that run such loops as they go: `ad.AutoJAX()` (which runs large programs without "
    "`jax.jit`), `ad.AutoTorch()`, `ad.AutoAutograd()` or `ad.AutoFiniteDiff()`"
)


def size_guard(
    operator: Operator, impl: BackendImpl, f: Callable[..., Any], x: Any, contexts: tuple
) -> tuple[BackendImpl, dict[str, Any] | None]:
    """`(the implementation to build the kernels with, the entries it adds to prep.info or None)`.

    Runs in the backend's array context, after the output check and before the kernels.
    """
    if impl.backend.combinator:
        return _combinator_guard(operator, impl, f, x, contexts)
    limit = impl.max_program_size()
    if limit is None:
        return impl, None
    size = impl.program_size(f, x, contexts, limit)
    if size is None or size <= limit:
        return impl, None
    backend = impl.backend
    option = f"`{type(backend).__name__}(max_program_size=...)`"
    eager = impl.eager()
    if eager is None:
        raise UnsupportedError(
            f"{operator.name}: `f` traces to a program of more than {limit} {impl.program_unit} "
            f"(counting stopped at {size}) under {backend!r}, whose `max_program_size` is {limit}; "
            f"it cannot run it without compiling or expanding it whole, which would take minutes "
            f"and gigabytes. {_CAUSE}. Use one of the {_SUITED}; or, to wait for it, raise the "
            f"limit with {option}."
        )
    name = getattr(f, "__qualname__", type(f).__qualname__)
    key = (operator.name, getattr(f, "__module__", None), name, repr(backend))
    with _WARNED_LOCK:
        first = key not in _WARNED
        _WARNED.add(key)
    if first:
        warnings.warn(
            f"{operator.name}: `f` traces to a program of more than {limit} {impl.program_unit} "
            f"({size} counted) under {backend!r}, whose `max_program_size` is {limit}, so its "
            f"derivative runs uncompiled (eagerly): compiling it could take minutes and gigabytes. "
            f"{_CAUSE}. `prep.info['compiled']` is False. To compile anyway, raise the limit with "
            f"{option}; to silence this, filter `ad.ProgramSizeWarning`.",
            ProgramSizeWarning,
            stacklevel=_user_level(),
        )
    return eager, {"compiled": False, "program_size": size}


def _combinator_guard(
    operator: Operator, impl: BackendImpl, f: Callable[..., Any], x: Any, contexts: tuple
) -> tuple[BackendImpl, dict[str, Any] | None]:
    """`size_guard` for a combinator: each of its parts that computes on the combinator's arrays."""
    import dataclasses  # not imported by `import anydiff`

    backend = impl.backend
    replaced: dict[str, Any] = {}
    added: dict[str, Any] = {}
    for field in dataclasses.fields(backend):  # type: ignore[arg-type]
        part = getattr(backend, field.name)
        if not isinstance(part, AbstractBackend):  # options, not parts
            continue
        part_impl = implementation(part)
        if part_impl.kind is None or part_impl.kind is not impl.kind:
            continue  # finite differences compile nothing; another library is guarded by its bridge
        builder, info = size_guard(operator, part_impl, f, x, contexts)
        if info is not None:
            replaced[field.name] = builder.backend
            added = {**info, "program_size": max(info["program_size"], added.get("program_size", 0))}
    if not replaced:
        return impl, None
    return implementation(dataclasses.replace(backend, **replaced)), added  # type: ignore[type-var]


def _user_level() -> int:
    """The `stacklevel` of the first frame outside anydiff: the user's call of the operator."""
    frame, level = sys._getframe(2), 2  # the caller of `warnings.warn`'s caller
    while frame is not None and frame.f_globals.get("__name__", "").startswith("anydiff."):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level
