"""`hvp`: Hessian-vector products of a scalar function, batched over tangents.

Also home to what every second-order route shares: the choice of strategy for a pair
`(outer, inner)` of backend implementations (a plain backend is the pair `(b, b)`) and the
stacked products `H @ T` that `hessian` builds on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from .._core.arrays import namespace
from .._core.kernels import Kernels, OutputSpec, stack, unstacked
from .._core.operator import Operator
from .._core.prep import Prep
from .._core.prepare import prepare, reuse
from ..first_order.gradient import GRADIENT

if TYPE_CHECKING:
    from .._core.arrays import ArrayLike
    from .._core.backend import AbstractBackend
    from .._core.backend_impl import BackendImpl
    from .._core.contexts import Context

__all__ = ["gradient_and_hvp", "hvp", "prepare_hvp"]

FORWARD_OVER_REVERSE = "forward-over-reverse"
REVERSE_OVER_FORWARD = "reverse-over-forward"
REVERSE_OVER_REVERSE = "reverse-over-reverse"
FORWARD_OVER_FORWARD = "forward-over-forward"


def prepare_hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    y: ArrayLike | None = None,
) -> Prep:
    """`prepare_hvp(f, backend, x, tx, *contexts) -> Prep` for `hvp` and `gradient_and_hvp`.

    `prep.info["strategy"]` says how the products are computed: `"forward-over-reverse"`
    (pushforward of the gradient), `"reverse-over-reverse"`, `"reverse-over-forward"` or
    `"forward-over-forward"`, from the modes of the backend (or of the two parts of an
    `ad.SecondOrder(outer, inner)`).

    Example:
        >>> import numpy as np, anydiff as ad
        >>> f = lambda x: (x**3).sum()
        >>> prep = ad.prepare_hvp(f, ad.AutoFiniteDiff(), np.zeros(2), np.zeros(2))
        >>> ad.hvp(f, ad.AutoFiniteDiff(), np.array([1.0, 2.0]), np.array([1.0, 0.0]), prep=prep).round(5)
        array([6., 0.])
    """
    return prepare(HVP, f, backend, x, tx, contexts, y)


@overload
def hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: tuple[ArrayLike, ...],
    *contexts: Context,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ...]: ...


@overload
def hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike,
    *contexts: Context,
    prep: Prep | None = None,
) -> ArrayLike: ...


def hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    prep: Prep | None = None,
) -> ArrayLike | tuple[ArrayLike, ...]:
    """`hvp(f, backend, x, tx, *contexts) -> htx`: the Hessian-vector product `H(x) @ tx`, shaped like `x`.

    Args:
        f: `f(x, *contexts) -> y` with `y` a scalar (shape `()`).
        backend: the backend object, or `ad.SecondOrder(outer, inner)` to choose both parts.
        x: the point (NumPy, JAX, torch array or Python float).
        tx: one tangent shaped like `x`, or a tuple of them (computed in one batch).
        contexts: `ad.Constant(...)` / `ad.Cache(...)` arguments passed on to `f`.
        prep: the result of `ad.prepare_hvp` with arguments like these.

    Returns:
        `H @ tx` (a tuple of them for a tuple `tx`), the same kind of array as `x`. For an `x`
        of several dimensions, `H @ tx` contracts all of `tx`'s axes with the last `x.ndim` axes
        of the Hessian `ad.hessian` returns.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ad.hvp(lambda x: (x**3).sum(), ad.AutoFiniteDiff(), np.array([1.0, 2.0]), np.ones(2)).round(5)
        array([ 6., 12.])
    """
    p = prep if type(prep) is Prep else reuse(prep, HVP, f, backend, x, tx, contexts)
    result, single = p.plain(HVP, f, backend, x, contexts, None, tx)
    return result[0] if single else result


@overload
def gradient_and_hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: tuple[ArrayLike, ...],
    *contexts: Context,
    prep: Prep | None = None,
) -> tuple[ArrayLike, tuple[ArrayLike, ...]]: ...


@overload
def gradient_and_hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike,
    *contexts: Context,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike]: ...


def gradient_and_hvp(
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tx: ArrayLike | tuple[ArrayLike, ...],
    *contexts: Context,
    prep: Prep | None = None,
) -> tuple[ArrayLike, ArrayLike | tuple[ArrayLike, ...]]:
    """`gradient_and_hvp(f, backend, x, tx, *contexts) -> (g, htx)`: the gradient too; see `hvp`."""
    p = prep if type(prep) is Prep else reuse(prep, HVP, f, backend, x, tx, contexts)
    (g, result), single = p.with_value(HVP, f, backend, x, contexts, None, tx)
    return g, (result[0] if single else result)


def strategy(outer: BackendImpl, inner: BackendImpl) -> str:
    """How `outer` differentiates what `inner` computes, from the modes the two have.

    The first that applies: forward over reverse (a pushforward of the reverse-mode gradient,
    the cheapest), reverse over forward (the reverse-mode gradient of a directional
    derivative), reverse over reverse (a pullback of the gradient; `H` is symmetric), and
    forward over forward otherwise.
    """
    if outer.forward and inner.reverse:
        return FORWARD_OVER_REVERSE
    if outer.reverse and inner.forward:
        return REVERSE_OVER_FORWARD
    if outer.reverse and inner.reverse:
        return REVERSE_OVER_REVERSE
    return FORWARD_OVER_FORWARD


def evaluates_only(outer: BackendImpl) -> bool:
    """Whether `outer` only evaluates what it differentiates, never traces it.

    Finite differences (the backends without an array kind of their own) call the inner
    function at perturbed points, so the inner backend may hand them its fastest prepared
    kernel; an AD library needs a function its transforms can trace.
    """
    return outer.kind is None


def at_arrays(kernel: Callable[..., Any]) -> Callable[..., Any]:
    """`kernel(x, *rest)` called with `x` an array: finite differences of a 0-d `x` evaluate at
    NumPy scalars (NumPy's 0-d arithmetic returns them), which compiled kernels (PyTensor's) refuse."""

    def call(x: Any, *rest: Any) -> Any:
        return kernel(namespace(x).asarray(x), *rest)

    return call


def compiler(outer: BackendImpl, inner: BackendImpl) -> Callable[[Callable[..., Any], Any], Callable[..., Any]]:
    """The `compile` of the library that owns a pair's arrays (finite differences own none)."""
    return (inner if evaluates_only(outer) else outer).compile


def inner_gradient(
    outer: BackendImpl,
    inner: BackendImpl,
    f: Callable[..., Any],
    x: ArrayLike,
    contexts: tuple[Any, ...],
    spec: OutputSpec,
) -> Callable[..., Any]:
    """`gradient(x, *contexts)` computed by `inner` in the form `outer` can differentiate."""
    if evaluates_only(outer):
        return at_arrays(inner.kernels(GRADIENT, f, x, None, contexts, spec).plain)
    return inner.gradient_function(f)


def products(
    outer: BackendImpl,
    inner: BackendImpl,
    f: Callable[..., Any],
    x: ArrayLike,
    contexts: tuple[Any, ...],
    spec: OutputSpec,
) -> tuple[str, Callable[..., Any], Callable[..., Any]]:
    """`(strategy, hvps, gradient_and_hvps)` for the pair, uncompiled.

    `hvps(x, T, *contexts)` takes tangents stacked as `T`, shape `(k,) + x.shape`, and returns
    the `k` products stacked the same way; `gradient_and_hvps` returns `(gradient, products)`.
    The products are `J_g @ t` (the Jacobian of the gradient applied to `t`) for the forward
    strategies and `J_gᵀ @ t` for the reverse ones: equal, as the Hessian is symmetric, but to
    build the Hessian matrix itself the forward ones are its columns and the reverse ones its rows.
    """
    how = strategy(outer, inner)
    if how == REVERSE_OVER_FORWARD:
        return (how, *_reverse_over_forward(outer, inner, f))
    gradient = inner_gradient(outer, inner, f, x, contexts, spec)
    if how == REVERSE_OVER_REVERSE:

        def gradient_and_hvps(x: Any, tangents: Any, *contexts: Any) -> tuple[Any, Any]:
            g, pullback = outer.vjp(gradient, x, contexts)
            return g, pullback(tangents)

    else:  # forward over reverse or forward: a pushforward of the gradient

        def gradient_and_hvps(x: Any, tangents: Any, *contexts: Any) -> tuple[Any, Any]:
            return outer.jvp(gradient, x, tangents, contexts)

    def hvps(x: Any, tangents: Any, *contexts: Any) -> Any:
        return gradient_and_hvps(x, tangents, *contexts)[1]

    return how, hvps, gradient_and_hvps


def _reverse_over_forward(
    outer: BackendImpl, inner: BackendImpl, f: Callable[..., Any]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """`(hvps, gradient_and_hvps)` of `products` for reverse over forward."""
    outer_gradient = outer.gradient_function(f)

    def directional(x: Any, t: Any, *contexts: Any) -> Any:  # ∇f(x) · t, by the inner pushforward
        return inner.jvp(f, x, t[None], contexts)[1][0]

    gradient_of_directional = outer.gradient_function(directional)

    # One reverse pass per tangent: batching them would differentiate every directional
    # derivative in every pass, k times the work.
    def hvps(x: Any, tangents: Any, *contexts: Any) -> Any:
        # by index: a traced TensorFlow tensor cannot be iterated over
        return namespace(x).stack(
            [gradient_of_directional(x, tangents[i], *contexts) for i in range(tangents.shape[0])]
        )

    def gradient_and_hvps(x: Any, tangents: Any, *contexts: Any) -> tuple[Any, Any]:
        return outer_gradient(x, *contexts), hvps(x, tangents, *contexts)

    return hvps, gradient_and_hvps


def generic_hvp(
    impl: BackendImpl,
    f: Callable[..., Any],
    x: ArrayLike,
    tangents: tuple[ArrayLike, ...],
    contexts: tuple[Any, ...],
    spec: OutputSpec,
) -> Kernels:
    """Stack the tangents (a tuple, or one), compute the products by the pair's strategy,
    unstack them."""
    outer, inner, f = impl.parts(HVP, f)
    how, hvps, gradient_and_hvps = products(outer, inner, f, x, contexts, spec)

    def gradient_and_hvp(x: Any, tangents: Any, *contexts: Any) -> tuple[Any, Any]:
        g, stacked = gradient_and_hvps(x, stack(x, tangents), *contexts)
        return g, unstacked(stacked, tangents)

    def hvp(x: Any, tangents: Any, *contexts: Any) -> Any:
        return unstacked(hvps(x, stack(x, tangents), *contexts), tangents)

    compile = compiler(outer, inner)
    return Kernels(compile(hvp, x), compile(gradient_and_hvp, x), {"strategy": how}, single_tangent=True)


HVP = Operator("hvp", results=("x", "xs"), tangents="x", output="scalar", order=2, generic=generic_hvp)
