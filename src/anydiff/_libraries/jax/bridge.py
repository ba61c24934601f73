"""JAX programs calling a `DifferentiateWith` function: one JAX primitive and its rules.

`jax.pure_callback` has no derivatives, and the usual fix, a `custom_jvp` or `custom_vjp` around
it, gives either forward or reverse mode but not both, nor second order: JAX cannot transpose a
callback (jax#30401), nor a `custom_vjp` call made inside a `custom_jvp` rule, and
`custom_derivatives.linear_call` cannot be differentiated in its residuals (jax#16650).
So the bridge is a primitive of its own, whose JVP, transpose and batching rules bind the
primitive again on derived nodes (`nodes.py`): every composition of `jvp`, `vjp`, `grad`,
`jacfwd`, `jacrev`, `hessian`, `vmap` and `jit` works. Called on values the primitive runs the
substitute at once the first time, and as a compiled program of itself from then on (`call`);
under `jit` it lowers to a host callback (XLA's custom call into Python, as
`jax.pure_callback` does, without the copy of every argument into a JAX array that
`pure_callback` makes), and the substitute's preps are built while lowering, so that an `f` the
substitute cannot run fails there with a clear error.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from anydiff.bridge.nodes import Aval, Node, cotangents, evaluate, numpy_dtype, tangent
from anydiff.extend import array_kind, array_kinds, converter

from . import AutoJAX

__all__ = ["asarray", "call", "owns", "split_pullback", "transparent"]

# By name: this module may first be imported inside a `jit` trace, where `jnp.zeros(())` is a tracer.
_NUMPY, _JAX = array_kinds()["numpy"], array_kinds()["jax"]

#: the substitute that needs no bridge from JAX
transparent = AutoJAX

bridge_p = Primitive("anydiff_differentiate_with")
_compiled = jax.jit(lambda *args, node: bridge_p.bind(*args, node=node), static_argnames="node")
#: the shapes and dtypes of the arguments each node was called with on values (not traced)
_called: weakref.WeakKeyDictionary[Node, set[tuple]] = weakref.WeakKeyDictionary()


def owns(x: Any) -> bool:
    """Whether `x` is a JAX array, tracers included."""
    return isinstance(x, jax.Array)


def asarray(a: Any) -> Any:
    """A context array as the primitive takes it (JAX or NumPy as they are)."""
    kind = array_kind(a)
    return a if kind is None or kind is _JAX or kind is _NUMPY else converter(kind, _NUMPY)(a)  # type: ignore[misc]


def call(node: Node, args: tuple) -> Any:
    if jax.config.jax_disable_jit or not all(map(_value, args)):  # type: ignore[attr-defined]
        return bridge_p.bind(*args, node=node)
    # Called on values, the primitive runs as a compiled program of itself, whose host callback
    # hands the result over in a buffer XLA made: binding it eagerly costs ~40 µs more (JAX's
    # dispatch and `jnp.asarray` of the NumPy result). The first call with these shapes runs
    # eagerly all the same, so that compiling needs no evaluation of `f` at zeros for the shape.
    signature = tuple((a.shape, a.dtype) for a in args)
    seen = _called.get(node)
    if seen is not None and signature in seen:
        with jax.enable_x64(True):  # float64 arguments stay float64 (each dtype is kept)
            return _compiled(*args, node=node)
    y = bridge_p.bind(*args, node=node)
    _called.setdefault(node, set()).add(signature)
    return y


def split_pullback(f: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """For JAX as the substitute: `(forward, backward)`, the pullback of `f` split at a caller's
    tape (`Base.taped`): `forward(x, *contexts) -> (f(x, *contexts), residuals)` and
    `backward(u, residuals)`, the cotangent of `x`. `jax.vjp`'s pullback is a pytree of its
    residuals, which compiled functions return and take."""

    def forward(x: Any, *contexts: Any) -> Any:
        return jax.vjp(lambda x: f(x, *contexts), x)

    def backward(u: Any, pullback: Any) -> Any:
        return pullback(u)[0]

    return forward, backward


def _value(a: Any) -> bool:
    """Whether `a` is an array with a value: NumPy's, or JAX's but not a tracer."""
    return isinstance(a, np.ndarray) or (isinstance(a, jax.Array) and not isinstance(a, jax.core.Tracer))


class _Ops:
    call = staticmethod(call)

    @staticmethod
    def vmap(fn: Callable[..., Any], in_axes: tuple) -> Callable[..., Any]:
        return jax.vmap(fn, in_axes=in_axes)

    @staticmethod
    def sum0(a: Any) -> Any:
        return jnp.sum(a, axis=0)


def _aval(a: Any) -> Aval:
    return tuple(a.shape), numpy_dtype(a.dtype)


def _host(node: Node, *args: Any) -> np.ndarray:
    # `np.asarray` views JAX's CPU buffers without a copy; NumPy is also the cheapest way back
    # (measured: a DLPack import into JAX costs ~45 µs, `jnp.asarray` of a NumPy array ~15 µs).
    return np.asarray(evaluate(node, tuple(np.asarray(a) for a in args), _NUMPY))


def _eager(*args: Any, node: Node) -> Any:
    return _JAX.from_numpy(_host(node, *args))


def _abstract(*avals: Any, node: Node) -> jax.core.ShapedArray:
    shape, dtype = node.spec(tuple(map(_aval, avals)))
    return jax.core.ShapedArray(shape, dtype)


def _lowering(ctx: Any, *args: Any, node: Node) -> Any:
    if tuple((a.shape, a.dtype) for a in ctx.avals_in) not in _called.get(node, ()):
        node.prepare(tuple(map(_aval, ctx.avals_in)))  # (a node called on values is prepared)

    wide = any(np.dtype(a.dtype).itemsize == 8 for a in ctx.avals_out)

    def host(*arrays: np.ndarray) -> tuple[np.ndarray]:
        if wide:
            _x64_in_this_thread()
        return (_host(node, *arrays),)

    # XLA's host callback itself (~6 µs), which hands NumPy arrays over as they are;
    # `jax.pure_callback` adds ~75 µs on top of it (it copies every argument into a JAX array).
    results, _, _ = mlir.emit_python_callback(
        ctx, host, None, list(args), ctx.avals_in, ctx.avals_out, has_side_effect=False, returns_token=False
    )
    return results


_THREAD = threading.local()


def _x64_in_this_thread() -> None:
    """Keep float64 results float64 in a thread of XLA's that runs host callbacks.

    JAX checks a callback's results after it returns, casting them to the types of the thread's
    configuration: a float64 program (x64 enabled by a context manager in the calling thread, as
    anydiff does) whose callback XLA runs on another thread got float32 results there, and failed
    with "Incorrect output dtype". x64 is enabled for good in such a thread, once.
    """
    if not getattr(_THREAD, "x64", False) and not jax.enable_x64.value:
        jax.enable_x64(True).__enter__()
    _THREAD.x64 = True


def _jvp(primals: tuple, tangents: tuple, *, node: Node) -> tuple[Any, Any]:
    y = call(node, primals)
    ty = tangent(_Ops, node, primals, tuple(None if type(t) is ad.Zero else t for t in tangents))
    return y, (ad.Zero(jax.typeof(y).to_tangent_aval()) if ty is None else ty)


def _transpose(ct: Any, *args: Any, node: Node) -> list:
    undefined = tuple(ad.is_undefined_primal(a) for a in args)
    if type(ct) is ad.Zero:
        return [None] * len(args)
    avals = tuple(_aval(a.aval if u else a) for a, u in zip(args, undefined, strict=True))
    values = tuple(None if u else a for a, u in zip(args, undefined, strict=True))
    return cotangents(_Ops, node, values, ct, undefined, avals)


def _batch(args: tuple, dims: tuple, *, node: Node) -> tuple[Any, int]:
    moved = tuple(a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(args, dims, strict=True))
    return call(node.vmap(tuple(None if d is None else 0 for d in dims)), moved), 0


bridge_p.def_impl(_eager)
bridge_p.def_abstract_eval(_abstract)
ad.primitive_jvps[bridge_p] = _jvp
ad.primitive_transposes[bridge_p] = _transpose
batching.primitive_batchers[bridge_p] = _batch
mlir.register_lowering(bridge_p, _lowering)
