"""MyGrad: reverse mode (`Tensor.backward`) on NumPy arrays; second order by differences of it.

MyGrad records a graph of `mygrad.Tensor` operations while `f` runs and back-propagates one
cotangent through it with `y.backward(u)`, after which it clears the graph. So a pullback of `k`
cotangents records `f` `k` times (the first recording serves the first cotangent), a Jacobian
of `m` outputs `m` times, and a gradient once. MyGrad has no forward mode: a pushforward is the
Jacobian's rows, one pullback per output, times the tangents.

MyGrad does not differentiate its own backward pass, so there are no exact second derivatives.
The second-order routes difference MyGrad's exact first derivatives along each direction `t`:
central differences `(g(x + h t) - g(x - h t)) / 2h` at `h` and `h/2`, Richardson-extrapolated
to an error of O(h⁴), with `h` about eps^(1/5) relative to `x`, in float64 (float32 inputs are
differenced in float64 and the results rounded). That keeps about 12 digits, where differences
of `f` itself (`AutoFiniteDiff`) keep about 7; a Hessian costs 4 n gradients.

Everything runs with MyGrad's memory guard off: with it on (MyGrad's default), MyGrad makes the
NumPy arrays a graph reads (the user's constants among them) read-only until the graph is
cleared, which would leave them locked after a forward pass that is never back-propagated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import mygrad as mg
import numpy as np

from anydiff.extend import (
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
    register_namespace,
)

from .namespace import mygrad_namespace

__all__ = ["MyGradImpl"]

# `f` receives tensors whose kind is registered with its namespace; registered here for the type
# too, in case another package registered a kind for `mygrad` first.
register_namespace(mg.Tensor, lambda a: mygrad_namespace)

# The base relative step of the extrapolated central differences of gradients: their truncation
# error after one Richardson step is O(h⁴), their rounding error O(eps / h).
_STEP = float(np.finfo(np.float64).eps) ** (1 / 5)


def _record(f: Callable[..., Any], x: np.ndarray, contexts: tuple) -> tuple[Any, Any]:
    """`(tensor of x, f(tensor))`, with `f`'s graph recorded (the memory guard off)."""
    with mg.mem_guard_off:
        xt = mg.Tensor(x, copy=False)
        return xt, f(xt, *contexts)


def _backward(xt: Any, y: Any, cotangent: Any) -> np.ndarray:
    """`uᵀ J` from a recording; zeros when `f`'s result does not depend on `x`."""
    if isinstance(y, mg.Tensor) and not y.constant:
        with mg.mem_guard_off:
            y.backward(cotangent)
    grad = xt.grad
    return np.zeros(xt.shape, dtype=xt.dtype) if grad is None else grad


# The module whose global `MEM_GUARD` `mg.mem_guard_off` sets, if this MyGrad has it: the kernels
# clear and restore the flag themselves, 0.5-1 µs less per call than entering the context twice.
_locks: Any = sys.modules.get(type(mg.mem_guard_off).__module__)
if not isinstance(getattr(_locks, "MEM_GUARD", None), bool):
    _locks = None


def _pass(f: Callable[..., Any], x: np.ndarray, contexts: tuple, cotangent: Any) -> tuple[Any, np.ndarray]:
    """`(f(x), uᵀ J)`: one recording and backward pass, the memory guard off (the kernels' path)."""
    if _locks is None:
        xt, y = _record(f, x, contexts)
        return y, _backward(xt, y, cotangent)
    saved = _locks.MEM_GUARD
    _locks.MEM_GUARD = False
    try:
        xt = mg.Tensor(x, copy=False)
        y = f(xt, *contexts)
        if isinstance(y, mg.Tensor) and not y.constant:
            y.backward(cotangent)
        grad = xt.grad
    finally:
        _locks.MEM_GUARD = saved
    return y, np.zeros(xt.shape, dtype=xt.dtype) if grad is None else grad


def _data(y: Any, dtype: Any = None) -> np.ndarray:
    """`y`'s values as NumPy, in `dtype` if given (see `_dtype`)."""
    data = y.data if isinstance(y, mg.Tensor) else np.asarray(y)
    return data if dtype is None else data.astype(dtype, copy=False)


def _dtype(x: Any, y_dtype: Any) -> np.dtype:
    """The dtype of values and derivatives: `x`'s.

    MyGrad turns Python floats into float64 arrays (`tensor * 2.0` of a float32 tensor is
    float64), so an `f` that keeps float32 under NumPy returns float64 under MyGrad: its values
    and derivatives are rounded back to the input's dtype, as every other backend returns them.
    """
    return np.result_type(x.dtype, np.float32) if np.issubdtype(y_dtype, np.floating) else np.dtype(y_dtype)


class MyGradImpl(BackendImpl):
    kind = array_kinds()["numpy"]
    higher_order = False  # `backward_var` runs on NumPy, unrecorded

    # -- the primitive ---------------------------------------------------------------------------

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        first = [_record(f, x, contexts)]
        y = _data(first[0][1])
        y = y.astype(_dtype(x, y.dtype), copy=False)

        def pullback(cotangents: Any) -> Any:
            rows = []
            for u in cotangents:
                if first:  # the recording made for the value
                    xt, out = first.pop()
                    rows.append(_backward(xt, out, u))
                else:
                    rows.append(_pass(f, x, contexts, u)[1])
            return np.stack(rows) if rows else np.zeros((0, *x.shape), dtype=x.dtype)

        return y, pullback

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def gradient(x: Any, *contexts: Any) -> Any:
            return _pass(f, x, contexts, None)[1]

        return gradient

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        # `f` runs on NumPy here, where its result keeps the dtype it would have without MyGrad
        # (a complex result is then refused by anydiff's own check); an `f` calling `mg.*`
        # returns a tensor even so.
        y = f(x, *contexts)
        if not isinstance(y, (mg.Tensor, np.ndarray, np.generic)):
            raise TypeError(
                f"{self.backend!r}: `f` must return one array of the kind it receives (mygrad); it "
                f"returned {type(y).__name__}. Build the result with `xp = ad.namespace(x)` (e.g. "
                "`xp.stack([...])` for several values)."
            )
        data = _data(y)
        return OutputSpec(tuple(data.shape), _dtype(x, data.dtype))

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc).strip()
        if message.startswith(f"{self.backend!r}:"):  # `output_spec`'s own message, clear as it is
            return None
        if isinstance(exc, (TypeError, ValueError)) and (
            "mygrad" in message or "returned NotImplemented from __array_ufunc__" in message
        ):
            return FunctionNotDifferentiableError(
                f"{operator}: MyGrad cannot differentiate a function `f` calls on its tensors "
                f"({message}). Write `f` with `xp = ad.namespace(x)`, whose functions MyGrad "
                "differentiates, or use another backend."
            )
        return None

    # -- native routes: first order, MyGrad's reverse mode ------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        dtype = _dtype(x, spec.dtype)

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, grad = _pass(f, x, contexts, None)
            return _data(y, dtype), grad.astype(dtype, copy=False)

        def gradient(x: Any, *contexts: Any) -> Any:
            return _pass(f, x, contexts, None)[1].astype(dtype, copy=False)

        return Kernels(gradient, value_and_gradient, {"mode": "reverse", "route": "Tensor.backward"})

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        dtype = _dtype(x, spec.dtype)

        # One recording per cotangent: MyGrad clears the graph after each backward pass.
        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            if not cotangents:
                return _data(_record(f, x, contexts)[1], dtype), ()
            products = []
            for u in cotangents:
                y, product = _pass(f, x, contexts, u)
                products.append(product.astype(dtype, copy=False))
            return _data(y, dtype), tuple(products)

        def pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple:
            if len(cotangents) == 1:
                return (_pass(f, x, contexts, cotangents[0])[1].astype(dtype, copy=False),)
            return tuple([_pass(f, x, contexts, u)[1].astype(dtype, copy=False) for u in cotangents])

        return Kernels(pullback, value_and_pullback, {"mode": "reverse", "route": "Tensor.backward"})

    def jacobian_matrix(self, f: Any, x: Any, contexts: tuple, y_shape: tuple) -> tuple[Any, np.ndarray]:
        """`(f(x), J)` with `J` of shape `(m, n)`: one recording and backward pass per output."""
        m, n = flat_size(y_shape), flat_size(tuple(x.shape))
        if m == 0:
            return _data(_record(f, x, contexts)[1]), np.zeros((0, n), dtype=x.dtype)
        seeds = np.eye(m).reshape(m, *y_shape)  # `backward` casts them to the output's dtype
        rows = np.zeros((m, n), dtype=x.dtype)
        for i in range(m):
            y, row = _pass(f, x, contexts, seeds[i])
            rows[i] = np.ravel(row)
        return _data(y), rows

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        dtype = _dtype(x, spec.dtype)

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            value, rows = self.jacobian_matrix(f, x, contexts, spec.shape)
            return value.astype(dtype, copy=False), rows.reshape((*spec.shape, *x.shape)).astype(dtype, copy=False)

        def jacobian(x: Any, *contexts: Any) -> Any:
            return value_and_jacobian(x, *contexts)[1]

        return Kernels(jacobian, value_and_jacobian, {"mode": "reverse", "route": "Tensor.backward"})

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        """The Jacobian's rows (`jacobian_matrix`), then its products with the tangents: what the
        generic emulation from `vjp` computes, without stacking the basis and the rows."""
        dtype = _dtype(x, spec.dtype)

        def value_and_pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            value, rows = self.jacobian_matrix(f, x, contexts, spec.shape)
            products = tuple([(rows @ np.ravel(t)).reshape(spec.shape).astype(dtype, copy=False) for t in tangents])
            return value.astype(dtype, copy=False), products

        def pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            return value_and_pushforward(x, tangents, *contexts)[1]

        info = {"mode": "one pullback per output", "route": "Tensor.backward"}
        return Kernels(pushforward, value_and_pushforward, info)

    # -- native routes: second order, differences of MyGrad's first derivatives -------------------

    def differences(self, g: Callable[[np.ndarray], np.ndarray], x: Any, directions: Any) -> list[np.ndarray]:
        """`d/dh g(x + h t)` at 0 for each direction `t`, by extrapolated central differences.

        `g` takes and returns float64 arrays. With `D(h) = (g(x + h t) - g(x - h t)) / 2h`, the
        estimate is `(4 D(h/2) - D(h)) / 3`, whose O(h²) error terms cancel.
        """
        x64 = np.asarray(x, dtype=np.float64)
        found = []
        for t in directions:
            t64 = np.asarray(t, dtype=np.float64)
            size = float(np.max(np.abs(t64))) if t64.size else 0.0
            if size == 0.0:
                found.append(np.zeros_like(g(x64)))
                continue
            h = _STEP * (1.0 + float(np.max(np.abs(x64 * t64))) / size) / size
            coarse = (g(x64 + h * t64) - g(x64 - h * t64)) / (2 * h)
            fine = (g(x64 + (h / 2) * t64) - g(x64 - (h / 2) * t64)) / h
            found.append((4 * fine - coarse) / 3)
        return found

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        dtype = _dtype(x, spec.dtype)
        one = [np.ones(())]

        def derivative_of(contexts: tuple) -> Callable[[np.ndarray], np.ndarray]:
            def derivative(point: np.ndarray) -> np.ndarray:
                return self.jacobian_matrix(f, point, contexts, spec.shape)[1].reshape(spec.shape)

            return derivative

        def second_derivative(x: Any, *contexts: Any) -> Any:
            return self.differences(derivative_of(contexts), x, one)[0].astype(dtype, copy=False)

        def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            value, rows = self.jacobian_matrix(f, x, contexts, spec.shape)
            first = rows.reshape(spec.shape).astype(dtype, copy=False)
            return value.astype(dtype, copy=False), first, second_derivative(x, *contexts)

        info = {"strategy": "differences-of-reverse", "route": "Tensor.backward"}
        return Kernels(second_derivative, value_derivative_and_second_derivative, info)

    def _gradient_of(self, f: Any, contexts: tuple) -> Callable[[np.ndarray], np.ndarray]:
        def gradient(point: np.ndarray) -> np.ndarray:
            return _pass(f, point, contexts, None)[1]

        return gradient

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        dtype = _dtype(x, spec.dtype)

        def hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            found = self.differences(self._gradient_of(f, contexts), x, tangents)
            return tuple(d.astype(dtype, copy=False) for d in found)

        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            gradient = self._gradient_of(f, contexts)(x).astype(dtype, copy=False)
            return gradient, hvp(x, tangents, *contexts)

        info = {"strategy": "differences-of-reverse", "route": "Tensor.backward"}
        return Kernels(hvp, gradient_and_hvp, info)

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        dtype = _dtype(x, spec.dtype)
        shape = tuple(x.shape)
        n = flat_size(shape)
        basis = np.eye(n).reshape(n, *shape)

        def hessian(x: Any, *contexts: Any) -> Any:
            rows = np.reshape(self.differences(self._gradient_of(f, contexts), x, basis), (n, n))
            # The exact Hessian is symmetric; the mean of the two halves halves their differences.
            return ((rows + rows.T) / 2).reshape(shape + shape).astype(dtype, copy=False)

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            y, gradient = _pass(f, x, contexts, None)
            value, gradient = _data(y, dtype), gradient.astype(dtype, copy=False)
            return value, gradient, hessian(x, *contexts)

        info = {"strategy": "differences-of-reverse", "route": "Tensor.backward"}
        return Kernels(hessian, value_gradient_and_hessian, info)

    native = {
        GRADIENT: native_gradient,
        PULLBACK: native_pullback,
        PUSHFORWARD: native_pushforward,
        JACOBIAN: native_jacobian,
        SECOND_DERIVATIVE: native_second_derivative,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }
