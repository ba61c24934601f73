"""`DifferentiateWith`: one library's function inside another library's program, with derivatives.

`ad.DifferentiateWith(f, backend)` is `f` for whoever calls it, but when the caller's library
differentiates through it, the derivatives come from `backend` (the *substitute*): a NumPy
simulation inside a JAX loss, a JAX model inside a torch training loop, ...

What each calling library gets:

- **JAX**: `jvp`, `vjp`, `grad`, `jacfwd`, `jacrev`, `hessian` and any composition of them, under
  `jit` and `vmap` (a JAX primitive, lowered to XLA's host callback under `jit`).
- **PyTorch**: a `torch.autograd.Function` with `backward` and `jvp`, so `torch.autograd.grad`
  (double backward included), forward-mode dual numbers and the `torch.func` transforms
  (`grad`, `jacrev`, `jacfwd`, `hessian`, `vmap`) all work.
- **HIPS autograd**: a primitive with VJP and JVP rules, so `grad`, `make_jvp`, `jacobian`,
  `hessian` and their compositions work (NumPy arrays outside autograd's tracing are NumPy's).
- **TensorFlow**: an op recorded with its gradient and forward functions (as `tf.custom_gradient`
  records one), so tapes (nested: second order),
  `tf.autodiff.ForwardAccumulator` and `tf.function` graphs work.
- **PyTensor**: an `Op` whose pullback and pushforward are `Op`s again: `pytensor.grad` (to any
  order), `hessian`, `pushforward`, in compiled `pytensor.function`s (static shapes needed).
- **CasADi**: a `casadi.Callback` with forward and reverse sensitivities and a Jacobian, nested:
  `ca.hessian`, `ca.jtimes`, `nlpsol` with exact Hessians (MX symbols or DM values).
- **MLX**: an `mx.custom_function` with VJP and JVP rules: `mx.grad`, `mx.vjp`, `mx.jvp` and
  their compositions, eagerly (not under `mx.compile` or `mx.vmap`: MLX has no host callback).
- **PaddlePaddle**, **MyGrad** and **MindSpore**: see their `bridge.py`.
- **NumPy** (or a Python float): the plain value of `f`.

A caller whose library is the substitute's own (JAX calling `DifferentiateWith(f, ad.AutoJAX())`)
calls `f` directly: its library differentiates `f` natively, which is what the substitute would do.

Arrays cross between libraries through DLPack or NumPy views, without copies where the
libraries allow it. The substitute's operators are prepared once per shape and dtype of the
arguments and reused; a prep is built under a lock, so one `DifferentiateWith` may serve several
threads.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from .._core.arrays import ArrayLike, array_kind
from .._core.backend import AbstractBackend
from .._core.contexts import Cache, Constant
from .._core.errors import UnsupportedError
from .._core.registry import bridge_callers
from .._core.trees import OutputTree, TreeLayout, aval, flat_function, flatten, is_tree, layout
from .nodes import Base, ReturnsTree, Substitute, evaluate, fill_contexts, numpy_dtype, skeleton_key, split_contexts

__all__ = ["DifferentiateWith", "callable_from"]

_NUMPY = array_kind(np.zeros(()))


def callable_from(library: str | None) -> bool:
    """Whether the operators of `library` (its import name, `"jax"`) can call a `DifferentiateWith`
    and differentiate through it: a caller is registered for it (`register_bridge_caller`) that
    also serves the library's compiled and vectorised programs, in which its operators run (not
    MLX's: `mx.compile` and `mx.vmap` run no Python code on values; its module says
    `compiled = False`)."""
    module = bridge_callers().get(library) if library is not None else None
    return module is not None and getattr(importlib.import_module(module), "compiled", True)


class _NumPyCaller:
    """NumPy calls without differentiating: the plain value."""

    transparent = ()

    @staticmethod
    def owns(x: Any) -> bool:
        return array_kind(x) is _NUMPY

    @staticmethod
    def asarray(a: Any) -> Any:
        kind = array_kind(a)
        return a if kind is None else kind.to_numpy(a)

    @staticmethod
    def call(node: Base, args: tuple) -> Any:
        return np.asarray(evaluate(node, args, _NUMPY))  # type: ignore[arg-type]  # 0-d, not a NumPy scalar


_CALLER_OF_TYPE: dict[type, Any] = {}


def _caller(x: Any) -> Any:
    """The module (or object) that handles calls with `x`, or `None` for an unknown kind."""
    found = _CALLER_OF_TYPE.get(type(x))
    if found is not None:
        return found
    if _NumPyCaller.owns(x):
        found = _NumPyCaller
    for library, module_name in bridge_callers().items():
        if found is None and library in sys.modules:  # no array of a library never imported
            module: ModuleType = importlib.import_module(module_name)
            if module.owns(x):
                found = module
    if found is not None:
        _CALLER_OF_TYPE[type(x)] = found
    return found


def _owner(leaf: Any) -> Any:
    """The caller of an array leaf of a tree (JAX's tracers are no array kind), or `None`."""
    return None if type(leaf) in (float, int, bool, str) else _caller(leaf)


def _leaf_signature(leaf: Any, describe: Callable[[Any], Any]) -> Any:
    """What a leaf contributes to the signature of a tree: shape and dtype, or the static value."""
    if _owner(leaf) is not None:
        return (type(leaf), *describe(leaf))
    return (type(leaf), leaf if type(leaf) in (float, int, bool, str) else id(leaf))


class DifferentiateWith:
    """`DifferentiateWith(f, backend)`: `f`, whose derivatives `backend` computes for any caller.

    Call it as `f` itself, `dw(x, *contexts)`, from NumPy, JAX or torch code; when that code is
    differentiated, the derivatives of `f` come from `backend`.

    Args:
        f: `f(x, *contexts) -> y`, one floating-point array in and one out, written for the
            substitute `backend`'s arrays (NumPy for `ad.AutoFiniteDiff()`). `x` and `y` may be
            trees (API.md section 10): a dict of arrays in, a tuple of arrays out, ...
        backend: the substitute, a first-order backend object such as `ad.AutoTorch()`.

    Calls:
        `dw(x, *contexts)`, like `f`, with `x` a NumPy, JAX or torch array (or a Python float);
        the result is of `x`'s kind. The extra arguments are `f`'s contexts: bare values (as the
        operators pass them to `f`) or wrapped in `ad.Constant` / `ad.Cache`, which are
        unwrapped. Their arrays, of any kind, also nested in tuples, lists or dicts, reach `f` as
        the substitute's arrays. They are not differentiated: JAX raises `ad.UnsupportedError`
        if one carries a tangent; torch gives them no gradient and ignores their tangents.
        Under JAX's `jit`, where only shapes are known, the output's shape comes from evaluating
        `f` once at zeros of the input's shapes (unless a call with these shapes was seen).

    Second order (`jax.hessian`, `torch.func.hessian`, double backward) uses the substitute's
    `hvp` and the composition of its own primitives.

    Example:
        >>> import numpy as np, torch, anydiff as ad
        >>> def simulate(p):  # plain NumPy
        ...     return np.cumsum(np.sin(p))
        >>> step = ad.DifferentiateWith(simulate, ad.AutoFiniteDiff())
        >>> p = torch.tensor([0.1, 0.2], dtype=torch.float64, requires_grad=True)
        >>> loss = (step(p) ** 2).sum()  # a torch program around the NumPy function
        >>> loss.backward()  # its derivatives by finite differences
        >>> p.grad.numpy().round(4)
        array([0.7927, 0.5851])

        In JAX: `jax.grad(lambda p: jnp.sum(step(p) ** 2))(p0)` (also `jacfwd`, `hessian`, `jit`).
    """

    __slots__ = ("__weakref__", "_bases", "_lock", "_returns_tree", "_substitute", "_trees", "backend", "f")

    def __init__(self, f: Callable[..., Any], backend: AbstractBackend) -> None:
        if not callable(f):
            raise TypeError(f"DifferentiateWith: `f` must be callable; got {type(f).__name__}.")
        if not isinstance(backend, AbstractBackend) or backend.combinator:
            got = repr(backend) if isinstance(backend, AbstractBackend) else type(backend).__name__
            raise TypeError(
                "DifferentiateWith: `backend` must be a first-order backend object such as "
                f"`ad.AutoTorch()` or `ad.AutoFiniteDiff()`; got {got}. The argument order is "
                "`ad.DifferentiateWith(f, backend)`."
            )
        self.f, self.backend = f, backend
        self._substitute: Substitute | None = None
        self._bases: dict[Any, Base] = {}
        self._trees: dict[tuple, tuple[DifferentiateWith, TreeLayout, OutputTree]] = {}
        self._returns_tree = False  # an array `x` is then taken as a one-leaf tree
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DifferentiateWith({getattr(self.f, '__qualname__', self.f)}, {self.backend!r})"

    def __call__(self, x: ArrayLike, *contexts: Any) -> ArrayLike:
        if self._returns_tree or (type(x) is not float and _caller(x) is None and is_tree(x)):
            return self._call_tree(x, contexts)
        if type(x) is float:
            x = np.asarray(x, dtype=np.float64)
        caller = _caller(x)
        if caller is None:
            raise TypeError(
                f"{self!r}: `x` must be a NumPy, JAX or torch array (or a Python float); got {type(x).__name__}."
            )
        # CasADi's matrices have no dtype: they are float64
        if numpy_dtype(getattr(x, "dtype", "float64")).kind != "f":
            raise TypeError(
                f"{self!r}: `x` must have a real floating-point dtype (float32 or float64); got "
                f"{x.dtype}. Convert it first, e.g. `x.astype(float)`."
            )
        skeleton: tuple = ()
        leaves: list = []
        if contexts:
            contexts = tuple(c if isinstance(c, (Constant, Cache)) else Constant(c) for c in contexts)
            skeleton, leaves = split_contexts(contexts, lambda v: array_kind(v) is not None or caller.owns(v))
            leaves = [caller.asarray(a) for a in leaves]
        if isinstance(self.backend, caller.transparent):
            return self.f(x, *(c.value for c in fill_contexts(skeleton, leaves)))
        try:
            return caller.call(self._base(skeleton), (x, *leaves))
        except ReturnsTree:  # found while tracing or on the first call, before any result
            self._returns_tree = True
            return self._call_tree(x, contexts)

    def _call_tree(self, x: Any, contexts: tuple) -> Any:
        """A tree `x` (API.md section 10): its differentiable leaves raveled into one vector for a
        `DifferentiateWith` of `v ↦ ravel(f(unravel(v)))`, made once per tree signature; a tree
        output is cut back from the flat one."""
        leaves, spec = flatten(x)
        # NumPy leaves among another library's arrays (an autograd program's constants) join them
        main = next((c for c in map(_owner, leaves) if c not in (None, _NumPyCaller)), _NumPyCaller)

        def owner(leaf: Any) -> Any:
            found = _owner(leaf)
            return main if found is _NumPyCaller else found

        own = getattr(main, "leaf_value", None)  # the array a leaf of the program's own stands for
        leaves = [
            main.asarray(leaf) if _owner(leaf) is _NumPyCaller else leaf if own is None else own(leaf)
            for leaf in leaves
        ]
        if not getattr(main, "trees", True):
            raise UnsupportedError(
                f"{self!r}: the programs of {main.__name__} call a `DifferentiateWith` with one array, "
                "not a tree: pass the leaves as one vector (see `ad.ravel`). JAX, torch, TensorFlow, "
                "autograd, MLX, PyTensor, MyGrad, Paddle and MindSpore programs pass trees."
            )
        describe = getattr(main, "leaf_aval", aval)
        key = (spec, tuple(_leaf_signature(leaf, describe) for leaf in leaves))
        entry = self._trees.get(key)
        if entry is None:
            with self._lock:
                entry = self._trees.get(key)
                if entry is None:
                    lay = layout(x, repr(self), owner=owner, describe=describe)
                    out = OutputTree(repr(self))
                    entry = self._trees[key] = (
                        DifferentiateWith(flat_function(self.f, lay, out), self.backend),
                        lay,
                        out,
                    )
        flat, lay, out = entry
        y = flat(lay.ravel(leaves), *contexts)
        return y if out.layout is None else out.layout.unflatten(out.layout.pieces(y), static=False)

    def _base(self, skeleton: tuple) -> Base:
        """The node of `f` for contexts of this structure, made once."""
        key = skeleton_key(skeleton)
        base = self._bases.get(key)
        if base is None:
            with self._lock:
                base = self._bases.get(key)
                if base is None:
                    if self._substitute is None:
                        self._substitute = Substitute(self.backend)
                    base = self._bases[key] = Base(self._substitute, self.f, skeleton)
        return base
