"""Finite differences, written on the array API: runs on NumPy, JAX, torch, ... arrays alike.

It needs no AD library, which makes it the reference backend of the test suite and the backend
of last resort for black-box functions. Forward mode only: a pullback costs one pushforward per
input (the generic emulation in `BackendImpl.vjp`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from anydiff.extend import (
    GRADIENT,
    HESSIAN,
    HVP,
    JACOBIAN,
    SECOND_DERIVATIVE,
    BackendImpl,
    Kernels,
    OutputSpec,
    basis,
    device,
    flat_size,
    namespace,
    unstack,
)

from . import AutoFiniteDiff

__all__ = ["FiniteDiffImpl"]

# Relative steps that balance truncation against rounding error: the truncation error is
# O(h) for forward and O(h²) for central differences, the rounding error O(eps / h).
_STEP_EXPONENT = {"forward": 1 / 2, "central": 1 / 3}
_COMPLEX_STEP = 1e-20
# Second differences: truncation O(h²) (central) or O(h) (forward) against rounding
# O(eps / h²). The complex method differences an exact complex-step derivative along a real
# central step, whose rounding error is O(eps / h) again.
_SECOND_STEP_EXPONENT = {"forward": 1 / 3, "central": 1 / 4, "complex": 1 / 3}
# the four corners of a central mixed difference and their signs in the quotient
_CORNERS = ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))


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
        self.traceable = backend.executor is None
        self.complex_step = backend.method == "complex"

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

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, cols = self.columns(f, x, contexts)
            return y, namespace(x).reshape(cols, x.shape)

        return Kernels(lambda x, *c: value_and_gradient(x, *c)[1], value_and_gradient, {"mode": self.method})

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            xp = namespace(x)
            y, cols = self.columns(f, x, contexts)
            n, m = flat_size(tuple(x.shape)), flat_size(tuple(y.shape))
            jac = xp.matrix_transpose(xp.reshape(cols, (n, m)))
            return y, xp.reshape(jac, (*y.shape, *x.shape))

        return Kernels(lambda x, *c: value_and_jacobian(x, *c)[1], value_and_jacobian, {"mode": self.method})

    # -- second order: mixed second differences of `f` itself ---------------------------------

    def second_differences(
        self, f: Callable[..., Any], x: Any, contexts: tuple, left: Any, right: Any, pairs: list[tuple[int, int]]
    ) -> tuple[Any, Any]:
        """`(f(x), D)` with `D[p] ≈ aᵀ H b` for the `p`-th pair `(i, j)`, `a = left[i]`, `b = right[j]`.

        `H` is the second derivative of `f` at `x` (per output element); directions are stacked
        like tangents, and `right=None` means `right = left`, a symmetric set such as the basis
        of a Hessian. With `a`, `b` scaled to their steps `h`, `k`, `D` is
        `(f(x+a+b) - f(x+a-b) - f(x-a+b) + f(x-a-b)) / 4hk` (central),
        `(f(x+a+b) - f(x+a) - f(x+b) + f(x)) / hk` (forward), or
        `Im(f(x+ia+b) - f(x+ia-b)) / 2hk` (complex). Every point goes through `evaluate`.
        """
        xp = namespace(x)
        if not pairs:
            y = f(x, *contexts)
            return y, xp.zeros((0, *y.shape), dtype=y.dtype)
        symmetric = right is None
        right = left if symmetric else right
        complex_step = self.method == "complex"
        relative = float(xp.finfo(x.dtype).eps) ** _SECOND_STEP_EXPONENT[self.method]
        if self.step is not None and not complex_step:
            relative = self.step
        # A given `step` is the complex method's imaginary step; its real step keeps the default.
        h = _direction_steps(xp, x, left, (self.step or _COMPLEX_STEP) if complex_step else relative)
        k = _direction_steps(xp, x, right, relative) if complex_step or not symmetric else h
        ones = (1,) * len(x.shape)
        # Rows split once: indexing row by row would compile one op per index on JAX arrays.
        a = _rows(xp, left * xp.reshape(h, (-1, *ones)))
        b = _rows(xp, right * xp.reshape(k, (-1, *ones)))
        first = xp.asarray([i for i, _ in pairs], device=device(x))
        second = xp.asarray([j for _, j in pairs], device=device(x))
        count = len(pairs)
        if self.method == "central":
            # `x + (a - b)` rather than `(x + a) - b`: the diagonal's `a - a` is exactly zero.
            points = (x + (s * a[i] + t * b[j]) for i, j in pairs for s, t, _ in _CORNERS)
            values = self.evaluate(f, _chain(x, points), contexts)
            y = values[0]
            corners = xp.reshape(xp.stack(values[1:]), (count, 4, *y.shape))
            d = sum(sign * corners[:, c] for c, (_, _, sign) in enumerate(_CORNERS)) / 4
        elif self.method == "forward":
            p, q = len(a), len(b)
            right_singles = () if symmetric else (x + b[j] for j in range(q))
            singles = _chain(x, _chain_all((x + a[i] for i in range(p)), right_singles))
            values = self.evaluate(f, _chain_all(singles, (x + (a[i] + b[j]) for i, j in pairs)), contexts)
            y = values[0]
            at_a = xp.stack(values[1 : p + 1])
            at_b = at_a if symmetric else xp.stack(values[p + 1 : p + q + 1])
            at_ab = xp.stack(values[-count:])
            d = at_ab - xp.take(at_a, first, axis=0) - xp.take(at_b, second, axis=0) + y
        else:
            xs = self.complex_input(xp, x)
            points = (xs + (1j * a[i] + t * b[j]) for i, j in pairs for t in (1, -1))
            values = self.evaluate(f, _chain(x, points), contexts)
            y = values[0]
            both = xp.reshape(xp.stack(values[1:]), (count, 2, *y.shape))
            d = xp.imag(both[:, 0] - both[:, 1]) / 2
        scale = xp.take(h, first) * xp.take(k, second)
        return y, d / xp.reshape(scale, (-1, *((1,) * len(y.shape))))

    def native_second_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        def value_derivative_and_second_derivative(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            one = namespace(x).ones((1,), dtype=x.dtype, device=device(x))
            y, d2 = self.second_differences(f, x, contexts, one, None, [(0, 0)])
            return y, self.jvp(f, x, one, contexts)[1][0], d2[0]

        def second_derivative(x: Any, *contexts: Any) -> Any:
            one = namespace(x).ones((1,), dtype=x.dtype, device=device(x))
            return self.second_differences(f, x, contexts, one, None, [(0, 0)])[1][0]

        info = {"strategy": "second differences", "mode": self.method}
        return Kernels(second_derivative, value_derivative_and_second_derivative, info)

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        def hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            # (H t)_i = e_iᵀ H t: one mixed difference per coordinate and tangent
            xp = namespace(x)
            n, k = flat_size(tuple(x.shape)), len(tangents)
            pairs = [(i, j) for j in range(k) for i in range(n)]
            d = self.second_differences(f, x, contexts, basis(xp, x), xp.stack(tangents), pairs)[1]
            return unstack(xp.reshape(d, (k, *x.shape)), k)

        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            gradient = namespace(x).reshape(self.columns(f, x, contexts)[1], x.shape)
            return gradient, hvp(x, tangents, *contexts)

        return Kernels(hvp, gradient_and_hvp, {"strategy": "second differences", "mode": self.method})

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        n = flat_size(tuple(x.shape))
        upper = [(i, j) for i in range(n) for j in range(i, n)]  # H is symmetric: i <= j only

        def value_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            xp = namespace(x)
            y, d = self.second_differences(f, x, contexts, basis(xp, x), None, upper)
            # entry (i, j) is pair number lo * n - lo * (lo - 1) / 2 + hi - lo, lo = min(i, j)
            index = xp.arange(n, device=device(x))
            lo = xp.minimum(index[:, None], index[None, :])
            hi = xp.maximum(index[:, None], index[None, :])
            where = xp.reshape(lo * n - lo * (lo - 1) // 2 + hi - lo, (-1,))
            return y, xp.reshape(xp.take(d, where, axis=0), (*x.shape, *x.shape))

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            y, hessian = value_and_hessian(x, *contexts)
            return y, namespace(x).reshape(self.columns(f, x, contexts)[1], x.shape), hessian

        def hessian(x: Any, *contexts: Any) -> Any:
            return value_and_hessian(x, *contexts)[1]

        return Kernels(hessian, value_gradient_and_hessian, {"strategy": "second differences", "mode": self.method})

    native = {
        GRADIENT: native_gradient,
        JACOBIAN: native_jacobian,
        SECOND_DERIVATIVE: native_second_derivative,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }


def _direction_steps(xp: Any, x: Any, directions: Any, relative: float) -> Any:
    """One step per direction: `relative` to the size of `x` along it, over the direction's size."""
    k = directions.shape[0]
    flat = xp.reshape(directions, (k, -1))
    size = xp.max(xp.abs(flat), axis=1)
    size = size + xp.astype(size == 0, size.dtype)
    along = xp.max(xp.abs(flat * xp.reshape(x, (1, -1))), axis=1) / size
    return relative * (1 + along) / size


def _rows(xp: Any, stacked: Any) -> list[Any]:
    """The slices of `stacked` along its first axis."""
    if hasattr(xp, "unstack"):  # array API 2023.12
        return list(xp.unstack(stacked))
    return [stacked[i] for i in range(stacked.shape[0])]


def _chain_all(*parts: Iterable[Any]) -> Iterable[Any]:
    for part in parts:
        yield from part


def _chain(first: Any, rest: Iterable[Any]) -> Iterable[Any]:
    yield first
    yield from rest
