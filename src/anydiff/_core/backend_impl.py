"""`BackendImpl`: what a backend module implements, and the defaults it inherits.

A backend supplies one or two *primitives* — `jvp` (pushforward) and/or `vjp` (pullback), both
batched over a leading tangent axis — plus `compile`, its prepare-time specialisation (`jax.jit`,
`torch.compile`, or nothing). Every operator has a generic route written on those primitives in
its own module (`generic_gradient` in `first_order/gradient.py`, ...); where the library has a
faster route of its own, the backend lists it in its `native` table, keyed by the operator record:
`native = {GRADIENT: native_gradient}`. `kernels` is the one place that chooses between the two.

Conventions for everything in this module: arrays are the backend's own kind ("native"), already
converted by the caller; `contexts` is the tuple of unwrapped context values; tangents are stacked
along a new leading axis, shape `(k,) + x.shape` (pushforward) or `(k,) + y.shape` (pullback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from .arrays import ArrayKind, ArrayLike, array_kind, namespace
from .backend import AbstractBackend
from .errors import UnsupportedError
from .kernels import Kernels, OutputSpec, basis, device, flat_size
from .operator import Operator, Route

__all__ = ["BackendImpl"]


class BackendImpl:
    """How one AD library differentiates; subclass it and override `jvp` and/or `vjp`.

    Attributes:
        backend: the backend object (configuration) this implementation serves.
        kind: the array kind the library computes on; `None` means "whatever kind `x` is"
            (finite differences).
        accepts: other kinds the library's compiled functions take as they are (JAX takes
            NumPy arrays), so that no conversion is paid for them on each call.
        mutation: whether `f(y, x)` functions that write into `y` can be differentiated.
        prepares_per_call: whether `jvp` and `vjp` trace and compile `f` at every call
            (symbolic backends); callers that need many calls use the prepared kernels
            (`kernels(PUSHFORWARD, ...)`, ...) instead.
        tape_pullbacks: whether its prepared `pullback` of several cotangents (one recorded
            forward pass, one batched backward pass) beats its composable `jvp` and `vjp`
            primitives (an autograd tape against composable transforms); sparse Jacobians then use
            those pullbacks whenever rows need no more colors than columns.
        traceable: whether its kernels can run inside another library's traced and compiled
            functions (finite differences through an executor cannot).
        complex_step: whether it evaluates what it differentiates at complex points
            (complex-step finite differences).
        higher_order: whether it can differentiate derivatives that it computes in turn (its
            backward pass is itself recorded); without it (MyGrad) it cannot be the outer part of
            a `SecondOrder` over another library, whose derivatives it would see as constants.
        callback_threads: whether it may run the computations of a `DifferentiateWith` it calls on
            threads of its own (JAX: XLA's host callbacks).
        thread_bound: whether its arrays must not be made on such threads: MLX aborts the process
            when it frees them. A `SecondOrder` of a `callback_threads` outer part over a
            `thread_bound` inner part of another library is refused.
        native: the library's own routes, `{operator: route}` with
            `route(impl, f, x, tangents, contexts, spec) -> Kernels` (usually a method); an
            operator missing here takes its generic route.
    """

    kind: ClassVar[ArrayKind | None] = None
    accepts: ClassVar[frozenset[str]] = frozenset()
    mutation: ClassVar[bool] = False
    prepares_per_call: ClassVar[bool] = False
    tape_pullbacks: ClassVar[bool] = False
    traceable: bool = True
    complex_step: bool = False
    higher_order: ClassVar[bool] = True
    callback_threads: ClassVar[bool] = False
    thread_bound: ClassVar[bool] = False
    native: ClassVar[Mapping[Operator, Route]] = MappingProxyType({})

    def __init__(self, backend: AbstractBackend) -> None:
        self.backend = backend
        mode = getattr(backend, "mode", None)
        native_jvp = type(self).jvp is not BackendImpl.jvp
        native_vjp = type(self).vjp is not BackendImpl.vjp
        if not (native_jvp or native_vjp):
            raise TypeError(f"{type(self).__name__} must implement `jvp`, `vjp` or both.")
        #: a pushforward (resp. pullback) costs about one evaluation of `f`
        self.forward = native_jvp and mode != "reverse"
        self.reverse = native_vjp and mode != "forward"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.backend!r})"

    def available(self) -> bool:
        """Whether the library can run here (e.g. finds a device); imported already."""
        return True

    # -- primitives --------------------------------------------------------------------------

    def jvp(
        self, f: Callable[..., Any], x: ArrayLike, tangents: ArrayLike, contexts: tuple[Any, ...]
    ) -> tuple[ArrayLike, ArrayLike]:
        """`(f(x), J @ t for each t)`; default: the full Jacobian from `vjp`, then products."""
        xp = namespace(x)
        y, pullback = self.vjp(f, x, contexts)
        rows = pullback(basis(xp, y))  # row i of J, shape (m,) + x.shape
        m, n, k = flat_size(tuple(y.shape)), flat_size(tuple(x.shape)), tangents.shape[0]
        flat = xp.reshape(tangents, (k, n)) @ xp.matrix_transpose(xp.reshape(rows, (m, n)))
        return y, xp.reshape(flat, (k, *y.shape))

    def vjp(
        self, f: Callable[..., Any], x: ArrayLike, contexts: tuple[Any, ...]
    ) -> tuple[ArrayLike, Callable[[ArrayLike], ArrayLike]]:
        """`(f(x), pullback)` with `pullback(cotangents) -> u @ J for each u`; default from `jvp`."""
        xp = namespace(x)
        y, columns = self.jvp(f, x, basis(xp, x), contexts)  # column j of J, shape (n,) + y.shape
        m, n = flat_size(tuple(y.shape)), flat_size(tuple(x.shape))
        jacobian_t = xp.reshape(columns, (n, m))

        def pullback(cotangents: Any) -> Any:
            k = cotangents.shape[0]
            flat = xp.reshape(cotangents, (k, m)) @ xp.matrix_transpose(jacobian_t)
            return xp.reshape(flat, (k, *x.shape))

        return y, pullback

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        """`gradient(x, *contexts) -> ∇f(x)` for a scalar `f`, traceable by other transforms.

        The outer backend of a second-order pair differentiates it. Default: the gradient of
        `value_and_gradient_function`; backends override it with their library's own
        (`jax.grad`, `torch.func.grad`).
        """
        value_and_gradient = self.value_and_gradient_function(f)

        def gradient(x: Any, *contexts: Any) -> Any:
            return value_and_gradient(x, *contexts)[1]

        return gradient

    def value_and_gradient_function(self, f: Callable[..., Any]) -> Callable[..., tuple[ArrayLike, ArrayLike]]:
        """`value_and_gradient(x, *contexts) -> (f(x), ∇f(x))` from the primitives, traceable.

        A pullback of the seed 1 (reverse mode), or one pushforward per input (forward mode).
        """
        if self.reverse:

            def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
                y, pull = self.vjp(f, x, contexts)
                return y, pull(namespace(x).ones((1,), dtype=y.dtype, device=device(x)))[0]

        else:

            def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
                xp = namespace(x)
                y, columns = self.jvp(f, x, basis(xp, x), contexts)
                return y, xp.reshape(columns, x.shape)

        return value_and_gradient

    def compile(self, fn: Callable[..., Any], x: ArrayLike) -> Callable[..., Any]:
        """Specialise a derivative function for inputs like `x` at prepare time (jit).

        Default: unchanged.
        """
        return fn

    # -- evaluation helpers --------------------------------------------------------------------

    def output_spec(self, f: Callable[..., Any], x: ArrayLike, contexts: tuple[Any, ...]) -> OutputSpec:
        """Shape and dtype of `f(x, *contexts)`; default: evaluate `f` once."""
        y = f(x, *contexts)
        kind = self.kind or array_kind(x)
        if array_kind(y) is not kind:
            # What `f` returns is differentiated as the backend's arrays: anything else (a list,
            # a float, a NumPy array under torch) would fail later with a library's own message.
            raise TypeError(
                f"{self.backend!r}: `f` must return one array of the kind it receives "
                f"({kind.name}); it returned {type(y).__name__}. Build the result with "  # type: ignore[union-attr]
                "`xp = ad.namespace(x)` (e.g. `xp.stack([...])` for several values)."
            )
        return OutputSpec(tuple(y.shape), y.dtype)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        """An anydiff error explaining a library error raised while tracing `f`, or `None`."""
        return None

    def one_argument(self, f: Callable[..., Any], y: ArrayLike) -> Callable[..., Any]:
        """Turn `f(y, x, *contexts)`, which writes into `y`, into a function returning `y`."""
        if not self.mutation:
            raise UnsupportedError(
                f"{self.backend!r} cannot differentiate a two-argument function `f(y, x)`: its "
                "arrays cannot be written in place. Write `f(x)` returning `y`, or use "
                "`ad.AutoTorch()` or `ad.AutoFiniteDiff()`."
            )
        shape, dtype = tuple(y.shape), y.dtype

        def returning_output(x: Any, *contexts: Any) -> Any:
            xp = namespace(x)
            out = xp.empty(shape, dtype=dtype, device=device(x))
            f(out, x, *contexts)
            return out

        return returning_output

    # -- the size guard --------------------------------------------------------------------------

    #: what `program_size` counts, as shown in messages ("jaxpr equations", "graph nodes", ...)
    program_unit: ClassVar[str] = "operations"

    def max_program_size(self) -> int | None:
        """The largest program the backend compiles: its `max_program_size` option, if it has one.

        `None` turns the guard off (the default, for backends that compile nothing).
        """
        limit = getattr(self.backend, "max_program_size", None)
        return None if limit is None else int(limit)

    def program_size(self, f: Callable[..., Any], x: ArrayLike, contexts: tuple[Any, ...], limit: int) -> int | None:
        """The size of the program `f(x, *contexts)` traces to, in `program_unit`s; `None` if unknown.

        Called at preparation, before anything is compiled, when `max_program_size()` is not
        `None`. It may stop counting, and return any number above `limit`, as soon as the count
        passes `limit`: the point is to refuse a program that takes minutes and gigabytes to
        compile (a Python loop unrolled by tracing) within seconds. Default: `None`.
        """
        return None

    def eager(self) -> BackendImpl | None:
        """The same library running `f` without compiling it, for a program above the limit.

        `None` (the default): the library cannot (symbolic expressions, lazy graphs), and a
        program above the limit is refused with `ad.UnsupportedError`.
        """
        return None

    # -- preparation --------------------------------------------------------------------------

    def kernels(
        self,
        operator: Operator,
        f: Callable[..., Any],
        x: ArrayLike,
        tangents: tuple[ArrayLike, ...] | None,
        contexts: tuple[Any, ...],
        spec: OutputSpec,
    ) -> Kernels:
        """The prepared kernels of `operator`: the backend's native route, else the generic one.

        Called once per preparation, never per call. Combinators (`SecondOrder`, `AutoSparse`)
        override it to route operators to their parts.
        """
        route = self.native.get(operator) or operator.generic
        return route(self, f, x, tangents, contexts, spec)

    def parts(self, operator: Operator, f: Callable[..., Any]) -> tuple[BackendImpl, BackendImpl, Callable[..., Any]]:
        """`(outer, inner, f)` for a second-order route: a plain backend is its own pair."""
        return self, self, f

    def sparsity_detector(self) -> Any:
        """The library's own sparsity detector, or `None` (the default: anydiff's tracer).

        `ad.AutoSparse(backend)` uses it when no `sparsity_detector=` is given. It has the methods
        `jacobian_sparsity(f, x, contexts)` and `hessian_sparsity(f, x, contexts)`, which take
        the backend's own arrays and unwrapped contexts and return SciPy sparse patterns.
        """
        return None
