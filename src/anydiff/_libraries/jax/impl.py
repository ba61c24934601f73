"""JAX: `jax.jvp` / `jax.vjp` as primitives, `vmap` over tangents, `jax.jit` at prepare time.

float64 is kept without touching JAX's global configuration: the JAX array kind (`_arrays.py`)
runs every preparation and prepared call of a float64 prep inside `jax.enable_x64(True)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from contextlib import nullcontext
from typing import Any

import jax
import jax.numpy as jnp

from anydiff.extend import (
    GRADIENT,
    HESSIAN,
    JACOBIAN,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    OutputSpec,
    array_kind,
    flat_size,
    jacobian_batch,
    use_forward,
)

from . import AutoJAX

__all__ = ["JAXImpl", "executable_for"]

_TRACER_ERRORS = (
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
)


def _compiled(fn: Callable[..., Any], context: Callable[[], ContextManager[Any]] | None) -> Callable[..., Any]:
    """`jax.jit(fn)`, called through its compiled executable once called with concrete arrays.

    A jitted call inside `jax.enable_x64` leaves JAX's fastest dispatch path; the executable
    compiled at the first call (inside the context) keeps its float64 types and is called
    without it, 0.5-0.8 µs faster than the jitted call in the context and 10-20 % of a small
    prepared call. Arguments the executable was not compiled for (JAX tracers under a
    transformation, NumPy or Python values, which need the context) raise `TypeError` before
    anything runs; the kernel then falls back to the jitted function for good. A closure, not
    an object with `__call__`: 60 ns less per call.
    """
    jitted = jax.jit(fn)
    enter = context or nullcontext
    executable: Any = None  # compiled at the first call; `_JITTED` when not to be used

    def call(*args: Any) -> Any:
        nonlocal executable
        if executable is not None and executable is not _JITTED:
            try:
                return executable(*args)
            except TypeError:  # other types than at the first call: JAX checks before running
                executable = _JITTED
        if executable is None:
            found = executable_for(jitted, enter, args)
            executable = _JITTED if found is None else found
            if found is not None:
                return found(*args)
        with enter():
            return jitted(*args)

    call.enters_context = True  # type: ignore[attr-defined]  # the prepared call leaves the context to it
    return call


def executable_for(jitted: Any, context: Callable[[], ContextManager[Any]], args: tuple) -> Any | None:
    """The executable of `jitted` compiled (inside `context`) for `args`, or `None` unless every
    leaf of `args` is a concrete JAX array (tracers and NumPy arrays go through `jitted`)."""
    if not all(type(leaf) is _ARRAY for leaf in jax.tree.leaves(args)):
        return None
    with context():
        return jitted.lower(*args).compile()


_JITTED = object()
_ARRAY = type(jnp.zeros(()))  # a concrete JAX array (tracers are of other types)


class JAXImpl(BackendImpl):
    kind = array_kind(jnp.zeros(()))
    accepts = frozenset({"numpy"})  # jitted functions take NumPy arrays as they are
    callback_threads = True  # XLA runs host callbacks (a DifferentiateWith's) on its own threads

    def __init__(self, backend: AutoJAX) -> None:
        super().__init__(backend)
        self.jit = backend.jit

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        if tangents.shape[0] == 1:
            y, ty = jax.jvp(g, (x,), (tangents[0],))
            return y, ty[None]
        # Linearise once, then push every tangent through the linear map in one batch.
        y, linear = jax.linearize(g, x)
        return y, jax.vmap(linear)(tangents)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        y, pull = jax.vjp(lambda x: f(x, *contexts), x)
        batched = jax.vmap(lambda u: pull(u)[0])

        def pullback(cotangents: Any) -> Any:
            # one cotangent without `vmap`, as `jvp` pushes one tangent: no batch of one in the
            # compiled program
            if cotangents.shape[0] == 1:
                return pull(cotangents[0])[0][None]
            return batched(cotangents)

        return y, pullback

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        if not self.jit:
            return fn
        if type(x) is not _ARRAY:  # NumPy arrays: never the executable, which takes JAX arrays only
            return jax.jit(fn)
        assert self.kind is not None and self.kind.context is not None
        return _compiled(fn, self.kind.context(x))

    program_unit = "jaxpr equations"

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        if not self.jit:
            return None  # nothing is compiled
        try:
            closed = jax.make_jaxpr(lambda x: f(x, *contexts))(x)
        except Exception:  # `f` fails to trace: the derivative's preparation says why
            return None
        return _equations(closed.jaxpr)

    def eager(self) -> BackendImpl | None:
        return JAXImpl(dataclasses.replace(self.backend, jit=False))  # type: ignore[arg-type, type-var]

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        out = jax.eval_shape(lambda x: f(x, *contexts), x)
        if not hasattr(out, "shape"):
            raise TypeError(f"AutoJAX: `f` must return a JAX array; it returned {type(out).__name__}.")
        return OutputSpec(tuple(out.shape), out.dtype)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        if isinstance(exc, _TRACER_ERRORS):
            first_line = str(exc).strip().splitlines()[0]
            return FunctionNotDifferentiableError(
                f"{operator}: `f` turned a JAX tracer into a concrete value ({first_line}). "
                "Under `ad.AutoJAX()`, `f` receives JAX arrays being traced: write it with "
                "`xp = ad.namespace(x)` and `xp.` functions instead of `numpy.` calls, and "
                "replace Python branches on array values by `xp.where`."
            )
        return None

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        return jax.grad(f) if self.reverse else super().gradient_function(f)

    # -- native routes --------------------------------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        return Kernels(
            self.compile(jax.grad(f), x),
            self.compile(jax.value_and_grad(f), x),
            {"mode": "reverse"},
        )

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        n, m = flat_size(tuple(x.shape)), flat_size(spec.shape)
        forward = use_forward(self, n, m)
        size = jacobian_batch(x, spec, forward)
        if size < (n if forward else m):
            return _batched_jacobian(f, forward, size, self.compile, x)
        jac = (jax.jacfwd if forward else jax.jacrev)(f)

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return f(x, *contexts), jac(x, *contexts)

        return Kernels(
            self.compile(jac, x),
            self.compile(value_and_jacobian, x),
            {"mode": "forward" if forward else "reverse"},
        )

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        # `jax.hessian`, `vmap` of `jvp` of `grad`, beats pushing the basis through a linearised
        # gradient (the generic route) by 1.2-1.4x at n = 1 000 (measured); a forced mode keeps the
        # generic strategy for that mode.
        if not (self.forward and self.reverse):
            return HESSIAN.generic(self, f, x, None, contexts, spec)
        n = flat_size(tuple(x.shape))
        size = jacobian_batch(x, OutputSpec(tuple(x.shape), spec.dtype), True)
        if size < n:
            return _batched_hessian(f, size, self.compile, x)

        def gradient_and_value(x: Any, *contexts: Any) -> tuple[Any, tuple[Any, Any]]:
            y, g = jax.value_and_grad(f)(x, *contexts)
            return g, (y, g)

        hessian_and_value = jax.jacfwd(gradient_and_value, has_aux=True)

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            hessian, (y, g) = hessian_and_value(x, *contexts)
            return y, g, hessian

        return Kernels(
            self.compile(jax.hessian(f), x),
            self.compile(value_gradient_and_hessian, x),
            {"strategy": "forward-over-reverse", "route": "jax.hessian"},
        )

    native = {GRADIENT: native_gradient, JACOBIAN: native_jacobian, HESSIAN: native_hessian}


def _equations(jaxpr: Any) -> int:
    """The equations of `jaxpr` and of the jaxprs inside it (a loop's body counts once)."""
    count = 0
    for equation in jaxpr.eqns:
        count += 1
        for value in equation.params.values():
            for item in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(item, "jaxpr", item)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(inner, "eqns"):
                    count += _equations(inner)
    return count


def _unit(i: Any, like: Any) -> Any:
    """Basis vector `i` shaped like `like` (inside `lax.map`: the basis is never held whole)."""
    return jnp.zeros(like.size, dtype=like.dtype).at[i].set(1).reshape(like.shape)


def _batched_jacobian(f: Any, forward: bool, size: int, compile: Callable[..., Any], x: Any) -> Kernels:
    """The Jacobian by `jax.lax.map` over the basis, `size` tangents at a time (a scan of vmaps)."""

    def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        if forward:
            y, push = jax.linearize(g, x)
            columns = jax.lax.map(lambda i: push(_unit(i, x)), jnp.arange(x.size), batch_size=size)
            jac = columns.reshape(x.size, y.size).T
        else:
            y, pull = jax.vjp(g, x)
            jac = jax.lax.map(lambda i: pull(_unit(i, y))[0], jnp.arange(y.size), batch_size=size)
        return y, jnp.reshape(jac, (*y.shape, *x.shape))

    def jacobian(x: Any, *contexts: Any) -> Any:
        return value_and_jacobian(x, *contexts)[1]

    info = {"mode": "forward" if forward else "reverse", "batch_size": size}
    return Kernels(compile(jacobian, x), compile(value_and_jacobian, x), info)


def _batched_hessian(f: Any, size: int, compile: Callable[..., Any], x: Any) -> Kernels:
    """The Hessian's columns as products of the linearised gradient, `size` at a time."""

    def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
        (y, g), linear = jax.linearize(lambda x: jax.value_and_grad(f)(x, *contexts), x)
        columns = jax.lax.map(lambda i: linear(_unit(i, x))[1], jnp.arange(x.size), batch_size=size)
        return y, g, jnp.reshape(columns.reshape(x.size, x.size).T, (*x.shape, *x.shape))

    def hessian(x: Any, *contexts: Any) -> Any:
        return value_gradient_and_hessian(x, *contexts)[2]

    info = {"strategy": "forward-over-reverse", "route": "jax.lax.map", "batch_size": size}
    return Kernels(compile(hessian, x), compile(value_gradient_and_hessian, x), info)
