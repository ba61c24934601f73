"""HIPS autograd: `make_vjp` (reverse) and `make_jvp` (forward) on NumPy arrays.

autograd records its tape anew on every call and runs one Python function per operation and
direction, so its costs are per call and there is nothing to compile. Measured on CPU (float64,
`g(x) = sin(x) * cumsum(x)`; `benchmarks/overhead_tensorflow_autograd.py`):
- one recorded forward pass serves every row of a Jacobian: `make_vjp` once, then one backward
  pass per row, takes 0.49 / 4.3 / 73 ms at n = 10 / 100 / 1 000, less than `autograd.jacobian`
  (0.55 / 5.2 / 99 ms);
- a column by `make_jvp` re-runs the forward pass, and costs 1.3-2.4 times a row (0.66 / 6.5 /
  172 ms for the whole Jacobian): Jacobians take columns only when there are fewer than half as
  many inputs as outputs.

autograd computes on NumPy arrays, so NumPy inputs pass through unconverted. `f` receives
autograd's `ArrayBox`es; `ad.namespace(box)` returns `AutogradNamespace`, the array API over
`autograd.numpy` with derivatives for the functions autograd's own array-API names lack.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

import autograd
import autograd.core
import autograd.numpy as anp
import numpy as np
from autograd.numpy.numpy_boxes import ArrayBox

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
    flat_size,
)

from . import namespace as _namespace  # noqa: F401  (registers `ad.namespace` of autograd's boxes)

__all__ = ["AutogradImpl"]

# -- differentiation -------------------------------------------------------------------------------

_second = itemgetter(1)  # the product of a `(value, product)` pair


def _each(pull: Callable[[Any], Any], cotangents: Any) -> Any:
    """`pull` of each cotangent of a tuple, or of one cotangent alone (`Kernels.single_tangent`)."""
    return tuple(map(pull, cotangents)) if type(cotangents) is tuple else pull(cotangents)


def _independent(f: Callable[..., Any], x: Any, contexts: tuple) -> bool:
    """Whether `f(x)` does not depend on `x` here: autograd then warns on every call.

    An error while tracing `f` counts as a dependence: the kernel will raise it again, explained.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            autograd.make_vjp(f)(x, *contexts)
        except Exception:
            return False
    return any("independent of input" in str(w.message) for w in caught)


def _vjp(f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Callable[[Any], Any], Any]:
    """`(pullback, f(x))`, what `autograd.make_vjp(f)(x, *contexts)` returns, without that
    wrapper for functions of several arguments: 3 µs of a 43 µs VJP at n = 10 (measured)."""
    return autograd.core.make_vjp((lambda v: f(v, *contexts)) if contexts else f, x)


def _jvp(f: Callable[..., Any], x: Any, contexts: tuple) -> Callable[[Any], tuple[Any, Any]]:
    """`t ↦ (f(x), J t)`, what `autograd.make_jvp(f)(x, *contexts)` returns; see `_vjp`."""
    return autograd.core.make_jvp((lambda v: f(v, *contexts)) if contexts else f, x)


def _quiet(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """`kernel` without autograd's warning that the output does not depend on the input."""

    def call(*args: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Output seems independent of input", UserWarning)
            return kernel(*args)

    return call


def _cast(kernel: Callable[..., Any], dtype: np.dtype) -> Callable[..., Any]:
    """`kernel` with every array it returns (in tuples too) cast to `dtype`."""

    def cast(result: Any) -> Any:
        return tuple(map(cast, result)) if isinstance(result, tuple) else np.asarray(result, dtype=dtype)

    def call(*args: Any) -> Any:
        return cast(kernel(*args))

    return call


def _stack(arrays: Sequence[Any]) -> np.ndarray:
    if any(map(isinstance, arrays, repeat(ArrayBox))):  # `map`: 1 000 rows tested in 25 µs, not 90
        # Inside an enclosing autograd trace (the outer part of a second-order pair), whose
        # boxes `np.stack` would turn into object arrays, cutting the trace: zero derivatives.
        return anp.stack(arrays)
    return np.stack(arrays)


class AutogradImpl(BackendImpl):
    kind = array_kind(np.zeros(()))

    # -- composable primitives ------------------------------------------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        push = _jvp(f, x, contexts)
        pairs = [push(t) for t in tangents]
        return pairs[0][0], _stack([ty for _, ty in pairs])

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        pull, y = _vjp(f, x, contexts)
        return y, lambda cotangents: _stack([pull(u) for u in cotangents])

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc).strip()
        if isinstance(exc, NotImplementedError) and ("VJP of" in message or "JVP of" in message):
            return FunctionNotDifferentiableError(
                f"{operator}: autograd has no derivative rule for a function `f` uses ({message}). "
                "Write `f` with `xp = ad.namespace(x)`, whose functions all have derivatives under "
                "`ad.AutoAutograd()`, or use another backend."
            )
        if "ArrayBox" in message or "setting an array element with a sequence" in message:
            return FunctionNotDifferentiableError(
                f"{operator}: `f` took a value out of an autograd `ArrayBox` being traced ({message}). "
                "Under `ad.AutoAutograd()`, `f` receives boxes: write it with `xp = ad.namespace(x)`, "
                "build arrays with `xp.stack` instead of writing into NumPy arrays, and avoid "
                "`float(...)` on values that depend on `x`."
            )
        return None

    # -- native routes -----------------------------------------------------------------------

    # The plain kernels are written out rather than taken from the value forms: at 25-60 µs a
    # call, one Python frame more is a percent of overhead.

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        seed = np.ones((), dtype=spec.dtype)

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            pull, y = _vjp(f, x, contexts)
            return y, pull(seed)

        def gradient(x: Any, *contexts: Any) -> Any:
            return _vjp(f, x, contexts)[0](seed)

        return self._kernels(gradient, value_and_gradient, {"mode": "reverse"}, f, x, contexts, spec)

    # The kernels with tangents take one tangent alone too (`Kernels.single_tangent`): the usual
    # call then builds no tuple and maps nothing.

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:

        def value_and_pullback(x: Any, cotangents: Any, *contexts: Any) -> tuple[Any, Any]:
            pull, y = _vjp(f, x, contexts)
            return y, _each(pull, cotangents)

        def pullback(x: Any, cotangents: Any, *contexts: Any) -> Any:
            return _each(_vjp(f, x, contexts)[0], cotangents)

        return self._kernels(pullback, value_and_pullback, {"mode": "reverse"}, f, x, contexts, spec, single=True)

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:

        # `map` and `itemgetter` rather than comprehensions, which are a Python frame each
        def value_and_pushforward(x: Any, tangents: Any, *contexts: Any) -> tuple[Any, Any]:
            if type(tangents) is not tuple:
                return _jvp(f, x, contexts)(tangents)
            pairs = tuple(map(_jvp(f, x, contexts), tangents))
            return pairs[0][0], tuple(map(_second, pairs))

        def pushforward(x: Any, tangents: Any, *contexts: Any) -> Any:
            if type(tangents) is not tuple:
                return _jvp(f, x, contexts)(tangents)[1]
            return tuple(map(_second, map(_jvp(f, x, contexts), tangents)))

        info = {"mode": "forward"}
        return self._kernels(pushforward, value_and_pushforward, info, f, x, contexts, spec, single=True)

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        seed = np.ones((), dtype=x.dtype)

        def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return _jvp(f, x, contexts)(seed)

        def derivative(x: Any, *contexts: Any) -> Any:
            return _jvp(f, x, contexts)(seed)[1]

        return self._kernels(derivative, value_and_derivative, {"mode": "forward"}, f, x, contexts, spec)

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        x_shape, y_shape = tuple(x.shape), spec.shape
        n, m = flat_size(x_shape), flat_size(y_shape)
        forward = 2 * n <= m
        if forward:
            seeds = np.eye(n, dtype=x.dtype).reshape(n, *x_shape)

            def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
                push = _jvp(f, x, contexts)
                pairs = [push(e) for e in seeds]
                columns = _stack([ty for _, ty in pairs]).reshape(n, m)
                return pairs[0][0], columns.T.reshape((*y_shape, *x_shape))

        else:
            seeds = np.eye(m, dtype=spec.dtype).reshape(m, *y_shape)

            def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
                pull, y = _vjp(f, x, contexts)
                return y, _stack([pull(u) for u in seeds]).reshape((*y_shape, *x_shape))

        def jacobian(x: Any, *contexts: Any) -> Any:
            return value_and_jacobian(x, *contexts)[1]

        info = {"mode": "forward" if forward else "reverse"}
        return self._kernels(jacobian, value_and_jacobian, info, f, x, contexts, spec)

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        first = autograd.make_jvp(f)

        def derivative(x: Any, *contexts: Any) -> Any:
            return first(x, *contexts)(np.ones((), dtype=x.dtype))[1]

        second = autograd.make_jvp(derivative)

        def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            dy, d2y = second(x, *contexts)(np.ones_like(x))
            return f(x, *contexts), dy, d2y

        def second_derivative(x: Any, *contexts: Any) -> Any:
            return second(x, *contexts)(np.ones_like(x))[1]

        both = value_derivative_and_second_derivative
        info = {"strategy": "forward-over-forward"}
        return self._kernels(second_derivative, both, info, f, x, contexts, spec, second_order=True)

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        maker = autograd.make_hvp(f)  # records the gradient's tape once per call, for every tangent

        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            product, g = maker(x, *contexts)
            return g, tuple(product(t) for t in tangents)

        def hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            return gradient_and_hvp(x, tangents, *contexts)[1]

        info = {"strategy": "reverse-over-reverse"}
        return self._kernels(hvp, gradient_and_hvp, info, f, x, contexts, spec, second_order=True)

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        # One recording of the gradient, then one reverse pass per row (what `autograd.hessian`
        # does too, through two `jacobian`s: 1.1-1.3 times slower, measured at n = 10-1 000).
        maker = autograd.make_hvp(f)
        x_shape = tuple(x.shape)
        n = flat_size(x_shape)
        seeds = np.eye(n, dtype=x.dtype).reshape(n, *x_shape)

        def hessian(x: Any, *contexts: Any) -> Any:
            product = maker(x, *contexts)[0]
            return _stack([product(e) for e in seeds]).reshape((*x_shape, *x_shape))

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            product, g = maker(x, *contexts)
            rows = _stack([product(e) for e in seeds])
            return f(x, *contexts), g, rows.reshape((*x_shape, *x_shape))

        info = {"strategy": "reverse-over-reverse"}
        return self._kernels(hessian, value_gradient_and_hessian, info, f, x, contexts, spec, second_order=True)

    def _kernels(
        self,
        plain: Callable[..., Any],
        with_value: Callable[..., Any],
        info: dict[str, Any],
        f: Callable[..., Any],
        x: Any,
        contexts: tuple,
        spec: OutputSpec,
        second_order: bool = False,
        single: bool = False,
    ) -> Kernels:
        """The kernels (`single`: they take one tangent alone too), quiet where autograd would
        warn, and with results of the inputs' dtype.

        autograd warns on every call whose output does not depend on the input: first-order
        kernels test `f` at prepare time; second-order ones are always quiet (the gradient of a
        linear `f` does not depend on `x`), at 3-5 µs beside milliseconds. And the derivative
        rules of `where`, `mean`, ... compute in float64 whatever the input: float32 results
        are cast back.
        """
        if second_order or _independent(f, x, contexts):
            plain, with_value = _quiet(plain), _quiet(with_value)
        dtype = np.result_type(x.dtype, spec.dtype)
        if dtype != np.float64:
            plain, with_value = _cast(plain, dtype), _cast(with_value, dtype)
        return Kernels(plain, with_value, info, single_tangent=single)

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
