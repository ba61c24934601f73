"""MindSpore: reverse mode with `mindspore.grad` and `mindspore.vjp` in PyNative mode, on CPU.

`f` runs eagerly (PyNative), as Python: MindSpore records its operations and differentiates
them. A pullback calls `mindspore.vjp`'s function once per cotangent (MindSpore runs `f` again
for each after the first). MindSpore's forward mode (`mindspore.jvp`) compiles `f` into a graph
from its Python source, which fails for lambdas, closures and most functions calling
`ad.namespace(x)` ("Parse Lambda Function Fail", "illegal target for annotation"): the backend is
reverse mode only, and a pushforward is taken from the pullbacks of the output basis (the
generic emulation in `BackendImpl.jvp`), as for Paddle.

No second order by nesting: MindSpore 2.10 differentiates its own `grad` (reverse over reverse)
wrongly wherever a reduction feeds a nonlinear operation. The Hessian of `sum(x) ** 2` comes out
zero, that of `sin(sum(x))` or `sum(x * sum(x))` wrong by O(1), silently; elementwise functions
(`sum(sin(x) * x)`) are right. And inside a nested `grad` a tensor indexed by a bare integer
(`x[0]`) raises `TypeError`. So the second-order routes difference, as for MyGrad, the exact
first derivatives along each direction `t`: central differences `(g(x + h t) - g(x - h t)) / 2h`
at `h` and `h/2`, Richardson-extrapolated (error O(h⁴) + O(eps / h): about 12 digits in
float64, 5 in float32).

An exception raised while MindSpore records (an error of `f`) leaves its executor in recording
mode, after which even `x[0]` outside any derivative fails ("Only support integers, slices ...
but got 0 with type <class 'int'>"): when an exception leaves a prepared kernel that started
the recording, the executor is reset (`_pynative_executor.clear_res()`). The executor is one
per process and not thread-safe: the prepared kernels run one at a time.
"""

from __future__ import annotations

import importlib
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from anydiff.extend import (
    GRADIENT,
    HESSIAN,
    HVP,
    PULLBACK,
    SECOND_DERIVATIVE,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    Operator,
    OutputSpec,
    flat_size,
    numpy_operand_error,
)

from .arrays import MINDSPORE
from .load import load_mindspore

ms = load_mindspore()
ops = ms.ops
_executor: Any = getattr(importlib.import_module("mindspore.graph.api"), "_pynative_executor", None)

__all__ = ["MindSporeImpl"]


#: held while a prepared kernel runs (reentrant: a kernel may run inside another's `f`)
_RUNNING = threading.RLock()


def _guarded(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """`kernel`, one at a time, resetting MindSpore's executor when an exception leaves the
    recording it started.

    MindSpore's PyNative executor is one per process: two threads recording and differentiating
    at once fail ("Can not find top cell for backward"), and another library may run them so
    (TensorFlow runs the `DifferentiateWith(f, ad.AutoMindSpore())` calls of a graph in parallel).
    """

    def guarded(*args: Any) -> Any:
        with _RUNNING:
            outermost = _executor is not None and not _executor.grad_flag()
            try:
                return kernel(*args)
            except BaseException:
                if outermost:
                    _executor.clear_res()
                raise

    return guarded


def _grad(f: Callable[..., Any], x: Any, contexts: tuple) -> Any:
    return ms.grad(lambda x: f(x, *contexts))(x)


def _pullbacks(f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
    """`(f(x), u -> uᵀ J)` from one `mindspore.vjp`; the function may be called several times."""
    y, vjp_fn = ms.vjp(lambda x: f(x, *contexts), x)
    first = [True]

    def pull(u: Any) -> Any:
        if first[0]:
            first[0] = False
            return vjp_fn(u)[0]
        with warnings.catch_warnings():  # "vjp_fn has been called multiple times": it is meant
            warnings.simplefilter("ignore", RuntimeWarning)
            return vjp_fn(u)[0]

    return y, pull


def _step(x: Any, directions: Any) -> float:
    """The larger step `h` of the differences: eps^(1/5) (balancing O(h⁴) against O(eps / h)),
    scaled by the size of `x` and of the directions."""
    eps = float(np.finfo(np.float32 if x.dtype == ms.float32 else np.float64).eps)
    size = max(1.0, float(ops.amax(ops.abs(x)))) if x.size else 1.0
    largest = float(ops.amax(ops.abs(directions))) if directions.size else 0.0
    largest = largest or 1.0  # zero directions: any step gives the zero they have
    # A float32 number: MindSpore rounds Python float operands to float32, so the step taken and
    # the step divided by are then the same number.
    return float(np.float32(eps**0.2 * size / largest))


def _differences(g: Callable[[Any], Any], x: Any, directions: Any) -> Any:
    """`(D g)(x) t` for each `t` of `directions` (stacked), by extrapolated central differences."""
    h = _step(x, directions)
    found = []
    for i in range(directions.shape[0]):
        t = directions[(i,)]
        wide = (g(x + h * t) - g(x - h * t)) / (2 * h)
        narrow = (g(x + (h / 2) * t) - g(x - (h / 2) * t)) / h
        found.append((4 * narrow - wide) / 3)
    return ops.stack(found)


class MindSporeImpl(BackendImpl):
    kind = MINDSPORE
    higher_order = False  # MindSpore's second derivatives are wrong (above): they are never taken

    # -- primitives --------------------------------------------------------------------------

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        y, pull = _pullbacks(f, x, contexts)

        def pullback(cotangents: Any) -> Any:
            k = cotangents.shape[0]
            if k == 0:
                return ops.zeros((0, *x.shape), x.dtype)
            return ops.stack([pull(cotangents[(i,)]) for i in range(k)])

        return y, pullback

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def gradient(x: Any, *contexts: Any) -> Any:
            return _grad(f, x, contexts)

        return gradient

    def kernels(
        self, operator: Operator, f: Any, x: Any, tangents: tuple | None, contexts: tuple, spec: OutputSpec
    ) -> Kernels:
        found = super().kernels(operator, f, x, tangents, contexts, spec)
        return found._replace(plain=_guarded(found.plain), with_value=_guarded(found.with_value))

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc).strip()
        first = message.splitlines()[0] if message else type(exc).__name__
        if isinstance(exc, TypeError) and "Failed calling" in message and "<class 'complex'>" in message:
            return TypeError(
                f"{operator}: `f` must compute in real floating point (float32 or float64): MindSpore "
                f"takes no complex number as an operand ({first}), such as `1j` in `x * 1j`."
            )
        if isinstance(exc, TypeError) and "Failed calling" in message and "numpy" in message:
            return numpy_operand_error(operator, "MindSpore", first)  # `x * data`, `x * np.int64(2)`
        if isinstance(exc, (TypeError, AttributeError)) and (
            "__array__" in message or "asnumpy" in message or "ufunc" in message
        ):
            return FunctionNotDifferentiableError(
                f"{operator}: `f` called NumPy on a MindSpore tensor ({first}). Under "
                "`ad.AutoMindSpore()`, `f` receives `mindspore.Tensor`s: write it with "
                "`xp = ad.namespace(x)`."
            )
        return None

    # -- native routes ----------------------------------------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return ms.value_and_grad(lambda x: f(x, *contexts))(x)  # type: ignore[no-any-return]

        def gradient(x: Any, *contexts: Any) -> Any:
            return _grad(f, x, contexts)

        return Kernels(gradient, value_and_gradient, {"mode": "reverse", "route": "mindspore.grad"})

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            y, pull = _pullbacks(f, x, contexts)
            return y, tuple(pull(u) for u in cotangents)

        def pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple:
            return value_and_pullback(x, cotangents, *contexts)[1]

        return Kernels(pullback, value_and_pullback, {"mode": "reverse", "route": "mindspore.vjp"})

    # -- native routes: second order, differences of MindSpore's first derivatives ------------------

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            found = _differences(lambda p: _grad(f, p, contexts), x, ops.stack(tangents))
            return _grad(f, x, contexts), tuple(found[(i,)] for i in range(len(tangents)))

        def hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            return gradient_and_hvp(x, tangents, *contexts)[1]

        return Kernels(hvp, gradient_and_hvp, {"strategy": "differences-of-reverse", "route": "mindspore.grad"})

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        shape = tuple(x.shape)
        n = flat_size(shape)
        basis = ops.reshape(ops.eye(n, n, x.dtype), (n, *shape))

        def hessian(x: Any, *contexts: Any) -> Any:
            rows = ops.reshape(_differences(lambda p: _grad(f, p, contexts), x, basis), (n, n))
            # The exact Hessian is symmetric; the mean of the two halves halves their differences.
            return ops.reshape((rows + rows.T) / 2, shape + shape)

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            value, gradient = ms.value_and_grad(lambda x: f(x, *contexts))(x)
            return value, gradient, hessian(x, *contexts)

        return Kernels(
            hessian, value_gradient_and_hessian, {"strategy": "differences-of-reverse", "route": "mindspore.grad"}
        )

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        one = ops.ones((1, *x.shape), x.dtype)

        def derivative(p: Any, contexts: tuple) -> tuple[Any, Any]:
            y, columns = self.jvp(f, p, one, contexts)  # from the pullbacks of the output basis
            return y, columns[(0,)]

        def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            y, first = derivative(x, contexts)
            second = _differences(lambda p: derivative(p, contexts)[1], x, one)[(0,)]
            return y, first, second

        def second_derivative(x: Any, *contexts: Any) -> Any:
            return value_derivative_and_second_derivative(x, *contexts)[2]

        return Kernels(
            second_derivative,
            value_derivative_and_second_derivative,
            {"strategy": "differences-of-reverse", "route": "mindspore.vjp"},
        )

    native = {
        GRADIENT: native_gradient,
        PULLBACK: native_pullback,
        HVP: native_hvp,
        HESSIAN: native_hessian,
        SECOND_DERIVATIVE: native_second_derivative,
    }
