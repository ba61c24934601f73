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
from typing import Any, NamedTuple

import autograd
import autograd.numpy as anp
import numpy as np
from autograd.extend import defjvp, defvjp, primitive
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
    register_namespace,
)

__all__ = ["AutogradImpl", "AutogradNamespace", "autograd_namespace"]


# -- the array-API namespace over autograd.numpy ---------------------------------------------------


def _axes(ndim: int, axis: int | Sequence[int] | None) -> list[int]:
    if axis is None:
        return list(range(ndim))
    return [a % ndim for a in ((axis,) if isinstance(axis, int) else axis)]


def _along(x: Any, axis: int, index: Any) -> Any:
    """`x[..., index, ...]` with `index` at position `axis` (indexing has autograd derivatives)."""
    return x[(slice(None),) * (axis % anp.ndim(x)) + (index,)]


def _flip(x: Any, /, *, axis: int | Sequence[int] | None = None) -> Any:
    key = [slice(None)] * anp.ndim(x)
    for a in _axes(anp.ndim(x), axis):
        key[a] = slice(None, None, -1)
    return x[tuple(key)]


def _concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    if axis is None:
        return anp.concatenate([anp.ravel(a) for a in arrays])
    return anp.concatenate(arrays, axis=axis)


def _cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    axis = 0 if axis is None else axis
    x = x if dtype is None else anp.astype(x, dtype)
    out = anp.cumsum(x, axis=axis)
    if include_initial:
        out = anp.concatenate([anp.zeros_like(_along(x, axis, slice(0, 1))), out], axis=axis)
    return out


@primitive
def _cumprod(x: Any, axis: int) -> Any:
    return np.cumprod(x, axis=axis)


# d(prod_{j<=i} x_j)/dx_k = prod_i / x_k for k <= i; undefined where x_k = 0 (as in TensorFlow).
defvjp(_cumprod, lambda ans, x, axis: lambda g: np.flip(np.cumsum(np.flip(g * ans, axis), axis), axis) / x)
defjvp(_cumprod, lambda g, ans, x, axis: ans * np.cumsum(g / x, axis=axis))


def _cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    axis = 0 if axis is None else axis % anp.ndim(x)
    x = x if dtype is None else anp.astype(x, dtype)
    out = _cumprod(x, axis)
    if include_initial:
        out = anp.concatenate([anp.ones_like(_along(x, axis, slice(0, 1))), out], axis=axis)
    return out


def _var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    mean = anp.mean(x, axis=axis, keepdims=True)
    count = anp.size(x) // anp.size(mean)
    return anp.sum(anp.abs(x - mean) ** 2, axis=axis, keepdims=keepdims) / (count - correction)


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    return _along(x, 0 if axis is None else axis, np.asarray(indices))


def _take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    axis %= anp.ndim(x)
    grid = list(np.indices(np.shape(indices), sparse=True))
    grid[axis] = np.asarray(indices)
    return x[tuple(grid)]


def _asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None) -> Any:
    if isinstance(obj, ArrayBox):
        return obj if dtype is None or obj.dtype == dtype else anp.astype(obj, dtype)
    return anp.array(obj, dtype=dtype)


def _broadcast_to(x: Any, /, shape: tuple[int, ...]) -> Any:
    # autograd's derivative of `broadcast_to` cannot add leading axes: add them by reshaping.
    return anp.broadcast_to(anp.reshape(x, (1,) * (len(shape) - anp.ndim(x)) + anp.shape(x)), shape)


def _broadcast_arrays(*arrays: Any) -> list[Any]:
    shape = np.broadcast_shapes(*(anp.shape(a) for a in arrays))
    return [_broadcast_to(a, shape) for a in arrays]


def _diagonal(x: Any, /, *, offset: int = 0) -> Any:
    # By indexing: autograd's `diagonal` differentiates offset 0 on the first two axes only.
    rows, cols = anp.shape(x)[-2:]
    start_row, start_col = max(-offset, 0), max(offset, 0)
    k = max(min(rows - start_row, cols - start_col), 0)
    return x[..., np.arange(start_row, start_row + k), np.arange(start_col, start_col + k)]


def _svdvals(x: Any, /) -> Any:
    return anp.linalg.svd(x, full_matrices=False)[1]  # autograd differentiates reduced SVDs only


def _unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    return tuple(_along(x, axis, i) for i in range(anp.shape(x)[axis]))


def _clip(x: Any, /, min: Any = None, max: Any = None) -> Any:  # noqa: A002 (array-API names)
    if min is not None:
        x = anp.maximum(x, min)
    if max is not None:
        x = anp.minimum(x, max)
    return x


def _sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    # `sort` of the negated values keeps equal elements in their order when descending.
    return -anp.sort(-x, axis=axis, kind="stable") if descending else anp.sort(x, axis=axis, kind="stable")


def _argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    return anp.argsort(-x if descending else x, axis=axis, kind="stable")


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    return anp.sum(anp.conj(x1) * x2, axis=axis)


def _matrix_transpose(x: Any, /) -> Any:
    return anp.swapaxes(x, -1, -2)


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    a = anp.abs(x)
    if ord == 2:
        return anp.sqrt(anp.sum(a * a, axis=axis, keepdims=keepdims))
    if ord == np.inf:
        return anp.max(a, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return anp.min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        return anp.sum(a != 0, axis=axis, keepdims=keepdims).astype(a.dtype)
    if ord == 1:
        return anp.sum(a, axis=axis, keepdims=keepdims)
    return anp.sum(a**ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    if ord == "fro":
        out = anp.sqrt(anp.sum(anp.abs(x) ** 2, axis=(-2, -1)))
    elif ord in ("nuc", 2, -2):
        s = _svdvals(x)
        out = {"nuc": anp.sum, 2: anp.max, -2: anp.min}[ord](s, axis=-1)
    else:  # 1, -1 (column sums), inf, -inf (row sums)
        sums = anp.sum(anp.abs(x), axis=-2 if ord in (1, -1) else -1)
        out = anp.max(sums, axis=-1) if ord > 0 else anp.min(sums, axis=-1)
    return out[..., None, None] if keepdims else out


def _matrix_power(x: Any, n: int, /) -> Any:
    if n < 0:
        x, n = anp.linalg.inv(x), -n
    result = anp.broadcast_to(np.eye(anp.shape(x)[-1], dtype=x.dtype), anp.shape(x))
    while n:  # square-and-multiply
        if n & 1:
            result = anp.matmul(result, x)
        x, n = anp.matmul(x, x), n >> 1
    return result


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class _Linalg:
    """The array API's `linalg` extension over `autograd.numpy.linalg`."""

    cholesky = staticmethod(
        lambda x, /, *, upper=False: _matrix_transpose(anp.linalg.cholesky(x)) if upper else anp.linalg.cholesky(x)
    )
    cross = staticmethod(lambda x1, x2, /, *, axis=-1: anp.cross(x1, x2, axis=axis))
    det = staticmethod(anp.linalg.det)
    diagonal = staticmethod(_diagonal)
    eigh = staticmethod(lambda x, /: EighResult(*anp.linalg.eigh(x)))
    eigvalsh = staticmethod(lambda x, /: anp.linalg.eigh(x)[0])
    inv = staticmethod(anp.linalg.inv)
    matmul = staticmethod(anp.matmul)
    matrix_norm = staticmethod(_matrix_norm)
    matrix_power = staticmethod(_matrix_power)
    matrix_rank = staticmethod(np.linalg.matrix_rank)
    matrix_transpose = staticmethod(_matrix_transpose)
    outer = staticmethod(lambda x1, x2, /: anp.outer(x1, x2))
    pinv = staticmethod(lambda x, /, *, rtol=None: anp.linalg.pinv(x) if rtol is None else anp.linalg.pinv(x, rtol))
    qr = staticmethod(np.linalg.qr)  # autograd has no derivative for it
    slogdet = staticmethod(anp.linalg.slogdet)
    solve = staticmethod(anp.linalg.solve)
    svd = staticmethod(lambda x, /, *, full_matrices=True: anp.linalg.svd(x, full_matrices=full_matrices))
    svdvals = staticmethod(_svdvals)
    tensordot = staticmethod(lambda x1, x2, /, *, axes=2: anp.tensordot(x1, x2, axes))
    trace = staticmethod(
        lambda x, /, *, offset=0, dtype=None: anp.sum(_diagonal(x, offset=offset), axis=-1, dtype=dtype)
    )
    vecdot = staticmethod(_vecdot)
    vector_norm = staticmethod(_vector_norm)


class AutogradNamespace:
    """The array-API namespace (2023.12) over `autograd.numpy`: what `ad.namespace(box)` returns.

    NumPy 2 already follows the array API, so every name not defined here is `autograd.numpy`'s
    function of the same name. The ones defined here are those whose autograd version lacks a
    derivative (`cumulative_sum`, `matrix_transpose`, `vecdot`, `take`, `flip`, `copysign`,
    `linalg.vector_norm`, ...) or whose array-API arguments autograd's derivative rules do not
    know (`std(correction=)`, `reshape(copy=)`, `sort(descending=)`, `linalg.cholesky(upper=)`).
    autograd's `ArrayBox` has no `.mT`: write `xp.matrix_transpose(x)`.

    Example:
        >>> import autograd, numpy as np, anydiff as ad
        >>> def f(x):
        ...     xp = ad.namespace(x)
        ...     return xp.sum(xp.cumulative_sum(x) ** 2)
        >>> autograd.grad(f)(np.array([1.0, 2.0]))
        array([8., 6.])
    """

    __array_api_version__ = "2023.12"

    asarray = staticmethod(_asarray)
    argsort = staticmethod(_argsort)
    broadcast_arrays = staticmethod(_broadcast_arrays)
    broadcast_to = staticmethod(_broadcast_to)
    clip = staticmethod(_clip)
    concat = staticmethod(_concat)
    copysign = staticmethod(lambda x1, x2, /: anp.where(np.signbit(x2), -anp.abs(x1), anp.abs(x1)))
    cumulative_prod = staticmethod(_cumulative_prod)
    cumulative_sum = staticmethod(_cumulative_sum)
    flip = staticmethod(_flip)
    linalg = _Linalg()
    matrix_transpose = staticmethod(_matrix_transpose)
    positive = staticmethod(lambda x, /: x)
    reshape = staticmethod(lambda x, /, shape, *, copy=None: anp.reshape(x, shape))
    sort = staticmethod(_sort)
    std = staticmethod(
        lambda x, /, *, axis=None, correction=0.0, keepdims=False: anp.sqrt(
            _var(x, axis=axis, correction=correction, keepdims=keepdims)
        )
    )
    take = staticmethod(_take)
    take_along_axis = staticmethod(_take_along_axis)
    unstack = staticmethod(_unstack)
    var = staticmethod(_var)
    vecdot = staticmethod(_vecdot)

    def __getattr__(self, name: str) -> Any:
        value = getattr(anp, name)
        # Kept as an attribute: a miss that reaches `__getattr__` costs 1.6 µs, a hit 0.05 µs.
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return "<anydiff's array-API namespace for autograd>"


#: the namespace `ad.namespace` returns for autograd's boxes
autograd_namespace = AutogradNamespace()
register_namespace(ArrayBox, lambda a: autograd_namespace)


# -- differentiation -------------------------------------------------------------------------------


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
    return np.stack([np.asarray(a) for a in arrays])


class AutogradImpl(BackendImpl):
    kind = array_kind(np.zeros(()))

    # -- composable primitives ------------------------------------------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        push = autograd.make_jvp(f)(x, *contexts)
        pairs = [push(t) for t in tangents]
        return pairs[0][0], _stack([ty for _, ty in pairs])

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        pull, y = autograd.make_vjp(f)(x, *contexts)
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
        maker, seed = autograd.make_vjp(f), np.ones((), dtype=spec.dtype)

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            pull, y = maker(x, *contexts)
            return y, pull(seed)

        def gradient(x: Any, *contexts: Any) -> Any:
            return maker(x, *contexts)[0](seed)

        return self._kernels(gradient, value_and_gradient, {"mode": "reverse"}, f, x, contexts, spec)

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        maker = autograd.make_vjp(f)

        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            pull, y = maker(x, *contexts)
            return y, tuple(map(pull, cotangents))

        def pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple:
            return tuple(map(maker(x, *contexts)[0], cotangents))

        return self._kernels(pullback, value_and_pullback, {"mode": "reverse"}, f, x, contexts, spec)

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        maker = autograd.make_jvp(f)

        def value_and_pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            push = maker(x, *contexts)
            pairs = [push(t) for t in tangents]
            return pairs[0][0], tuple([ty for _, ty in pairs])

        def pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            push = maker(x, *contexts)
            return tuple([push(t)[1] for t in tangents])

        info = {"mode": "forward"}
        return self._kernels(pushforward, value_and_pushforward, info, f, x, contexts, spec)

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        maker, seed = autograd.make_jvp(f), np.ones((), dtype=x.dtype)

        def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return maker(x, *contexts)(seed)

        def derivative(x: Any, *contexts: Any) -> Any:
            return maker(x, *contexts)(seed)[1]

        return self._kernels(derivative, value_and_derivative, {"mode": "forward"}, f, x, contexts, spec)

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        x_shape, y_shape = tuple(x.shape), spec.shape
        n, m = flat_size(x_shape), flat_size(y_shape)
        forward = 2 * n <= m
        if forward:
            maker, seeds = autograd.make_jvp(f), np.eye(n, dtype=x.dtype).reshape(n, *x_shape)

            def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
                push = maker(x, *contexts)
                pairs = [push(e) for e in seeds]
                columns = _stack([ty for _, ty in pairs]).reshape(n, m)
                return pairs[0][0], columns.T.reshape((*y_shape, *x_shape))

        else:
            maker, seeds = autograd.make_vjp(f), np.eye(m, dtype=spec.dtype).reshape(m, *y_shape)

            def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
                pull, y = maker(x, *contexts)
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
    ) -> Kernels:
        """The kernels, quiet where autograd would warn, and with results of the inputs' dtype.

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
        return Kernels(plain, with_value, info)

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
