"""Finite differences, written on the array API: runs on NumPy, JAX, torch, ... arrays alike.

It needs no AD library, which makes it the reference backend of the test suite and the backend
of last resort for black-box functions. Forward mode only: a pullback costs one pushforward per
input (the generic emulation in `BackendImpl.vjp`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
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

from . import AutoFiniteDiff, is_dask_client

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


class _Points:
    """`f` at perturbed points of `x`, each given by a spec of a few numbers; picklable.

    `make(arrays, spec)` builds a point from the arrays shared by every point (`x` first: the
    spec `None` is `x` itself). A task of an executor carries `f`, its contexts and these arrays
    once (a Dask cluster receives them once in all) and a chunk of specs, never whole points.
    """

    def __init__(
        self, f: Callable[..., Any], contexts: tuple, make: Callable[[tuple, Any], Any], arrays: tuple
    ) -> None:
        self.f, self.contexts, self.make, self.arrays = f, contexts, make, arrays

    def __call__(self, chunk: tuple[int, int, list]) -> list[Any]:
        """The values at a chunk `(start, total, specs)`: the specs `start, start + 1, ...` of `total`."""
        start, total, specs = chunk
        values: list[Any] = []
        for spec in specs:
            point = self.arrays[0] if spec is None else self.make(self.arrays, spec)
            try:
                values.append(self.f(point, *self.contexts))
            except Exception as exc:
                exc.add_note(f"anydiff: raised by `f` at perturbed point {start + len(values)} of {total}.")
                raise
        return values


def _run(chunk: tuple[int, int, list], points: _Points) -> list[Any]:
    """A Dask task: `points` arrives scattered, resolved by the worker."""
    return points(chunk)


def _column(arrays: tuple, spec: tuple[int, Any]) -> Any:
    """`x + s h_j e_j` for the spec `(j, s)`."""
    x, xs, steps, index = arrays
    j, s = spec
    xp = namespace(x)
    return xp.reshape(xp.where(index == j, xs + s * steps[j], xs), x.shape)


def _direction(arrays: tuple, spec: tuple[int, Any]) -> Any:
    """`x + s h_i t_i` for the spec `(i, s)`."""
    _, xs, steps, tangents = arrays
    i, s = spec
    return xs + (s * steps[i]) * tangents[i]


def _corner(arrays: tuple, spec: tuple[Any, Any, Any, Any]) -> Any:
    """`x + (s a_i + t b_j)` for the spec `(i, s, j, t)`; `None` drops a term, an imaginary `s` (the
    complex method) starts from `x` as a complex array.

    `x + (a - b)` rather than `(x + a) - b`: the diagonal's `a - a` is exactly zero.
    """
    x, xs, a, b = arrays
    i, s, j, t = spec
    if i is None:
        return x + t * b[j]
    step = s * a[i] if j is None else s * a[i] + t * b[j]
    return (xs if isinstance(s, complex) else x) + step


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

    def evaluate(
        self, f: Callable[..., Any], contexts: tuple, make: Callable[[tuple, Any], Any], arrays: tuple, specs: list
    ) -> list[Any]:
        """`f` at the point of each spec (`_Points`), in order; through the executor when there is one.

        With an executor, the specs go in chunks, two per worker: one task per chunk, which
        carries `f`, the contexts and the arrays the points are made of; a Dask `Client` receives
        them once, scattered to its workers, and its tasks carry only their specs. If an
        evaluation fails, the chunks not yet started are cancelled and the original exception is
        raised, with a note giving the point's index.
        """
        points = _Points(f, contexts, make, arrays)
        total = len(specs)
        if self.executor is None:
            return points((0, total, specs))
        client: Any = self.executor if is_dask_client(self.executor) else None
        workers = sum(client.nthreads().values()) if client is not None else _pool_size(self.executor)
        count = min(total, 2 * max(1, workers))  # two chunks per worker, sizes within one
        bounds = [total * c // count for c in range(count + 1)]
        chunks = [(start, total, specs[start:stop]) for start, stop in zip(bounds, bounds[1:], strict=False)]
        futures: list[Any] = []
        try:
            if client is None:
                from concurrent.futures import as_completed

                futures = [self.executor.submit(points, chunk) for chunk in chunks]
                for future in as_completed(futures):
                    future.result()  # raises the first failure as soon as it happens
                results = [future.result() for future in futures]
            else:
                shared = client.scatter(points, broadcast=True, hash=False)
                futures = client.map(_run, chunks, points=shared, pure=False)
                results = client.gather(futures)  # stops at the first failure
        except Exception as exc:
            for future in futures:
                future.cancel()
            exc.add_note(
                f"anydiff: finite differences evaluated through {type(self.executor).__name__}; the "
                "chunks of points not yet started were cancelled."
            )
            raise
        return [value for chunk_values in results for value in chunk_values]

    def differences(
        self,
        f: Callable[..., Any],
        x: Any,
        contexts: tuple,
        k: int,
        make: Callable[[tuple, Any], Any],
        arrays: tuple,
        steps: Any,
    ) -> tuple[Any, Any]:
        """`(f(x), D)` with `D[i]` the difference quotient along direction `i` of `k`.

        `make(arrays, (i, s))` is `x + s * steps[i] * direction_i` for `s` in `1, -1, 1j`.
        """
        xp = namespace(x)
        method = self.method
        if method == "forward":
            values = self.evaluate(f, contexts, make, arrays, [None, *((i, 1) for i in range(k))])
            y, rest = values[0], values[1:]
            diffs = xp.stack(rest) - y if k else None
        elif method == "central":
            both = [None, *((i, 1) for i in range(k)), *((i, -1) for i in range(k))]
            values = self.evaluate(f, contexts, make, arrays, both)
            y = values[0]
            diffs = xp.stack(values[1 : k + 1]) - xp.stack(values[k + 1 :]) if k else None
            steps = 2 * steps
        else:
            values = self.evaluate(f, contexts, make, arrays, [(i, 1j) for i in range(k)]) if k else []
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
        arrays = (x, self.complex_input(xp, x), steps, tangents)
        return self.differences(f, x, contexts, k, _direction, arrays, steps)

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
        arrays = (x, xs, steps, xp.arange(n, device=device(x)))
        return self.differences(f, x, contexts, n, _column, arrays, steps)

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
        arrays = (x, self.complex_input(xp, x), a, b)
        if self.method == "central":
            corners = [(i, s, j, t) for i, j in pairs for s, t, _ in _CORNERS]
            values = self.evaluate(f, contexts, _corner, arrays, [None, *corners])
            y = values[0]
            at = xp.reshape(xp.stack(values[1:]), (count, 4, *y.shape))
            d = sum(sign * at[:, c] for c, (_, _, sign) in enumerate(_CORNERS)) / 4
        elif self.method == "forward":
            p, q = len(a), len(b)
            singles: list[tuple] = [(i, 1, None, None) for i in range(p)]
            if not symmetric:
                singles += [(None, None, j, 1) for j in range(q)]
            both = [(i, 1, j, 1) for i, j in pairs]
            values = self.evaluate(f, contexts, _corner, arrays, [None, *singles, *both])
            y = values[0]
            at_a = xp.stack(values[1 : p + 1])
            at_b = at_a if symmetric else xp.stack(values[p + 1 : p + q + 1])
            at_ab = xp.stack(values[-count:])
            d = at_ab - xp.take(at_a, first, axis=0) - xp.take(at_b, second, axis=0) + y
        else:
            points = [(i, 1j, j, t) for i, j in pairs for t in (1, -1)]
            values = self.evaluate(f, contexts, _corner, arrays, [None, *points])
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


def _pool_size(executor: Any) -> int:
    """The workers of a `concurrent.futures` pool (its `_max_workers`), else this machine's cores."""
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 1


def _rows(xp: Any, stacked: Any) -> list[Any]:
    """The slices of `stacked` along its first axis."""
    if hasattr(xp, "unstack"):  # array API 2023.12
        return list(xp.unstack(stacked))
    return [stacked[i] for i in range(stacked.shape[0])]
