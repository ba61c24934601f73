"""numdifftools: adaptive finite differences with Richardson extrapolation, on NumPy arrays.

Each derivative is a limit: numdifftools evaluates difference quotients along a geometric
sequence of steps, extrapolates them to a zero step and keeps, per element, the estimate whose
error estimate is smallest. The primitive is the directional derivative (`nd.Derivative` of
`h -> f(x + h t)`), so the backend is forward mode only, like `AutoFiniteDiff`; the library's own
routes for whole Jacobians (`nd.Jacobian`, `nd.Gradient`), second derivatives (`nd.Derivative`
with `n=2`) and Hessians (`nd.Hessian`) are its native routes. A pullback takes the Jacobian
(`nd.Jacobian`) once and multiplies every cotangent by it; Hessian-vector products take the
Hessian once for all tangents.

numdifftools works on flat float64 vectors: `f` is wrapped to take and return them, and float32
inputs are differentiated in float64, the results rounded back. Nothing is traced or compiled:
every call runs `f` about 30 times per direction (measured: 30 evaluations for a directional
derivative, 30 n for the gradient or Jacobian of n inputs, 30 n² for a central Hessian).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numdifftools as nd
import numpy as np

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
    array_kinds,
    flat_size,
)

from . import AutoNumdifftools

__all__ = ["NumdifftoolsImpl"]


def _float64(a: Any) -> np.ndarray:
    """`a` as a float64 (or complex128) array: numdifftools' steps are float64."""
    a = np.asarray(a)
    return a if a.dtype in (np.float64, np.complex128) else a.astype(np.float64)


class _Flat:
    """`f` on flat vectors: `v -> ravel(f(reshape(v, shape), *contexts))`, as numdifftools wants."""

    def __init__(self, f: Callable[..., Any], shape: tuple[int, ...], contexts: tuple) -> None:
        self.f, self.shape, self.contexts = f, shape, contexts

    def __call__(self, v: Any) -> np.ndarray:
        return np.ravel(self.f(np.reshape(v, self.shape), *self.contexts))


def _on_vectors(f: Callable[..., Any], x: np.ndarray, contexts: tuple, output_ndim: int) -> Callable[..., Any]:
    """`f` as numdifftools calls it: on flat vectors, returning a scalar or a vector.

    An `f` of a vector returning a scalar or a vector is passed as it is (with its contexts
    bound): numdifftools calls it 30 times per input, and a wrapper's 1-2 µs a call would be a
    tenth of the time of a small `f`.
    """
    if x.ndim == 1 and output_ndim <= 1:
        return f if not contexts else lambda v: f(v, *contexts)
    flat = _Flat(f, x.shape, contexts)
    return (lambda v: flat(v)[0]) if output_ndim == 0 else flat


class NumdifftoolsImpl(BackendImpl):
    kind = array_kinds()["numpy"]
    # `f` runs on plain NumPy arrays: a two-argument `f(y, x)` writes into a NumPy buffer.
    mutation = True

    def __init__(self, backend: AutoNumdifftools) -> None:
        super().__init__(backend)
        self.method = backend.method
        self.complex_step = backend.method == "complex"
        # Options of the first derivatives and of `second_derivative`; `nd.Hessian` has one
        # formula per method, of order 2 (it warns and ignores any other order).
        self.options: dict[str, Any] = {"method": backend.method, "order": backend.order, "step": backend.step}
        self.hessian_options: dict[str, Any] = {"method": backend.method, "step": backend.step}

    # -- the library's operations, on float64 vectors ----------------------------------------

    def directional(self, f: Callable[..., Any], x: np.ndarray, t: Any, contexts: tuple, n: int = 1) -> np.ndarray:
        """The `n`-th derivative of `h -> f(x + h t)` at 0 (`x` float64), flat."""
        t = _float64(t)

        def line(h: Any) -> Any:
            return f(x + h * t, *contexts)

        return np.ravel(nd.Derivative(line, n=n, **self.options)(0.0))

    def jacobian_matrix(self, f: Callable[..., Any], x: np.ndarray, contexts: tuple, y_shape: tuple) -> np.ndarray:
        """The Jacobian of `f` at `x` (float64) as an `(m, n)` matrix."""
        m, n = flat_size(y_shape), x.size
        if n == 0 or m == 0:
            return np.zeros((m, n))
        g = _on_vectors(f, x, contexts, len(y_shape))
        return np.reshape(nd.Jacobian(g, **self.options)(np.ravel(x)), (m, n))

    def gradient_vector(self, f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> np.ndarray:
        """The gradient of a scalar `f` at `x` (float64), shaped like `x`."""
        if x.size == 0:
            return np.zeros(x.shape)
        g = _on_vectors(f, x, contexts, 0)
        return np.reshape(nd.Gradient(g, **self.options)(np.ravel(x)), x.shape)

    def hessian_matrix(self, f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> np.ndarray:
        """The Hessian of a scalar `f` at `x` (float64) as an `(n, n)` matrix."""
        n = x.size
        if n == 0:
            return np.zeros((0, 0))
        g = _on_vectors(f, x, contexts, 0)
        return np.reshape(nd.Hessian(g, **self.hessian_options)(np.ravel(x)), (n, n))

    # -- the primitive ---------------------------------------------------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        y = np.asarray(f(x, *contexts))
        x64 = _float64(x)
        dtype = np.result_type(x.dtype, y.dtype)
        if x.size == 0 or y.size == 0:
            return y, np.zeros((len(tangents), *y.shape), dtype=dtype)
        columns = [np.reshape(self.directional(f, x64, t, contexts), y.shape) for t in tangents]
        return y, np.stack(columns).astype(dtype, copy=False)

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def gradient(x: Any, *contexts: Any) -> Any:
            return self.gradient_vector(f, _float64(x), contexts).astype(x.dtype, copy=False)

        return gradient

    def one_argument(self, f: Callable[..., Any], y: Any) -> Callable[..., Any]:
        # numdifftools evaluates at float64 points (complex ones for the complex step): the
        # buffer `f` writes into takes that dtype, not the prepare-time one, or the steps'
        # digits (or imaginary parts) would be lost in the write.
        shape, dtype = tuple(y.shape), y.dtype

        def returning_output(x: Any, *contexts: Any) -> Any:
            out = np.empty(shape, dtype=np.result_type(dtype, x.dtype))
            f(out, x, *contexts)
            return out

        return returning_output

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc).strip()
        if self.complex_step and "complex" in message.lower():
            return FunctionNotDifferentiableError(
                f"{operator}: `ad.AutoNumdifftools(method='complex')` evaluates `f` at complex points, "
                f"which `f` refused ({type(exc).__name__}: {message}). Use the default "
                "`method='central'`, or write `f` with `xp = ad.namespace(x)` so that it accepts "
                "complex arrays."
            )
        return None

    # -- native routes: the library's own operators ------------------------------------------------

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        # The generic route would evaluate `f(x)` once more per call, for a value it drops.
        def pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            x64, dtype = _float64(x), np.result_type(x.dtype, spec.dtype)
            if x.size == 0 or flat_size(spec.shape) == 0:
                return tuple(np.zeros(spec.shape, dtype=dtype) for _ in tangents)
            found = (self.directional(f, x64, t, contexts) for t in tangents)
            return tuple(np.reshape(d, spec.shape).astype(dtype, copy=False) for d in found)

        def value_and_pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            return f(x, *contexts), pushforward(x, tangents, *contexts)

        return Kernels(pushforward, value_and_pushforward, {"mode": "forward", "route": "nd.Derivative"})

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        def pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple:
            jacobian = self.jacobian_matrix(f, _float64(x), contexts, spec.shape)
            dtype = np.result_type(x.dtype, spec.dtype)
            return tuple(np.reshape(np.ravel(u) @ jacobian, x.shape).astype(dtype, copy=False) for u in cotangents)

        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            return f(x, *contexts), pullback(x, cotangents, *contexts)

        return Kernels(pullback, value_and_pullback, {"mode": "forward", "route": "nd.Jacobian"})

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y = np.asarray(f(x, *contexts))
            if y.size == 0:
                return y, np.zeros(y.shape, dtype=y.dtype)
            d = self.directional(f, _float64(x), 1.0, contexts)
            return y, np.reshape(d, y.shape).astype(np.result_type(x.dtype, y.dtype), copy=False)

        def derivative(x: Any, *contexts: Any) -> Any:
            return value_and_derivative(x, *contexts)[1]

        return Kernels(derivative, value_and_derivative, {"mode": "forward", "route": "nd.Derivative"})

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def gradient(x: Any, *contexts: Any) -> Any:
            return self.gradient_vector(f, _float64(x), contexts).astype(np.result_type(x.dtype, spec.dtype))

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return f(x, *contexts), gradient(x, *contexts)

        return Kernels(gradient, value_and_gradient, {"mode": "forward", "route": "nd.Gradient"})

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y = np.asarray(f(x, *contexts))
            jacobian = self.jacobian_matrix(f, _float64(x), contexts, spec.shape)
            dtype = np.result_type(x.dtype, y.dtype)
            return y, np.reshape(jacobian, (*y.shape, *x.shape)).astype(dtype, copy=False)

        def jacobian(x: Any, *contexts: Any) -> Any:
            return value_and_jacobian(x, *contexts)[1]

        return Kernels(jacobian, value_and_jacobian, {"mode": "forward", "route": "nd.Jacobian"})

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def derivatives(x: Any, contexts: tuple, orders: tuple[int, ...]) -> tuple[Any, list[Any]]:
            y = np.asarray(f(x, *contexts))
            dtype = np.result_type(x.dtype, y.dtype)
            if y.size == 0:
                return y, [np.zeros(y.shape, dtype=dtype) for _ in orders]
            x64 = _float64(x)
            found = [self.directional(f, x64, 1.0, contexts, n=n) for n in orders]
            return y, [np.reshape(d, y.shape).astype(dtype, copy=False) for d in found]

        def second_derivative(x: Any, *contexts: Any) -> Any:
            return derivatives(x, contexts, (2,))[1][0]

        def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            y, (d1, d2) = derivatives(x, contexts, (1, 2))
            return y, d1, d2

        info = {"strategy": "nd.Derivative(n=2)", "mode": self.method}
        return Kernels(second_derivative, value_derivative_and_second_derivative, info)

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        # One Hessian serves every tangent: a product by nested differences (the derivative of
        # the gradient along `t`) would cost about 30 gradients, each of 30 evaluations per input.
        def products(x: Any, tangents: tuple, contexts: tuple) -> tuple:
            hessian = self.hessian_matrix(f, _float64(x), contexts)
            dtype = np.result_type(x.dtype, spec.dtype)
            return tuple(np.reshape(hessian @ np.ravel(t), x.shape).astype(dtype, copy=False) for t in tangents)

        def hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            return products(x, tangents, contexts)

        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            gradient = self.gradient_vector(f, _float64(x), contexts).astype(np.result_type(x.dtype, spec.dtype))
            return gradient, products(x, tangents, contexts)

        return Kernels(hvp, gradient_and_hvp, {"strategy": "nd.Hessian", "mode": self.method})

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def hessian(x: Any, *contexts: Any) -> Any:
            matrix = self.hessian_matrix(f, _float64(x), contexts)
            return np.reshape(matrix, (*x.shape, *x.shape)).astype(np.result_type(x.dtype, spec.dtype))

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            gradient = self.gradient_vector(f, _float64(x), contexts).astype(np.result_type(x.dtype, spec.dtype))
            return f(x, *contexts), gradient, hessian(x, *contexts)

        return Kernels(hessian, value_gradient_and_hessian, {"strategy": "nd.Hessian", "mode": self.method})

    native = {
        PUSHFORWARD: native_pushforward,
        PULLBACK: native_pullback,
        DERIVATIVE: native_derivative,
        GRADIENT: native_gradient,
        JACOBIAN: native_jacobian,
        SECOND_DERIVATIVE: native_second_derivative,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }
