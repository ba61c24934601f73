"""The functions a `DifferentiateWith` computes, and their derivative rules, for any caller.

A *node* is a function of `(x, *linear, *leaves)` that the substitute backend evaluates: `x` is
the point, `linear` the arguments it is linear in (tangents, cotangents), `leaves` the arrays
inside the user's contexts. The wrapped `f` is the `Base` node; every derivative is a node made
from another one:

- `Push(n)`: `(x, *v, t) -> ∂ₓn(x, *v) @ t`, the pushforward, linear in `t`;
- `Pull(n)`: `(x, *v, u) -> ∂ₓn(x, *v)ᵀ @ u`, the pullback, linear in `u`;
- `Transpose(n, j)`: `n` transposed in its linear argument `j`;
- `Vmap(n, axes)`: `n` mapped over the leading axis of the arguments whose axis is 0.

Since the derivatives of a node are nodes again, a calling library that differentiates through
`f` once, twice, forward or reverse, only ever needs three operations of its own: call a node,
and, if it has a `vmap`, `vmap` a function and sum over the leading axis (`BatchingOps`).
`tangent` and `cotangents` are the rules written on those; a caller module (`jax.py`,
`torch.py`, ...) registers them with its AD system.

The first derivatives of `f` (and its Hessian-vector products, and its second pushforwards for a
scalar `x`) come from the substitute's prepared operators (`pushforward`, `pullback`, `hvp`,
`second_derivative`: its fastest routes), prepared once per node and per shape and dtype of the
arguments. Higher nodes compose the substitute's primitives (`BackendImpl.jvp` / `vjp`), compiled
once: prepared routes do not nest, primitives do, so every order works, by the substitute's own
differentiation all the way down; except for a symbolic substitute, whose primitives cannot be
traced again: it computes the nodes its prepared operators compute (all that forward over
reverse and reverse over reverse need).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, cast

import numpy as np

from .._core.arrays import ArrayKind, array_kind, array_kinds, converter, namespace
from .._core.arrays import dtype_name as _dtype_name
from .._core.contexts import Constant
from .._core.errors import AnyDiffError, FunctionNotDifferentiableError, UnsupportedError
from .._core.kernels import device
from .._core.registry import bridge_callers, implementation
from .._core.trees import is_tree
from ..first_order.pullback import prepare_pullback, pullback
from ..first_order.pushforward import prepare_pushforward, pushforward, value_and_pushforward
from ..second_order.hvp import hvp, prepare_hvp
from ..second_order.second_derivative import prepare_second_derivative, second_derivative

__all__ = [
    "Aval",
    "Base",
    "BatchingOps",
    "CallerOps",
    "Node",
    "ReturnsTree",
    "Substitute",
    "Vmap",
    "cotangents",
    "evaluate",
    "evaluate_taped",
    "evaluate_with_tangent",
    "fill_contexts",
    "numpy_dtype",
    "split_contexts",
    "tangent",
]

_NUMPY = array_kinds()["numpy"]

#: the shape and NumPy dtype of an argument or result: all a node needs to know to be prepared
Aval = tuple[tuple[int, ...], np.dtype]


def numpy_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of a NumPy, JAX, torch, TensorFlow, ... dtype (remembered: every call of a
    `DifferentiateWith` asks, and finding it by name costs ~1.5 µs)."""
    try:
        return _NUMPY_DTYPES[dtype]
    except (KeyError, TypeError):  # not seen yet, or unhashable (then found each time)
        found = np.dtype(_dtype_name(dtype))
        with contextlib.suppress(TypeError):
            _NUMPY_DTYPES[dtype] = found
        return found


_NUMPY_DTYPES: dict[Any, np.dtype] = {}


def _expand(t: Any) -> Any:
    """`t` with a leading axis of one: a batch of one tangent for the stacked primitives."""
    return namespace(t).expand_dims(t, axis=0)


# -- contexts --------------------------------------------------------------------------------


class _Leaf:
    """Where an array was taken out of a context."""

    def __repr__(self) -> str:
        return "<array>"


_LEAF = _Leaf()


def split_contexts(contexts: tuple, is_array: Callable[[Any], bool]) -> tuple[tuple, list]:
    """`(skeleton, leaves)`: the contexts with their arrays replaced by a marker, and the arrays.

    Arrays nested in tuples, lists and dicts are found, as the operators' contexts are.
    """
    leaves: list = []

    def take(value: Any) -> Any:
        if is_array(value):
            leaves.append(value)
            return _LEAF
        if isinstance(value, (tuple, list)):
            return type(value)(take(v) for v in value)
        if isinstance(value, Mapping):
            return {k: take(v) for k, v in value.items()}
        return value

    return tuple(type(c)(take(c.value)) for c in contexts), leaves


def fill_contexts(skeleton: tuple, leaves: Sequence[Any]) -> tuple:
    """The contexts of `skeleton` with `leaves` put back in order."""
    it: Iterator[Any] = iter(leaves)

    def put(value: Any) -> Any:
        if value is _LEAF:
            return next(it)
        if isinstance(value, (tuple, list)):
            return type(value)(put(v) for v in value)
        if isinstance(value, Mapping):
            return {k: put(v) for k, v in value.items()}
        return value

    return tuple(type(c)(put(c.value)) for c in skeleton)


def skeleton_key(skeleton: tuple) -> Any:
    """A hashable key for a skeleton: equal skeletons share their nodes (and their jit caches)."""

    def freeze(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return (type(value), tuple(freeze(v) for v in value))
        if isinstance(value, Mapping):
            return (Mapping, tuple((k, freeze(v)) for k, v in value.items()))
        try:
            hash(value)
        except TypeError:  # an unhashable option object: only itself matches
            return ("id", id(value))
        return (type(value), value)

    return tuple((type(c), freeze(c.value)) for c in skeleton)


# -- the substitute backend --------------------------------------------------------------------


class Substitute:
    """The backend that computes the derivatives, and the array kinds it works on.

    Attributes:
        native: the kind `f` and the backend's primitives compute on (NumPy for finite
            differences, which take any kind).
        operand: the kind its prepared operators are called with: the native kind, or NumPy for
            a backend whose compiled functions take NumPy arrays as they are (JAX), which makes
            the trip from another library two zero-copy views instead of a device transfer.
    """

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.impl = implementation(backend)
        self.native: ArrayKind = self.impl.kind or _NUMPY
        self.operand: ArrayKind = _NUMPY if "numpy" in self.impl.accepts else self.native
        self._converters: dict[str, tuple] = {}
        module = bridge_callers().get(self.native.module)
        #: `split_pullback(f) -> (forward, backward)` of the library's bridge module, if it has one
        #: (`Base.taped`)
        self.split_pullback: Callable[..., tuple] | None = (
            None if module is None else getattr(importlib.import_module(module), "split_pullback", None)
        )

    def converters(self, transport: ArrayKind) -> tuple[Callable[[Any], Any] | None, Callable[[Any], Any] | None]:
        """`(to_operand, from_operand)` for arrays of a caller's `transport` kind (`None`: same)."""
        pair = self._converters.get(transport.name)
        if pair is None:
            pair = self._converters[transport.name] = (
                converter(transport, self.operand),
                converter(self.operand, transport),
            )
        return pair

    def zeros(self, aval: Aval) -> Any:
        return self.operand.from_numpy(np.zeros(*aval))

    def runner(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        """`fn` compiled by the substitute (`jax.jit`), taking and returning the operand kind."""
        compiled = self.impl.compile(fn, x)
        # A compiled function takes the operand kind as it is; `fn` itself needs the native one.
        to_native = converter(self.operand, self.native) if compiled is fn else None
        back = converter(self.native, self.operand)

        def run(x: Any, *rest: Any) -> Any:
            if to_native is not None:
                x, rest = to_native(x), tuple(to_native(a) if array_kind(a) is self.operand else a for a in rest)
            with self.context(x):
                y = compiled(x, *rest)
            return y if back is None or array_kind(y) is not self.native else back(y)

        return run

    def context(self, x: Any) -> contextlib.AbstractContextManager[Any]:
        """What every computation of the native kind on arrays like `x` runs in (JAX: x64)."""
        make = self.native.context(x) if self.native.context is not None else None
        return make() if make is not None else contextlib.nullcontext()


# -- nodes -------------------------------------------------------------------------------------


class Node:
    """A function of `(x, *linear, *leaves)` that the substitute computes (module docstring).

    Nodes are memoized (`push`, `pull`, ... return the same object each time), so that a caller's
    caches keyed by the node (jit, preps) are hit.
    """

    def __init__(self, base: Base, k: int) -> None:
        self.base = base
        self.sub: Substitute = base.sub
        #: the number of linear arguments
        self.k = k
        self._derived: dict[Any, Node] = {}
        self._preps: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def _once(self, table: dict, key: Any, make: Callable[[], Any]) -> Any:
        value = table.get(key)
        if value is None:
            with self._lock:
                value = table.get(key)
                if value is None:
                    value = table[key] = make()
        return value

    # -- derived nodes -------------------------------------------------------------------------

    def push(self) -> Push:
        return self._once(self._derived, "push", lambda: Push(self))

    def pull(self) -> Node:
        return self._once(self._derived, "pull", lambda: Pull(self))

    def transpose(self, j: int, aval: Aval) -> Node:
        """The node transposed in its linear argument `j` (whose shape and dtype are `aval`)."""
        return self._once(self._derived, ("transpose", j, aval), lambda: Transpose(self, j, aval))

    def vmap(self, axes: tuple) -> Node:
        return self._once(self._derived, ("vmap", axes), lambda: Vmap(self, axes))

    # -- evaluation ----------------------------------------------------------------------------

    def split(self, args: tuple) -> tuple[Any, tuple, tuple]:
        """`(x, linear, leaves)`."""
        return args[0], args[1 : 1 + self.k], args[1 + self.k :]

    def contexts(self, linear: tuple, leaves: tuple) -> tuple:
        """The contexts with which the substitute's operators call `native()`."""
        return (*map(Constant, linear), *self.base.wrap(leaves))

    def prep(self, args: tuple, make: Callable[[], Any]) -> Any:
        """The prep of this node for arguments shaped like `args`, made once."""
        return self._once(self._preps, tuple((tuple(a.shape), a.dtype) for a in args), make)

    def spec(self, avals: tuple[Aval, ...]) -> Aval:
        """The shape and dtype of the result for arguments of these shapes and dtypes."""
        raise NotImplementedError

    def host(self, args: tuple) -> Any:
        """The value, for arguments of the substitute's operand kind."""
        raise NotImplementedError

    def native(self) -> Callable[..., Any]:
        """`fn(x, *linear, *context_values)`, which the substitute's primitives can differentiate."""
        raise NotImplementedError

    def run(self, args: tuple, host: Callable[[tuple], Any] | None = None) -> Any:
        """`host(args)` (or another method of this node's), with the substitute's failures
        explained as failures to differentiate `f`."""
        try:
            return (host or self.host)(args)
        except Exception as exc:
            explained = isinstance(exc, AnyDiffError)
            if self is self.base or (explained and not isinstance(exc, FunctionNotDifferentiableError)):
                raise
            detail = (
                str(exc)
                if explained
                else (
                    f"{type(exc).__name__}: {exc}. `f` must compute with the arrays of "
                    f"{self.sub.backend!r} (`xp = ad.namespace(x)`), which it differentiates."
                )
            )
            raise FunctionNotDifferentiableError(
                f"{self.base!r} could not differentiate `f` with {self.sub.backend!r}. {detail}"
            ) from exc

    def prepare(self, avals: tuple[Aval, ...]) -> None:
        """Do the one-time work for arguments like `avals` now (at a caller's trace time)."""
        self.run(tuple(self.sub.zeros(a) for a in avals))

    def batched(self, args: tuple, axes: tuple) -> Any:
        """The value of `vmap(self, axes)` in one batched operator call, or `None` if none fits."""
        return None

    def taped(self, args: tuple) -> tuple[Any, Callable[[Any], Any]] | None:
        """`(value, pullback)` from one forward pass whose residuals `pullback(u)` (the cotangent
        of `x`) keeps, or `None` if the substitute has none for this node (`Base.taped`)."""
        return None


class ReturnsTree(Exception):
    """Raised by a base node whose `f` returns a tree for an array `x`: `DifferentiateWith` then
    takes `x` as a one-leaf tree (its tree route ravels and cuts the output)."""


class Base(Node):
    """The wrapped `f` itself: `(x, *leaves) -> f(x, *contexts)`."""

    def __init__(self, sub: Substitute, f: Callable[..., Any], skeleton: tuple) -> None:
        self.sub, self.f, self.skeleton = sub, f, skeleton
        super().__init__(self, 0)
        self._specs: dict[tuple, Aval] = {}
        self._seen: set[tuple] = set()
        self._call: Callable[..., Any] | None = None
        self._split: tuple[Callable[..., Any], Callable[..., Any]] | None = None

        def weighted(x: Any, u: Any, *context_values: Any) -> Any:
            return namespace(x).sum(u * f(x, *context_values))

        #: `⟨u, f(x, *contexts)⟩`, the scalar whose Hessian the second-order nodes apply
        self.weighted = weighted

    def __repr__(self) -> str:
        return f"DifferentiateWith({getattr(self.f, '__qualname__', self.f)}, {self.sub.backend!r})"

    def wrap(self, leaves: tuple) -> tuple:
        """The user's contexts, with these arrays in them."""
        return fill_contexts(self.skeleton, leaves) if self.skeleton else ()

    def values(self, leaves: tuple) -> tuple:
        """The values `f` receives after `x`."""
        return tuple(c.value for c in self.wrap(leaves)) if self.skeleton else ()

    def native(self) -> Callable[..., Any]:
        return self.f

    def host(self, args: tuple) -> Any:
        x, _, leaves = self.split(args)
        if self._call is None:
            self._call = self.sub.runner(self.f, x)
        try:
            y = self._call(x, *self.values(leaves))
        except AnyDiffError:
            raise
        except Exception as exc:
            better = self.sub.impl.translate_error(exc, repr(self))
            if better is None:
                raise
            raise better from exc
        kind = array_kind(y)
        if kind is not self.sub.operand:
            if kind is None and is_tree(y):
                raise ReturnsTree
            if kind is None:
                raise TypeError(
                    f"{self!r}: `f` must return one array; it returned {type(y).__name__}. "
                    "Return one array (stack or concatenate several results)."
                )
            y = converter(kind, self.sub.operand)(y)  # type: ignore[misc]
        if not self.checked(args):  # the first result for these shapes: check it, remember its spec
            self._remember(args, y)
            self._seen.add(tuple((tuple(a.shape), a.dtype) for a in args))
        return y

    def taped(self, args: tuple) -> tuple[Any, Callable[[Any], Any]] | None:
        """What a caller's tape needs, the value before the cotangent: where the substitute's
        library splits its pullback at a tape (`split_pullback` of its bridge module: JAX's
        `jax.vjp`, compiled), the forward pass keeps the residuals that the pullback uses, so that
        `f` is evaluated once (not again by the pullback); once `f` has returned a checked result
        for these shapes."""
        if self.sub.split_pullback is None or not self.checked(args):
            return None
        x, _, leaves = self.split(args)
        if self._split is None:
            forward, backward = self.sub.split_pullback(self.f)
            self._split = self.sub.runner(forward, x), self.sub.runner(backward, x)
        forward, backward = self._split
        y, residuals = forward(x, *self.values(leaves))
        to_operand = converter(self.sub.native, self.sub.operand)
        return (y if to_operand is None else to_operand(y)), lambda u: backward(u, residuals)

    def checked(self, args: tuple) -> bool:
        """Whether `f` has returned a result for arguments shaped like `args` (and it was checked)."""
        return tuple((tuple(a.shape), a.dtype) for a in args) in self._seen

    def _remember(self, args: tuple, y: Any) -> None:
        spec = tuple(y.shape), numpy_dtype(y.dtype)
        if spec[1].kind != "f":
            raise TypeError(
                f"{self!r}: `f` must return a real floating-point array; it returned dtype "
                f"{spec[1]}. Cast the result, e.g. `y.astype(float)`."
            )
        self._specs[tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)] = spec

    def spec(self, avals: tuple[Aval, ...]) -> Aval:
        """From an evaluation with these shapes if there was one, else from one at zeros."""
        found = self._specs.get(avals)
        if found is None:
            with np.errstate(all="ignore"):  # zeros are only there for the shapes
                self.host(tuple(self.sub.zeros(a) for a in avals))
            found = self._specs[avals]
        return found

    def prepare(self, avals: tuple[Aval, ...]) -> None:
        self.spec(avals)


class Derived(Node):
    """A node made from another one (`parent`).

    Its value comes from the substitute's prepared operator where one fits (`prepared`: the
    parent is `f` itself), and from its composable primitives, compiled once, otherwise: prepared
    routes do not nest (torch's dual numbers cannot run inside its dual numbers), primitives do.
    """

    def __init__(self, parent: Node, k: int) -> None:
        self.parent = parent
        super().__init__(parent.base, k)
        self._native: Callable[..., Any] | None = None
        self._stacked: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.parent!r})"

    def native(self) -> Callable[..., Any]:
        if self._native is None:
            stacked = self.stacked_native()
            k = self.k

            def one(x: Any, *rest: Any) -> Any:
                return stacked(x, *rest[: k - 1], _expand(rest[k - 1]), *rest[k:])[0]

            self._native = one
        return self._native

    def stacked_native(self) -> Callable[..., Any]:
        """`fn(x, *linear, *context_values)` with the last linear argument stacked: a batch."""
        raise NotImplementedError

    def prepared(self, args: tuple, tangents: Any) -> Any:
        """The substitute's prepared operator for one tangent or a tuple, or `None` if none fits."""
        return None

    def host(self, args: tuple) -> Any:
        found = self.prepared(args, args[self.k])
        return found if found is not None else self._primitives(args, single=True)

    def batched(self, args: tuple, axes: tuple) -> Any:
        if axes != (None,) * self.k + (0,) + (None,) * (len(axes) - 1 - self.k):
            return None  # more than the last linear argument is batched
        t = args[self.k]
        found = self.prepared(args, tuple(t[i] for i in range(t.shape[0])))
        return namespace(t).stack(found) if found is not None else self._primitives(args, single=False)

    def _primitives(self, args: tuple, single: bool) -> Any:
        x, linear, leaves = self.split(args)
        if self._stacked is None:
            self._stacked = self.sub.runner(self.stacked_native(), x)
        last = _expand(linear[-1]) if single else linear[-1]
        result = self._stacked(x, *linear[:-1], last, *self.base.values(leaves))
        return result[0] if single else result


class Push(Derived):
    """`(x, *v, t, *leaves) -> ∂ₓparent(x, *v) @ t`."""

    def __init__(self, parent: Node) -> None:
        super().__init__(parent, parent.k + 1)

    def push(self) -> Push:
        if self.parent is self.base:
            return self._once(self._derived, "push", lambda: SecondPush(self))
        return super().push()

    def transpose(self, j: int, aval: Aval) -> Node:
        return self.parent.pull() if j == self.k - 1 else super().transpose(j, aval)

    def spec(self, avals: tuple[Aval, ...]) -> Aval:
        return self.parent.spec(avals[: self.k] + avals[1 + self.k :])

    def stacked_native(self) -> Callable[..., Any]:
        fn, impl, k = self.parent.native(), self.sub.impl, self.parent.k

        def pushforwards(x: Any, *rest: Any) -> Any:
            return impl.jvp(fn, x, rest[k], (*rest[:k], *rest[k + 1 :]))[1]

        return pushforwards

    def prepared(self, args: tuple, tangents: Any) -> Any:
        if self.parent is not self.base:
            return None
        operands, prep = self._pushforward(args, tangents)
        return pushforward(*operands, prep=prep)

    def _pushforward(self, args: tuple, tangents: Any) -> tuple[tuple, Any]:
        """The arguments of the substitute's pushforward of `f` along `tangents`, and its prep."""
        x, _, leaves = self.split(args)
        operands = (self.base.f, self.sub.backend, x, tangents, *self.base.contexts((), leaves))
        return operands, self.prep(args, lambda: prepare_pushforward(*operands))

    def value_and_run(self, args: tuple) -> tuple[Any, Any]:
        """`(parent(x, *v, *leaves), run(args))`: for `f` itself, in one call of the substitute's
        `value_and_pushforward` (one evaluation of `f`, not two) once `f` has returned a result
        for these shapes (which was checked); otherwise one after the other."""
        x, linear, leaves = self.split(args)
        parent_args = (x, *linear[:-1], *leaves)
        if self.parent is self.base and self.base.checked(parent_args):
            return self.run(args, self._value_and_prepared)
        return self.parent.run(parent_args), self.run(args)

    def _value_and_prepared(self, args: tuple) -> tuple[Any, Any]:
        operands, prep = self._pushforward(args, args[1])
        return value_and_pushforward(*operands, prep=prep)


class Pull(Derived):
    """`(x, *v, u, *leaves) -> ∂ₓparent(x, *v)ᵀ @ u`, shaped like `x`."""

    def __init__(self, parent: Node) -> None:
        super().__init__(parent, parent.k + 1)

    def transpose(self, j: int, aval: Aval) -> Node:
        return self.parent.push() if j == self.k - 1 else super().transpose(j, aval)

    def push(self) -> Push:
        return self._once(self._derived, "push", lambda: Hvp(self))

    def pull(self) -> Node:
        # A pullback is the gradient of `⟨u, parent(x)⟩`, whose Jacobian (a Hessian) is symmetric.
        return self.push()

    def spec(self, avals: tuple[Aval, ...]) -> Aval:
        return avals[0]

    def stacked_native(self) -> Callable[..., Any]:
        fn, impl, k = self.parent.native(), self.sub.impl, self.parent.k

        def pullbacks(x: Any, *rest: Any) -> Any:
            return impl.vjp(fn, x, (*rest[:k], *rest[k + 1 :]))[1](rest[k])

        return pullbacks

    def prepared(self, args: tuple, cotangents: Any) -> Any:
        if self.parent is not self.base:
            return None
        x, _, leaves = self.split(args)
        f, backend, contexts = self.base.f, self.sub.backend, self.base.contexts((), leaves)
        prep = self.prep(args, lambda: prepare_pullback(f, backend, x, cotangents, *contexts))
        return pullback(f, backend, x, cotangents, *contexts, prep=prep)


class Hvp(Push):
    """`Push(Pull(n))`: `(x, *v, u, t) -> ∇²ₓ⟨u, n(x, *v)⟩ @ t`; by the substitute's `hvp` for `f`.

    `hvp` picks the substitute's own second-order strategy (forward over reverse where it can).
    """

    def transpose(self, j: int, aval: Aval) -> Node:
        # Symmetric in `t`: the Hessian of a scalar function.
        return self if j == self.k - 1 else super().transpose(j, aval)

    def prepared(self, args: tuple, tangents: Any) -> Any:
        if self.parent.parent is not self.base:  # type: ignore[attr-defined]
            return None
        x, (u, _), leaves = self.split(args)
        f, backend, contexts = self.base.weighted, self.sub.backend, (Constant(u), *self.base.contexts((), leaves))
        prep = self.prep(args, lambda: prepare_hvp(f, backend, x, tangents, *contexts))
        return hvp(f, backend, x, tangents, *contexts, prep=prep)


class SecondPush(Push):
    """`Push(Push(f))`: `(x, t, s) -> ∂²ₓf(x)[t, s]`; for a scalar `x`, `f''(x) t s` by the
    substitute's `second_derivative` (its own route: a symbolic substitute composes no primitives).
    """

    def prepared(self, args: tuple, tangents: Any) -> Any:
        x, (t, _), leaves = self.split(args)
        if len(x.shape) != 0:
            return None
        f, backend, contexts = self.base.f, self.sub.backend, self.base.contexts((), leaves)
        prep = self.prep(args, lambda: prepare_second_derivative(f, backend, x, *contexts))
        curvature = second_derivative(f, backend, x, *contexts, prep=prep)
        if isinstance(tangents, tuple):
            return tuple(curvature * (t * s) for s in tangents)
        return curvature * (t * tangents)


class Transpose(Derived):
    """`parent` transposed in its linear argument `j`: that argument replaced by the cotangent.

    The substitute's pullback with respect to that argument (the parent is linear in it, so any
    point of linearisation does: zeros).
    """

    def __init__(self, parent: Node, j: int, aval: Aval) -> None:
        super().__init__(parent, parent.k)
        self.j, self.aval = j, aval

    def spec(self, avals: tuple[Aval, ...]) -> Aval:
        return self.aval

    def native(self) -> Callable[..., Any]:
        if self._native is None:
            fn, impl, j, k = self.parent.native(), self.sub.impl, self.j, self.k
            shape, dtype = self.aval

            def along(v: Any, x: Any, *rest: Any) -> Any:  # rest: the other linear args, contexts
                return fn(x, *rest[:j], v, *rest[j:])

            def transposed(x: Any, *rest: Any) -> Any:
                xp = namespace(x)
                zero = xp.zeros(shape, dtype=getattr(xp, dtype.name), device=device(x))
                others = (*rest[:j], *rest[j + 1 : k], *rest[k:])
                return impl.vjp(along, zero, (x, *others))[1](_expand(rest[j]))[0]

            self._native = transposed
        return self._native

    def host(self, args: tuple) -> Any:
        x, linear, leaves = self.split(args)
        if self._stacked is None:
            self._stacked = self.sub.runner(self.native(), x)
        return self._stacked(x, *linear, *self.base.values(leaves))

    def batched(self, args: tuple, axes: tuple) -> Any:
        return None


class Vmap(Node):
    """`inner` mapped over the leading axis of the arguments whose entry in `axes` is 0."""

    def __init__(self, inner: Node, axes: tuple) -> None:
        super().__init__(inner.base, inner.k)
        self.inner, self.axes = inner, axes

    def __repr__(self) -> str:
        return f"Vmap({self.inner!r}, {self.axes})"

    def _unbatched(self, avals: tuple[Aval, ...]) -> tuple[tuple[Aval, ...], int]:
        size = next(a[0][0] for a, axis in zip(avals, self.axes, strict=True) if axis == 0)
        inner = tuple((a[0][1:], a[1]) if axis == 0 else a for a, axis in zip(avals, self.axes, strict=True))
        return inner, size

    def spec(self, avals: tuple[Aval, ...]) -> Aval:
        inner, size = self._unbatched(avals)
        shape, dtype = self.inner.spec(inner)
        return (size, *shape), dtype

    def prepare(self, avals: tuple[Aval, ...]) -> None:
        self.inner.prepare(self._unbatched(avals)[0])

    def host(self, args: tuple) -> Any:
        fast = self.inner.batched(args, self.axes)
        if fast is not None:
            return fast
        # One call per element: `f` may be any code, which no library could batch.
        size = next(a.shape[0] for a, axis in zip(args, self.axes, strict=True) if axis == 0)
        if size == 0:
            return self.sub.zeros(self.spec(tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)))
        results = [
            self.inner.host(tuple(a[i] if axis == 0 else a for a, axis in zip(args, self.axes, strict=True)))
            for i in range(size)
        ]
        return namespace(results[0]).stack(results)


def evaluate(node: Node, args: tuple, transport: ArrayKind) -> Any:
    """The value of `node` for a caller's arrays of kind `transport`, as that kind."""
    to_operand, from_operand = node.sub.converters(transport)
    if to_operand is not None:
        args = tuple(map(to_operand, args))
    y = node.run(args)
    return y if from_operand is None else from_operand(y)


def evaluate_taped(node: Node, args: tuple, transport: ArrayKind) -> tuple[Any, Callable[[Any], Any]] | None:
    """`(node(*args), pullback)` for a caller's arrays of kind `transport`, as that kind, with
    `pullback(u)` the cotangent of `x` from the residuals of the forward pass (`Node.taped`), or
    `None` where the substitute keeps none (the caller then evaluates `node` and its `pull()`)."""
    to_operand, from_operand = node.sub.converters(transport)
    if to_operand is not None:
        args = tuple(map(to_operand, args))
    found = node.taped(args)
    if found is None:
        return None
    if to_operand is None or from_operand is None:  # the caller's arrays are the operand kind
        return found
    y, pullback = found
    return from_operand(y), lambda u: from_operand(pullback(to_operand(u)))


def evaluate_with_tangent(node: Node, args: tuple, t: Any, transport: ArrayKind) -> tuple[Any, Any]:
    """`(node(*args), node.push()(x, *linear, t, *leaves))` for a caller's arrays of kind
    `transport`, as that kind: the value and its tangent along `t` (a tangent of `x`), from one
    evaluation of `f` where the substitute computes both at once (`Push.value_and_run`). Not for a
    `Vmap` node, whose tangent `tangent` maps."""
    to_operand, from_operand = node.sub.converters(transport)
    x, linear, leaves = node.split(args)
    args = (x, *linear, t, *leaves)
    if to_operand is not None:
        args = tuple(map(to_operand, args))
    y, ty = node.push().value_and_run(args)
    return (y, ty) if from_operand is None else (from_operand(y), from_operand(ty))


# -- the rules ---------------------------------------------------------------------------------


class CallerOps(Protocol):
    """What the rules need of every calling library."""

    def call(self, node: Node, args: tuple) -> Any:
        """`node(*args)`, recorded so that the library can differentiate it again."""


class BatchingOps(CallerOps, Protocol):
    """What the rules need of a library with a `vmap` (one that makes `Vmap` nodes)."""

    def vmap(self, fn: Callable[..., Any], in_axes: tuple) -> Callable[..., Any]:
        """`fn` mapped over axis 0 of the arguments whose entry is 0, results stacked on axis 0."""

    def sum0(self, a: Any) -> Any:
        """`a` summed over its leading axis."""


def tangent(ops: CallerOps, node: Node, args: tuple, tangents: tuple) -> Any:
    """The tangent of `node(*args)` along `tangents` (`None` for a zero tangent); `None` if zero.

    Contexts are constants: a tangent on one of their arrays is an error, not silently dropped.
    """
    if any(t is not None for t in tangents[1 + node.k :]):
        raise UnsupportedError(
            f"{node.base!r} differentiates `f` in `x` only, but one of the extra arguments "
            "(contexts) received a tangent. Pass what is differentiated as `x` (concatenate "
            "several arrays into one), or stop its gradient (`jax.lax.stop_gradient`, `.detach()`)."
        )
    live = [i for i in range(1 + node.k) if tangents[i] is not None]
    if not live:
        return None
    if isinstance(node, Vmap):
        n = len(args)

        def one(*a: Any) -> Any:
            ts: list = [None] * n
            for i, t in zip(live, a[n:], strict=True):
                ts[i] = t
            return tangent(ops, node.inner, a[:n], tuple(ts))

        in_axes = node.axes + tuple(node.axes[i] for i in live)
        return cast(BatchingOps, ops).vmap(one, in_axes)(*args, *(tangents[i] for i in live))
    x, linear, leaves = node.split(args)
    terms = []
    if tangents[0] is not None:
        terms.append(ops.call(node.push(), (x, *linear, tangents[0], *leaves)))
    for j in range(node.k):  # linear in each `linear[j]`: the node itself, along its tangent
        t = tangents[1 + j]
        if t is not None:
            terms.append(ops.call(node, (x, *linear[:j], t, *linear[j + 1 :], *leaves)))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def cotangents(ops: CallerOps, node: Node, args: tuple, ct: Any, wanted: tuple, avals: tuple) -> list:
    """The cotangents of the `wanted` arguments of `node(*args)` for the output cotangent `ct`.

    `args` may hold `None` for a linear argument being transposed (its value is not needed);
    `avals` gives every argument's shape and dtype. Context leaves get `None` (no cotangent).
    """
    result: list = [None] * len(args)
    targets = [i for i in range(1 + node.k) if wanted[i]]
    if not targets:
        return result
    if isinstance(node, Vmap):
        inner_avals, _ = node._unbatched(avals)
        one_hot = tuple(i in targets for i in range(len(args)))

        def one(*a: Any) -> tuple:
            found = cotangents(ops, node.inner, a[:-1], a[-1], one_hot, inner_avals)
            return tuple(found[i] for i in targets)

        in_axes = tuple(None if a is None else axis for a, axis in zip(args, node.axes, strict=True))
        batching = cast(BatchingOps, ops)
        for i, c in zip(targets, batching.vmap(one, (*in_axes, 0))(*args, ct), strict=True):
            result[i] = c if node.axes[i] == 0 else batching.sum0(c)  # an unbatched input gets the sum
        return result
    x, linear, leaves = node.split(args)
    if 0 in targets:
        result[0] = ops.call(node.pull(), (x, *linear, ct, *leaves))
    for j in range(node.k):
        if 1 + j in targets:
            result[1 + j] = ops.call(node.transpose(j, avals[1 + j]), (x, *linear[:j], ct, *linear[j + 1 :], *leaves))
    return result
