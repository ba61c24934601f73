"""PaddlePaddle: reverse mode with `paddle.grad` in Paddle's dynamic graph, on CPU.

A pullback records `f` once and calls `paddle.grad` with `grad_outputs` once per cotangent
(`retain_graph=True` keeps the graph for the next). Paddle has no forward mode of its own in
dynamic mode: `paddle.incubate.autograd.jvp` differentiates a pullback with respect to its
cotangent, which needs Paddle's derivatives of its backward kernels with respect to their
incoming gradient, and those fail for common operations (Paddle 3.3: `x ** 2` and `sin(x) ** 2`
raise "The output DenseTensor DX can not be nullptr"; `cumsum` has no second derivative at all).
So the backend is reverse mode only: a pushforward is taken from the pullbacks of the output
basis (the generic emulation in `BackendImpl.jvp`), like tinygrad's.

Second order differentiates `paddle.grad(..., create_graph=True)` (reverse over reverse): a
primitive called on a tensor that is already being differentiated (`stop_gradient=False`) keeps
its graph. Operations without a second derivative in Paddle (`cumsum`, `sort`) make second-order
operators raise `ad.FunctionNotDifferentiableError`.

Paddle's dynamic graph is not thread-safe: two threads recording and differentiating at once
crash the process (a segmentation fault). Another library may run them so (TensorFlow runs the
`DifferentiateWith(f, ad.AutoPaddle())` calls of a graph in parallel), so the prepared kernels
(`kernels`, native and generic routes alike) run one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from anydiff.extend import (
    GRADIENT,
    JACOBIAN,
    PULLBACK,
    PUSHFORWARD,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    Operator,
    OutputSpec,
    flat_size,
)

from .arrays import PADDLE
from .load import load_paddle

paddle = load_paddle()

__all__ = ["PaddleImpl"]

#: held while a prepared kernel runs (reentrant: second order runs kernels inside kernels)
_RUNNING = threading.RLock()


def _one_at_a_time(kernel: Callable[..., Any]) -> Callable[..., Any]:
    def serialized(*args: Any) -> Any:
        with _RUNNING:
            return kernel(*args)

    return serialized


def _leaf(x: Any) -> tuple[Any, bool]:
    """`(tensor to differentiate with respect to, whether an outer derivative is being taken)`.

    A tensor that is already differentiated (the input of the outer part of a second-order
    route) is used as it is, so that its graph goes on; any other gets a fresh leaf sharing its
    memory.
    """
    if not x.stop_gradient:
        return x, True
    leaf = x.detach()
    leaf.stop_gradient = False
    return leaf, False


def _pull(y: Any, xt: Any, cotangent: Any, create_graph: bool, retain: bool = True) -> Any:
    """`uᵀ J` (`u` a tensor like `y`, or `None` for a scalar `y`); zeros where `y` ignores `x`.

    `retain=False` for the last pass through a graph, which Paddle may then free as it goes.
    """
    if y.stop_gradient:
        return paddle.zeros_like(xt)
    (found,) = paddle.grad(
        [y],
        [xt],
        grad_outputs=None if cotangent is None else [cotangent],
        retain_graph=retain or create_graph,
        create_graph=create_graph,
        allow_unused=True,
    )
    return paddle.zeros_like(xt) if found is None else found


class PaddleImpl(BackendImpl):
    kind = PADDLE

    # -- primitives --------------------------------------------------------------------------

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        xt, nested = _leaf(x)
        y = f(xt, *contexts)

        def pullback(cotangents: Any) -> Any:
            k = cotangents.shape[0]
            if k == 0:
                return paddle.zeros([0, *x.shape], dtype=x.dtype)
            return paddle.stack([_pull(y, xt, cotangents[i], nested) for i in range(k)])

        return y, pullback

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        def gradient(x: Any, *contexts: Any) -> Any:
            xt, nested = _leaf(x)
            return _pull(f(xt, *contexts), xt, None, nested)

        return gradient

    def kernels(
        self, operator: Operator, f: Any, x: Any, tangents: tuple | None, contexts: tuple, spec: OutputSpec
    ) -> Kernels:
        found = super().kernels(operator, f, x, tangents, contexts, spec)
        return found._replace(plain=_one_at_a_time(found.plain), with_value=_one_at_a_time(found.with_value))

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc).strip()
        first = message.splitlines()[0] if message else type(exc).__name__
        if "doesn't have any grad op" in message:
            return FunctionNotDifferentiableError(
                f"{operator}: Paddle has no second derivative for an operation `f` uses ({first}). "
                "Use a first-order operator, or a second-order pair whose outer part needs none, "
                "such as `ad.SecondOrder(ad.AutoFiniteDiff(), ad.AutoPaddle())`."
            )
        if isinstance(exc, TypeError) and ("does not support ufuncs" in message or "__array__" in message):
            return FunctionNotDifferentiableError(
                f"{operator}: `f` called NumPy on a Paddle tensor ({first}). Under `ad.AutoPaddle()`, "
                "`f` receives `paddle.Tensor`s: write it with `xp = ad.namespace(x)`."
            )
        return None

    # -- native routes ----------------------------------------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            xt, nested = _leaf(x)
            y = f(xt, *contexts)
            return (y if nested else y.detach()), _pull(y, xt, None, nested, retain=False)

        def gradient(x: Any, *contexts: Any) -> Any:
            xt, nested = _leaf(x)
            return _pull(f(xt, *contexts), xt, None, nested, retain=False)

        return Kernels(gradient, value_and_gradient, {"mode": "reverse", "route": "paddle.grad"})

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        def products(y: Any, xt: Any, cotangents: tuple, nested: bool) -> tuple:
            if len(cotangents) == 1:  # 3 µs less than the loop (measured, n = 10)
                return (_pull(y, xt, cotangents[0], nested, retain=False),)
            last = len(cotangents) - 1
            return tuple([_pull(y, xt, u, nested, retain=i < last) for i, u in enumerate(cotangents)])

        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            xt, nested = _leaf(x)
            y = f(xt, *contexts)
            value = y if nested else y.detach()  # before the last pass, which may free the graph
            return value, products(y, xt, cotangents, nested)

        def pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple:
            xt, nested = _leaf(x)
            return products(f(xt, *contexts), xt, cotangents, nested)

        return Kernels(pullback, value_and_pullback, {"mode": "reverse", "route": "paddle.grad"})

    def rows(self, f: Any, x: Any, contexts: tuple, seeds: Any) -> tuple[Any, Any, bool]:
        """`(f(x), J, nested)` with `J`'s rows stacked: one recording, one `paddle.grad` per row."""
        xt, nested = _leaf(x)
        y = f(xt, *contexts)
        m = seeds.shape[0]
        if m == 0 or y.stop_gradient:
            return y, paddle.zeros([m, *x.shape], dtype=x.dtype), nested
        return y, paddle.stack([_pull(y, xt, seeds[i], nested) for i in range(m)]), nested

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        m = flat_size(spec.shape)
        seeds = paddle.reshape(paddle.eye(m, dtype=spec.dtype), [m, *spec.shape])  # made once, at prepare

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, rows, nested = self.rows(f, x, contexts, seeds)
            return (y if nested else y.detach()), paddle.reshape(rows, [*spec.shape, *x.shape])

        def jacobian(x: Any, *contexts: Any) -> Any:
            return value_and_jacobian(x, *contexts)[1]

        return Kernels(jacobian, value_and_jacobian, {"mode": "reverse", "route": "paddle.grad"})

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        # Pullbacks of the output basis, then products: Paddle's own forward mode fails (above).
        m, n = flat_size(spec.shape), flat_size(tuple(x.shape))
        seeds = paddle.reshape(paddle.eye(m, dtype=spec.dtype), [m, *spec.shape])

        def value_and_pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            y, rows, nested = self.rows(f, x, contexts, seeds)
            jacobian = paddle.reshape(rows, [m, n])
            products = tuple(
                paddle.reshape(paddle.matmul(jacobian, paddle.reshape(t, [n])), spec.shape) for t in tangents
            )
            return (y if nested else y.detach()), products

        def pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            return value_and_pushforward(x, tangents, *contexts)[1]

        return Kernels(pushforward, value_and_pushforward, {"mode": "one pullback per output", "route": "paddle.grad"})

    native = {
        GRADIENT: native_gradient,
        PULLBACK: native_pullback,
        JACOBIAN: native_jacobian,
        PUSHFORWARD: native_pushforward,
    }
