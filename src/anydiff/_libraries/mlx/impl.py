"""MLX: `mx.jvp` / `mx.vjp` as primitives, `mx.vmap` over tangents, `mx.compile` at prepare time.

MLX has no Jacobian or Hessian of its own (mlx#164): they are one batched (`mx.vmap`) pushforward
or pullback of a basis, compiled with the rest of the kernel (Hessians from the generic
second-order routes, reverse over reverse where MLX lacks a JVP).

Precision on the CPU: float64 arrays stay float64, and arithmetic, `log`, `tan`, `tanh`, `sqrt`,
`power`, `matmul` and `linalg` are exact to float64 rounding; but MLX evaluates `exp`, `sin`, `cos`,
`erf` and `erfinv` of float64 arrays in float32 arithmetic (mlx#3047). Their relative error is
about 1e-7, so are the derivatives of functions that use them, and float64 `exp` overflows above
88.7 like float32's. Operations MLX has no float64 version of raise inside MLX; an `f` whose result
comes back float32 for a float64 `x` (FFTs, constants made with a bare `mx.array(...)`) raises
`UnsupportedError` at prepare time rather than losing precision silently.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from typing import Any

import mlx.core as mx

from anydiff.extend import (
    DERIVATIVE,
    GRADIENT,
    HESSIAN,
    HVP,
    JACOBIAN,
    PULLBACK,
    PUSHFORWARD,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    Operator,
    OutputSpec,
    UnsupportedError,
    array_kind,
    flat_size,
    numpy_operand_error,
    raised_by_operator,
    use_forward,
)

from . import AutoMLX

__all__ = ["MLXImpl"]

# In MLX's error for a function called with an argument it does not take: a NumPy array.
_NUMPY_ARGUMENT = "Invoked with types: ndarray"


class MLXImpl(BackendImpl):
    kind = array_kind(mx.zeros(()))
    mutation = True  # item assignment on MLX arrays is recorded and differentiable
    thread_bound = True  # MLX aborts the process when arrays made on XLA's callback threads are freed

    def __init__(self, backend: AutoMLX) -> None:
        super().__init__(backend)
        self.compiled = backend.compile

    # -- composable primitives ------------------------------------------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        if tangents.shape[0] == 1:
            (y,), (ty,) = mx.jvp(g, [x], [tangents[0]])
            return y, ty[None]
        # `mx.vmap` cannot return an unbatched output, so `y` is built apart; `mx.compile`
        # merges the two forward passes into one.
        return g(x), mx.vmap(lambda t: mx.jvp(g, [x], [t])[1][0])(tangents)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        def pullback(cotangents: Any) -> Any:
            if cotangents.shape[0] == 1:
                return mx.vjp(g, [x], [cotangents[0]])[1][0][None]
            return mx.vmap(lambda u: mx.vjp(g, [x], [u])[1][0])(cotangents)

        return g(x), pullback

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        return mx.compile(fn) if self.compiled else fn

    program_unit = "graph primitives"

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        if not self.compiled:
            return None
        try:
            y = f(x, *contexts)  # lazy: builds the graph, computes nothing
            dot = io.StringIO()
            mx.export_to_dot(dot, y)  # one `[label =` per primitive
        except Exception:  # `f` fails: the derivative's preparation says why
            return None
        return dot.getvalue().count("[label =")

    def eager(self) -> BackendImpl | None:
        return MLXImpl(dataclasses.replace(self.backend, compile=False))  # type: ignore[arg-type, type-var]

    # -- evaluation helpers ---------------------------------------------------------------------

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        y = f(x, *contexts)  # lazy: builds the graph, computes nothing
        if not isinstance(y, mx.array):
            raise TypeError(f"AutoMLX: `f` must return an MLX array; it returned {type(y).__name__}.")
        if x.dtype == mx.float64 and y.dtype == mx.float32:
            raise UnsupportedError(
                "AutoMLX: `x` is float64 but `f` returned float32: an operation in `f` has no "
                "float64 version in MLX (FFTs, for instance), or `f` made a constant with a bare "
                "`mx.array(...)`, which defaults to float32. Make constants with "
                "`xp.asarray(c, dtype=x.dtype)`, or pass a float32 `x` to compute in float32."
            )
        return OutputSpec(tuple(y.shape), y.dtype)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc)
        if isinstance(exc, ValueError) and message.startswith("[eval]") and raised_by_operator(exc, "mlx"):
            return numpy_operand_error(operator, "MLX", message)  # `data - x`: NumPy takes `x` apart
        if isinstance(exc, TypeError) and _NUMPY_ARGUMENT in message:
            return numpy_operand_error(
                operator,
                "MLX",
                f"{message.splitlines()[0].split('(')[0]}() received a NumPy array: NumPy computes an operator "
                "whose first operand is a NumPy array (`data - x`), and `numpy.` functions of `x`, "
                "as NumPy arrays",
            )
        if isinstance(exc, ValueError) and message.startswith("[eval]"):
            return FunctionNotDifferentiableError(
                f"{operator}: `f` asked for the value of an MLX array while it was being "
                f"transformed ({message}). Under `ad.AutoMLX()`, write `f` with "
                "`xp = ad.namespace(x)` and `xp.` functions instead of `numpy.` calls, `.item()` "
                "or `float(...)`, and replace Python branches on array values by `xp.where`; "
                "`ad.AutoMLX(compile=False)` allows branches outside `vmap`-batched operators."
            )
        if isinstance(exc, ValueError) and ("Not implemented for" in message or "Cannot calculate VJP" in message):
            return FunctionNotDifferentiableError(
                f"{operator}: MLX has no derivative for an operation `f` uses ({message.strip()}). "
                "Use another backend for `f` (`ad.AutoJAX()`, `ad.AutoTorch()`), or write it with "
                "operations MLX differentiates."
            )
        if isinstance(exc, ValueError) and message.startswith("[compile] Function arguments"):
            return UnsupportedError(
                f"{operator}: `mx.compile` takes only arrays, numbers, strings and None (in "
                f"tuples, lists and dicts) as arguments ({message}). Wrap such contexts "
                "differently, or use `ad.AutoMLX(compile=False)`."
            )
        return None

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        return mx.grad(f) if self.reverse else super().gradient_function(f)

    # -- native routes --------------------------------------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.reverse:
            return GRADIENT.generic(self, f, x, None, contexts, spec)
        return Kernels(
            self.compile(mx.grad(f), x),
            self.compile(mx.value_and_grad(f), x),
            {"mode": "reverse"},
        )

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.forward:
            return PUSHFORWARD.generic(self, f, x, tangents, contexts, spec)
        return self._kernels(_per_seed(mx.jvp, f), x, "forward")

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.reverse:
            return PULLBACK.generic(self, f, x, cotangents, contexts, spec)
        return self._kernels(_per_seed(mx.vjp, f), x, "reverse")

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.forward:
            return DERIVATIVE.generic(self, f, x, None, contexts, spec)
        value_and_products = _per_seed(mx.jvp, f)

        def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, (dy,) = value_and_products(x, (mx.array(1.0, dtype=x.dtype),), *contexts)
            return y, dy

        return self._kernels(value_and_derivative, x, "forward")

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        n, m = flat_size(tuple(x.shape)), flat_size(spec.shape)
        forward = use_forward(self, n, m)
        # The generic route builds the basis inside the kernel; MLX folds no constants, and
        # that identity costs more than the Jacobian itself (5 ms against 1.2 ms at n = 1 000).
        seeds = mx.eye(n if forward else m, dtype=x.dtype).reshape(-1, *(x.shape if forward else spec.shape))
        mx.eval(seeds)

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            if forward:
                y, columns = self.jvp(f, x, seeds, contexts)
                jac = mx.matrix_transpose(columns.reshape(n, m))
            else:
                y, pullback = self.vjp(f, x, contexts)
                jac = pullback(seeds)
            return y, jac.reshape((*y.shape, *x.shape))

        return self._kernels(value_and_jacobian, x, "forward" if forward else "reverse")

    def _kernels(self, value_form: Callable[..., tuple[Any, Any]], x: Any, mode: str) -> Kernels:
        """An operator's compiled kernels from its value form, `(f(x), result)`."""

        def plain(*args: Any) -> Any:
            return value_form(*args)[1]

        return Kernels(self.compile(plain, x), self.compile(value_form, x), {"mode": mode})

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        return self._traceable(HVP, f, x, tangents, contexts, spec)

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        return self._traceable(HESSIAN, f, x, None, contexts, spec)

    def _traceable(
        self, operator: Operator, f: Any, x: Any, tangents: tuple | None, contexts: tuple, spec: OutputSpec
    ) -> Kernels:
        """The generic second-order kernels, or those of reverse over reverse where MLX needs it.

        Forward over reverse needs a JVP for every primitive of the reverse pass, and MLX has
        none for some: indexing `x[0]` pulls back through `scatter` (mlx#1771). Reverse over
        reverse needs VJPs only. The trial traces the kernel once, lazily (nothing is computed),
        and `mx.compile` keeps the trace for the first call.
        """
        kernels = operator.generic(self, f, x, tangents, contexts, spec)
        if not (self.forward and self.reverse):
            return kernels
        try:
            kernels.plain(x, *(() if tangents is None else (tangents,)), *contexts)
        except Exception as exc:  # any other error is raised, translated, by the first call
            if "JVP not yet implemented" in str(exc):
                reverse = MLXImpl(AutoMLX(mode="reverse", compile=self.compiled))
                return operator.generic(reverse, f, x, tangents, contexts, spec)
        return kernels

    native = {
        GRADIENT: native_gradient,
        PUSHFORWARD: native_pushforward,
        PULLBACK: native_pullback,
        DERIVATIVE: native_derivative,
        JACOBIAN: native_jacobian,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }


def _per_seed(transform: Callable[..., Any], f: Any) -> Callable[..., tuple[Any, tuple]]:
    """`value_and_products(x, seeds, *contexts) -> (f(x), results)`, one `transform` per seed.

    `transform` is `mx.jvp` or `mx.vjp`. The generic routes stack the seeds for the batched
    primitive and unstack the results: in a compiled kernel each such array operation costs about
    15 µs on the CPU, twice a whole JVP at n = 10, where `mx.compile` merges the forward passes
    the seeds share.
    """

    def value_and_products(x: Any, seeds: tuple, *contexts: Any) -> tuple[Any, tuple]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        results = [transform(g, [x], [s]) for s in seeds]
        return results[0][0][0], tuple(r[1][0] for r in results)

    return value_and_products
