"""Finite differences, written on the array API: runs on NumPy, JAX, torch, ... arrays alike.

It needs no AD library, which makes it the reference backend of the test suite and the backend
of last resort for black-box functions. Forward mode only: a pullback costs one pushforward per
input (the generic emulation in `BackendImpl.vjp`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from .._arrays import namespace
from .._backend import AutoFiniteDiff
from .._impl import BackendImpl
from .._kernels import Kernels, OutputSpec, device, flat_size

__all__ = ["FiniteDiffImpl"]

# Relative steps that balance truncation against rounding error: the truncation error is
# O(h) for forward and O(h²) for central differences, the rounding error O(eps / h).
_STEP_EXPONENT = {"forward": 1 / 2, "central": 1 / 3}
_COMPLEX_STEP = 1e-20


class _Bound:
    """`f` with its contexts bound, picklable for process-based executors."""

    def __init__(self, f: Callable[..., Any], contexts: tuple) -> None:
        self.f, self.contexts = f, contexts

    def __call__(self, point: Any) -> Any:
        return self.f(point, *self.contexts)


class FiniteDiffImpl(BackendImpl):
    kind = None
    mutation = True

    def __init__(self, backend: AutoFiniteDiff) -> None:
        super().__init__(backend)
        self.method = backend.method
        self.step = backend.step
        self.executor = backend.executor

    def relative_step(self, xp: Any, dtype: Any) -> float:
        if self.step is not None:
            return float(self.step)
        if self.method == "complex":
            return _COMPLEX_STEP
        return float(xp.finfo(dtype).eps) ** _STEP_EXPONENT[self.method]

    def evaluate(self, f: Callable[..., Any], points: Iterable[Any], contexts: tuple) -> list[Any]:
        """`f` at each point, in order; through the executor when there is one.

        With an executor, `f` and its contexts travel once per chunk of points (process pools)
        or once per call (Dask pickles a task's function once). If an evaluation fails, the
        pending ones are cancelled (`Executor.map` cancels what it has not yielded) and the
        original exception is raised with a note giving the point's index.
        """
        bound = _Bound(f, contexts)
        if self.executor is None:
            return [bound(p) for p in points]
        points = list(points)
        chunksize = max(1, len(points) // (4 * (os.cpu_count() or 1)))
        values: list[Any] = []
        try:
            values.extend(self.executor.map(bound, points, chunksize=chunksize))
        except Exception as exc:
            exc.add_note(
                f"anydiff: raised by `f` at perturbed point {len(values)} of {len(points)} "
                f"(finite differences evaluated through {type(self.executor).__name__}); the "
                "remaining evaluations were cancelled."
            )
            raise
        return values

    def differences(
        self,
        f: Callable[..., Any],
        x: Any,
        contexts: tuple,
        k: int,
        point: Callable[[int, Any], Any],
        steps: Any,
    ) -> tuple[Any, Any]:
        """`(f(x), D)` with `D[i]` the difference quotient along direction `i` of `k`.

        `point(i, s)` is `x + s * steps[i] * direction_i` for `s` in `1, -1, 1j`.
        """
        xp = namespace(x)
        method = self.method
        if method == "forward":
            values = self.evaluate(f, _chain(x, (point(i, 1) for i in range(k))), contexts)
            y, rest = values[0], values[1:]
            diffs = xp.stack(rest) - y if k else None
        elif method == "central":
            both = (point(i % k, 1 if i < k else -1) for i in range(2 * k))
            values = self.evaluate(f, _chain(x, both), contexts)
            y = values[0]
            diffs = xp.stack(values[1 : k + 1]) - xp.stack(values[k + 1 :]) if k else None
            steps = 2 * steps
        else:
            values = self.evaluate(f, (point(i, 1j) for i in range(k)), contexts) if k else []
            y = xp.real(values[0]) if k else f(x, *contexts)
            diffs = xp.imag(xp.stack(values)) if k else None
        if diffs is None:
            return y, xp.zeros((0, *y.shape), dtype=y.dtype)
        return y, diffs / xp.reshape(steps, (k,) + (1,) * len(y.shape))

    def complex_input(self, xp: Any, x: Any) -> Any:
        if self.method != "complex":
            return x
        return xp.astype(x, xp.complex128 if x.dtype == xp.float64 else xp.complex64)

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        xp = namespace(x)
        k = tangents.shape[0]
        base = self.relative_step(xp, x.dtype)
        flat = xp.reshape(tangents, (k, -1))
        if flat.shape[1] == 0:  # an empty `x`: every directional derivative is zero
            y = f(x, *contexts)
            return y, xp.zeros((k, *y.shape), dtype=y.dtype)
        # One step per direction, relative to the size of x and of the direction.
        tnorm = xp.max(xp.abs(flat), axis=1)
        tnorm = tnorm + xp.astype(tnorm == 0, tnorm.dtype)
        steps = base * (1 + xp.max(xp.abs(x))) / tnorm
        xs = self.complex_input(xp, x)
        return self.differences(f, x, contexts, k, lambda i, s: xs + (s * steps[i]) * tangents[i], steps)

    def columns(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Any]:
        """`(f(x), columns)`: every partial derivative, shape `(x.size,) + y.shape`.

        Each coordinate gets its own step, relative to its own magnitude, and the step actually
        represented in floating point, `(x + h) - x`, divides the difference.
        """
        xp = namespace(x)
        n = flat_size(tuple(x.shape))
        x_flat = xp.reshape(x, (-1,))
        base = self.relative_step(xp, x.dtype)
        steps = base * (1 + xp.abs(x_flat))
        if self.method != "complex":
            steps = (x_flat + steps) - x_flat
        xs = xp.reshape(self.complex_input(xp, x), (-1,))
        index = xp.arange(n, device=device(x))

        def point(j: int, s: Any) -> Any:
            return xp.reshape(xp.where(index == j, xs + s * steps[j], xs), x.shape)

        return self.differences(f, x, contexts, n, point, steps)

    def prepare_gradient(self, f: Any, x: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, cols = self.columns(f, x, contexts)
            return y, namespace(x).reshape(cols, x.shape)

        return Kernels(lambda x, *c: value_and_gradient(x, *c)[1], value_and_gradient, {"mode": self.method})

    def prepare_jacobian(self, f: Any, x: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            xp = namespace(x)
            y, cols = self.columns(f, x, contexts)
            n, m = flat_size(tuple(x.shape)), flat_size(tuple(y.shape))
            jac = xp.matrix_transpose(xp.reshape(cols, (n, m)))
            return y, xp.reshape(jac, (*y.shape, *x.shape))

        return Kernels(lambda x, *c: value_and_jacobian(x, *c)[1], value_and_jacobian, {"mode": self.method})


def _chain(first: Any, rest: Iterable[Any]) -> Iterable[Any]:
    yield first
    yield from rest
