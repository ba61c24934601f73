"""TensorFlow: `GradientTape` (reverse) and `ForwardAccumulator` (forward), run as traced graphs.

Measured on CPU (float64, one thread; n = 10 and 1 000; `benchmarks/overhead_tensorflow_autograd.py`):
- a gradient called through a traced `ConcreteFunction` takes ≈ 40-55 µs, through the
  `tf.function` dispatcher ≈ 90 µs more, and eagerly ≈ 230-300 µs. So with `function=True` every
  kernel is traced (without AutoGraph) on its first call, for that call's input signature, and
  then called through its concrete function. The graph wins from the smallest function on:
  there is no size below which eager execution is faster.
- In a graph, forward mode costs what reverse mode costs (≈ 45-50 µs for a JVP or a VJP at
  n = 10, the same as the double-backward trick); eagerly `ForwardAccumulator` takes ≈ 1.1 ms.
- Batches of tangents and dense Jacobians are vectorised with `tf.vectorized_map` (pfor) inside
  graphs; eagerly they are looped (pfor would trace a new graph on every eager call). A square
  Jacobian at n = 1 000 takes 1.2 ms by forward pfor and 5.8 ms by `tape.jacobian` (reverse
  pfor), so Jacobians follow the usual rule: columns when there are no more inputs than outputs.
- Hessians: `tape.jacobian` of the gradient (reverse over reverse) runs as fast as forward over
  reverse vectorised, and traces 3-4 times faster.

TensorFlow tensors have no array-API namespace; `TensorFlowNamespace` (`namespace.py`) is the one
`ad.namespace` returns for them, eagerly, in graphs and under tapes alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tensorflow.python.framework import func_graph  # to count a graph's operations as it is traced

from anydiff.extend import (
    DERIVATIVE,
    GRADIENT,
    HESSIAN,
    HVP,
    JACOBIAN,
    PULLBACK,
    PUSHFORWARD,
    SECOND_DERIVATIVE,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    OutputSpec,
    array_kind,
    basis,
    flat_size,
    use_forward,
)

from . import AutoTensorFlow
from .namespace import tensorflow_namespace

__all__ = ["TensorFlowImpl"]

_ZERO = tf.UnconnectedGradients.ZERO


# -- graphs ----------------------------------------------------------------------------------


class _Graph:
    """`fn` run as a TensorFlow graph, called through the concrete function of its signature.

    Traced on the first call, for the shapes and dtypes of that call's tensors (and the values
    of its Python arguments); a call with another signature (a context of another shape, say)
    traces again. Calling the concrete function directly skips `tf.function`'s dispatcher, which
    costs ≈ 90 µs per call.

    `tensors`: how many arguments a native kernel's caller passes, all of them tensors whose
    shapes and dtypes the prep's signature check has compared with those of the traced call
    (`x` and the tangents; contexts come after them). Such a call skips the concrete function's
    own binding and check of its arguments, and enters it by its flat list of tensors: that
    binding took 22 µs of a 41 µs gradient at n = 10 (measured). Other calls, with contexts or
    from the generic routes (whose tangents come as one tuple), take the checked entry.
    """

    __slots__ = ("function", "concrete", "tensors", "flat", "captured")

    def __init__(self, fn: Callable[..., Any], tensors: int = 0) -> None:
        # Without AutoGraph: tracing takes half the time, and Python branches on tensor values
        # fail as they do under JAX (with an explanation, see `translate_error`).
        self.function = tf.function(fn, autograph=False)
        self.concrete: Any = None
        self.tensors = tensors
        self.flat: Any = None
        self.captured: list = []

    def __call__(self, *args: Any) -> Any:
        flat = self.flat
        if flat is not None and len(args) == self.tensors:
            return flat(list(args), self.captured)
        concrete = self.concrete
        if concrete is not None:
            try:
                return concrete(*args)
            except TypeError as exc:
                if "Binding inputs" not in str(exc):
                    raise
        concrete = self.concrete = self.function.get_concrete_function(*args)
        # The flat entry takes the tensors the graph captured (`f`'s constants) after the
        # arguments; they are fixed unless a capture is read at call time (deferred).
        flat = getattr(concrete, "_call_flat", None)
        if len(args) == self.tensors and flat is not None and not concrete.graph.deferred_external_captures:
            self.flat, self.captured = flat, concrete.captured_inputs
        return concrete(*args)


class _TangentGraphs:
    """A kernel `fn(x, tangents, *contexts)` as graphs taking each tangent as an argument of its own.

    A concrete function binds a tuple argument ≈ 3 µs slower than as many tensors (measured at
    n = 10, where a whole pushforward takes ≈ 47 µs), and returns a nested result ≈ 1 µs slower
    than a flat one: the graphs return the products (after the value, for the `with_value` form
    `(value, products)`) as one flat tuple, or the single product alone, and the call nests them
    again. One graph per number of tangents.
    """

    __slots__ = ("fn", "graphs", "with_value")

    def __init__(self, fn: Callable[..., Any], with_value: bool) -> None:
        self.fn, self.with_value = fn, with_value
        self.graphs: dict[int, _Graph] = {}

    def __call__(self, x: Any, tangents: tuple, *contexts: Any) -> Any:
        k = len(tangents)
        graph = self.graphs.get(k)
        if graph is None:
            graph = self.graphs[k] = _Graph(self.unpacking(k), 1 + k)
        flat = graph.flat  # entered here rather than through `graph`: one Python frame less
        if flat is not None and not contexts:
            r = flat([x, *tangents], graph.captured)
        else:
            r = graph(x, *tangents, *contexts)
        if self.with_value:
            return r[0], tuple(r[1:])
        return (r,) if k == 1 else tuple(r)

    def unpacking(self, k: int) -> Callable[..., Any]:
        fn, with_value = self.fn, self.with_value

        def unpacked(x: Any, *rest: Any) -> Any:
            r = fn(x, rest[:k], *rest[k:])
            if with_value:
                return (r[0], *r[1])
            return r[0] if k == 1 else tuple(r)

        return unpacked


class _PastLimit(Exception):
    """Raised by `_CountingGraph` when the graph passes its limit: the trace stops there."""


class _CountingGraph(func_graph.FuncGraph):
    """A function graph that counts the operations created in it, and stops past `limit`.

    Tracing costs about 0.5 ms per operation: a whole unrolled loop of 20 000 operations takes
    seconds to trace only to be counted, so the count stops as soon as it passes the limit.
    """

    def __init__(self, limit: int) -> None:
        super().__init__("anydiff_program_size")
        self.limit, self.created = limit, 0

    def _create_op_internal(self, *args: Any, **kwargs: Any) -> Any:
        self.created += 1
        if self.created > self.limit:
            raise _PastLimit
        return super()._create_op_internal(*args, **kwargs)


# -- differentiation -----------------------------------------------------------------------------


def _record(f: Callable[..., Any], x: Any, contexts: tuple, persistent: bool = False) -> tuple[Any, Any]:
    """`(tape, f(x))` with the computation of `f(x)` recorded for reverse mode."""
    with tf.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        y = f(x, *contexts)
    return tape, y


def _push(f: Callable[..., Any], x: Any, tangent: Any, contexts: tuple) -> tuple[Any, Any]:
    """`(f(x), J @ tangent)` by forward mode."""
    with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
        y = f(x, *contexts)
    return y, accumulator.jvp(y, unconnected_gradients=_ZERO)


def _batched(one: Callable[[Any], Any], stacked: Any) -> Any:
    """`one` applied along the leading axis of `stacked`: vectorised in a graph, looped eagerly.

    Up to three slices are looped in a graph too: as fast to run as `tf.vectorized_map`, and
    2-4 times faster to trace (measured); pfor would trace a new graph on every eager call.
    """
    if stacked.shape[0] == 1:
        return one(stacked[0])[None]
    if stacked.shape[0] <= 3 or tf.executing_eagerly():
        return tf.stack([one(s) for s in tf.unstack(stacked)])
    return tf.vectorized_map(one, stacked)


def _jvp(f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
    if tangents.shape[0] == 1:
        y, ty = _push(f, x, tangents[0], contexts)
        return y, ty[None]
    return f(x, *contexts), _batched(lambda t: _push(f, x, t, contexts)[1], tangents)


def _pushforwards(f: Callable[..., Any], x: Any, tangents: tuple, contexts: tuple) -> tuple[Any, tuple]:
    """`(f(x), (J @ t for t in tangents))`; one tangent without stacking it."""
    if len(tangents) == 1:
        y, ty = _push(f, x, tangents[0], contexts)
        return y, (ty,)
    y, ty = _jvp(f, x, tf.stack(tangents), contexts)
    return y, tuple(tf.unstack(ty))


def _jacobian(f: Callable[..., Any], x: Any, contexts: tuple, forward: bool, vectorise: bool) -> tuple[Any, Any]:
    """`(f(x), J)` with `J` shaped `y.shape + x.shape`: columns by forward mode, or rows."""
    if forward:
        n = flat_size(tuple(x.shape))
        y, columns = _jvp(f, x, basis(tensorflow_namespace, x), contexts)
        jac = tf.transpose(tf.reshape(columns, (n, -1)))
        return y, tf.reshape(jac, (*y.shape, *x.shape))
    # Without pfor (eagerly), `tape.jacobian` loops over rows, which needs a persistent tape.
    tape, y = _record(f, x, contexts, persistent=not vectorise)
    return y, tape.jacobian(y, x, unconnected_gradients=_ZERO, experimental_use_pfor=vectorise)


class TensorFlowImpl(BackendImpl):
    kind = array_kind(tf.zeros(()))

    def __init__(self, backend: AutoTensorFlow) -> None:
        super().__init__(backend)
        self.graphs = backend.function

    # -- composable primitives ------------------------------------------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        return _jvp(f, x, tangents, contexts)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        tape, y = _record(f, x, contexts, persistent=True)

        def pullback(cotangents: Any) -> Any:
            return _batched(lambda u: tape.gradient(y, x, output_gradients=u, unconnected_gradients=_ZERO), cotangents)

        return y, pullback

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        if not self.reverse:
            return super().gradient_function(f)

        def gradient(x: Any, *contexts: Any) -> Any:
            tape, y = _record(f, x, contexts)
            return tape.gradient(y, x, unconnected_gradients=_ZERO)

        return gradient

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        return _Graph(fn) if self.graphs else fn

    program_unit = "graph operations"

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        if not self.graphs:
            return None  # nothing is traced into a graph
        graph = _CountingGraph(limit)
        try:
            func_graph.func_graph_from_py_func("program_size", lambda x: f(x, *contexts), (x,), {}, func_graph=graph)
        except _PastLimit:
            pass
        except Exception:  # `f` fails to trace: the derivative's preparation says why
            return None
        return graph.created

    def eager(self) -> BackendImpl | None:
        return TensorFlowImpl(dataclasses.replace(self.backend, function=False))  # type: ignore[arg-type, type-var]

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        y = f(x, *contexts)
        if not isinstance(y, tf.Tensor):
            raise FunctionNotDifferentiableError(
                f"AutoTensorFlow: `f` must return a TensorFlow tensor; it returned {type(y).__name__}. "
                "Under `ad.AutoTensorFlow()`, `f` receives TensorFlow tensors: write it with "
                "`xp = ad.namespace(x)` and `xp.` functions instead of `numpy.` calls."
            )
        return OutputSpec(tuple(y.shape), y.dtype)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc)
        escaped = (
            (isinstance(exc, NotImplementedError) and "symbolic" in message)  # NumPy on a graph tensor
            or (isinstance(exc, AttributeError) and "numpy" in message)  # `.numpy()`
            or (isinstance(exc, TypeError) and "SymbolicTensor" in message)  # `float(...)`
            or isinstance(exc, tf.errors.OperatorNotAllowedInGraphError)  # `if tensor:`
        )
        if escaped:
            return FunctionNotDifferentiableError(
                f"{operator}: `f` took a value out of a TensorFlow tensor being traced "
                f"({_last_line(message)}). Under `ad.AutoTensorFlow()`, `f` receives tensors of a "
                "TensorFlow graph: write it with `xp = ad.namespace(x)` and `xp.` functions instead "
                "of `numpy.` calls, `.numpy()` or `float(...)`, and replace Python branches on array "
                "values by `xp.where` (or pass `function=False` to run `f` eagerly)."
            )
        if "MatMul" in message and ("ndims" in message or "rank" in message):
            return FunctionNotDifferentiableError(
                f"{operator}: TensorFlow's `@` multiplies matrices only ({_last_line(message)}). "
                "Write `xp.matmul(A, v)` (with `xp = ad.namespace(x)`), which also takes vectors."
            )
        if isinstance(exc, tf.errors.InvalidArgumentError) and "was expected to be a" in message:
            return FunctionNotDifferentiableError(
                f"{operator}: `f` combined tensors of different dtypes ({_last_line(message)}); "
                "TensorFlow's operators never promote. Create constants with the dtype of `x` "
                "(`xp.asarray(c, dtype=x.dtype)`), or use the functions of `xp = ad.namespace(x)`, "
                "which promote as NumPy does."
            )
        return None

    # -- native routes (each written once, as its value form) -----------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.reverse:
            return GRADIENT.generic(self, f, x, None, contexts, spec)

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            tape, y = _record(f, x, contexts)
            return y, tape.gradient(y, x, unconnected_gradients=_ZERO)

        return self._kernels(value_and_gradient, x, {"mode": "reverse", "route": "GradientTape"})

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.reverse:
            return PULLBACK.generic(self, f, x, cotangents, contexts, spec)

        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            if len(cotangents) > 1:
                y, pull = self.vjp(f, x, contexts)
                return y, tuple(tf.unstack(pull(tf.stack(cotangents))))
            tape, y = _record(f, x, contexts)
            return y, (tape.gradient(y, x, output_gradients=cotangents[0], unconnected_gradients=_ZERO),)

        return self._kernels(value_and_pullback, x, {"mode": "reverse", "route": "GradientTape"}, tangents=True)

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.forward:
            return PUSHFORWARD.generic(self, f, x, tangents, contexts, spec)

        def value_and_pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            return _pushforwards(f, x, tangents, contexts)

        info = {"mode": "forward", "route": "ForwardAccumulator"}
        return self._kernels(value_and_pushforward, x, info, tangents=True)

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.forward:
            return DERIVATIVE.generic(self, f, x, None, contexts, spec)

        def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return _push(f, x, tf.ones_like(x), contexts)

        return self._kernels(value_and_derivative, x, {"mode": "forward", "route": "ForwardAccumulator"})

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        forward = use_forward(self, flat_size(tuple(x.shape)), flat_size(spec.shape))

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return _jacobian(f, x, contexts, forward, self.graphs)

        route = "ForwardAccumulator" if forward else "tape.jacobian"
        return self._kernels(value_and_jacobian, x, {"mode": "forward" if forward else "reverse", "route": route})

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.forward:
            return SECOND_DERIVATIVE.generic(self, f, x, None, contexts, spec)

        def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            one = tf.ones_like(x)
            with tf.autodiff.ForwardAccumulator(x, one) as outer:
                y, dy = _push(f, x, one, contexts)
            return y, dy, outer.jvp(dy, unconnected_gradients=_ZERO)

        info = {"strategy": "forward-over-forward", "route": "nested ForwardAccumulators"}
        return self._kernels(value_derivative_and_second_derivative, x, info)

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not (self.forward and self.reverse):
            return HVP.generic(self, f, x, tangents, contexts, spec)
        gradient = self.gradient_function(f)

        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            return _pushforwards(gradient, x, tangents, contexts)

        info = {"strategy": "forward-over-reverse", "route": "ForwardAccumulator over GradientTape"}
        return self._kernels(gradient_and_hvp, x, info, tangents=True)

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        # Reverse over reverse (`tape.jacobian` of the gradient) runs as fast as forward over
        # reverse vectorised with `tf.vectorized_map`, and traces 3-4 times faster (measured).
        if not self.reverse:
            return HESSIAN.generic(self, f, x, None, contexts, spec)

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            with tf.GradientTape(persistent=not self.graphs) as outer:
                outer.watch(x)
                inner, y = _record(f, x, contexts)
                g = inner.gradient(y, x, unconnected_gradients=_ZERO)
            return y, g, outer.jacobian(g, x, unconnected_gradients=_ZERO, experimental_use_pfor=self.graphs)

        info = {"strategy": "reverse-over-reverse", "route": "tape.jacobian of GradientTape"}
        return self._kernels(value_gradient_and_hessian, x, info)

    def _kernels(self, with_value: Callable[..., Any], x: Any, info: dict[str, Any], tangents: bool = False) -> Kernels:
        """Both kernels from the value form; the plain one returns its last output only.

        Each is traced on its own first call: a prep used in one form traces one graph, and the
        plain graph, without the value among its outputs, is ≈ 1 µs faster per call.
        """

        def plain(*args: Any) -> Any:
            return with_value(*args)[-1]

        info["route"] += " in tf.function" if self.graphs else ", eager"
        if not self.graphs:
            return Kernels(plain, with_value, info)
        if tangents:
            return Kernels(_TangentGraphs(plain, False), _TangentGraphs(with_value, True), info)
        return Kernels(_Graph(plain, 1), _Graph(with_value, 1), info)

    native = {
        GRADIENT: native_gradient,
        PULLBACK: native_pullback,
        PUSHFORWARD: native_pushforward,
        DERIVATIVE: native_derivative,
        JACOBIAN: native_jacobian,
        SECOND_DERIVATIVE: native_second_derivative,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }


def _last_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[-1] if lines else message
