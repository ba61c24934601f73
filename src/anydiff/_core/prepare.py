"""Preparation: validate once, convert arrays, build the backend's kernels, check every reuse.

Every operator goes through `prepare` (one-time work) and `Prep.check` (a cheap test that the
call matches what the prep was built for). The operator modules only describe themselves with an
`Operator` record (`operator.py`); the pipeline here is shared by all of them. The checks are in
`checks.py`, the record of the work in `prep.py`.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .arrays import ArrayKind, ArrayLike, array_kind, converter, dtype_name, namespace, sparse_builder
from .backend import AbstractBackend
from .calls import Kernel, explained
from .checks import check_batch_size, check_flat, check_output, float_input, tangent_checker
from .contexts import Context, check_contexts
from .errors import PreparationMismatchError
from .guard import size_guard
from .kernels import BATCH_SIZE, SparseLayout
from .operator import Operator
from .prep import Prep
from .registry import implementation
from .trees import (
    OutputTree,
    TreeLayout,
    block_leaves,
    block_tree,
    concat,
    fingerprint,
    flat_function,
    flatten,
    is_tree,
    layout,
    tangent_leaves,
    tree_compiler,
    tree_kernels,
)

__all__ = ["evaluate", "prepare", "reuse"]


def _contexts_converter(target: ArrayKind, accepts: frozenset[str]) -> Callable[[tuple], tuple]:
    """Unwrap `Constant`/`Cache` contexts and convert the arrays inside them to `target`."""

    def leaf(value: Any) -> Any:
        kind = array_kind(value)
        if kind is None or kind is target or kind.name in accepts:
            return value
        return converter(kind, target)(value)  # type: ignore[misc]

    def convert(value: Any) -> Any:
        """An array, or the arrays of a tree (API.md section 10), converted leaf by leaf."""
        if array_kind(value) is not None or type(value) in (float, int, bool, str):
            return leaf(value)
        leaves, spec = flatten(value)  # once: a leaf that is no array comes back as it is
        return value if spec.is_leaf() else spec.unflatten([leaf(v) for v in leaves])

    return lambda contexts: tuple(convert(c.value) for c in contexts)


def _tree_converter(convert: Callable[[Any], Any], native: ArrayKind) -> Callable[[Any], Any]:
    """Apply `convert` to every native array in a (nested tuple) result, a tuple of a lazy kind's
    arrays evaluated at once first (`ArrayKind.evaluate`)."""
    evaluate = native.evaluate

    def walk(r: Any) -> Any:
        if isinstance(r, tuple):  # a list: faster than a generator; arrays without a call of `walk`
            return tuple([convert(v) if array_kind(v) is native else walk(v) for v in r])
        return convert(r) if array_kind(r) is native else r

    if evaluate is None:
        return walk

    def evaluated(r: Any) -> Any:
        if isinstance(r, tuple) and len(r) > 1:  # one result: its conversion evaluates it
            evaluate(r)
        return walk(r)

    return evaluated


def _check_call(operator: Operator, f: Any, backend: Any, contexts: tuple) -> None:
    """Check `f`, `backend` and the contexts (before `x`: a misplaced argument is named first)."""
    if not callable(f):
        raise TypeError(f"{operator.name}: `f` must be callable; got {type(f).__name__}.")
    if not isinstance(backend, AbstractBackend):
        raise TypeError(
            f"{operator.name}: `backend` must be a backend object such as `ad.AutoJAX()` or "
            f"`ad.AutoFiniteDiff()`; got {type(backend).__name__}. The argument order is "
            f"`ad.{operator.name}(f, backend, x, ...)`."
        )
    if any(type(c) is Prep for c in contexts):
        raise TypeError(
            f"{operator.name}: a `Prep` was passed as a positional argument; pass it by keyword: "
            f"`ad.{operator.name}(f, backend, x, ..., prep=prep)`."
        )
    check_contexts(operator.name, contexts)


def _setup(operator: Operator, backend: Any, x: Any) -> tuple:
    """Check `x`; pick the backend and the converters in and out."""
    x_array, kind = float_input(operator, x)
    impl = implementation(backend)
    native = impl.kind or kind
    to_native = None if kind.name in impl.accepts else converter(kind, native)
    from_native = converter(native, kind)
    if isinstance(x, float):
        to_native = _compose(lambda v: np.asarray(v, dtype=np.float64), to_native)
    return x_array, kind, impl, native, to_native, from_native, _contexts_converter(native, impl.accepts)


def _no_kernels(impl: Any, f: Any, x: Any, tangents: Any, contexts: tuple, spec: Any) -> Any:
    raise TypeError("`evaluate` computes no derivative: it has no kernels to prepare.")


_EVALUATE = Operator("evaluate", generic=_no_kernels)


def evaluate(f: Callable[..., Any], backend: AbstractBackend, x: ArrayLike, *contexts: Context) -> ArrayLike:
    """`evaluate(f, backend, x, *contexts) -> y`: `f` alone, run on the backend's arrays.

    For callers that need the value without a derivative (SciPy's `least_squares` residuals,
    output shapes): the arguments are converted as an operator would, and `y` comes back as the
    kind of `x`.
    """
    _check_call(_EVALUATE, f, backend, contexts)
    x_array, kind, impl, native, to_native, from_native, convert_contexts = _setup(_EVALUATE, backend, x)
    xn = x_array if to_native is None else to_native(x_array)
    context = native.context(xn) if native.context is not None else None
    with context() if context is not None else contextlib.nullcontext():
        y = f(xn, *convert_contexts(contexts))
    return y if from_native is None else from_native(y)


def prepare(
    operator: Operator,
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tangents: ArrayLike | tuple[ArrayLike, ...] | None,
    contexts: tuple[Context, ...],
    y: ArrayLike | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> Prep:
    """Validate the arguments, convert them to the backend's arrays and build its kernels.

    `batch_size` bounds the basis tangents a Jacobian or Hessian kernel pushes at once (see
    `tangent_batch`); other operators have no use for it. A tree `x`, a tree output or `flat=True`
    goes through the flat layout of `_core/trees.py` (`_prepare_tree`).
    """
    check_batch_size(operator, batch_size)
    check_flat(operator, flat)
    _check_call(operator, f, backend, contexts)
    if flat or (type(x) is not float and array_kind(x) is None):  # a tree, or a leaf to explain
        return _prepare_tree(operator, f, backend, x, tangents, contexts, y, batch_size, flat)
    try:
        return _prepare_array(operator, f, backend, x, tangents, contexts, y, batch_size, probe=True)
    except _TreeOutput:
        return _prepare_tree(operator, f, backend, x, tangents, contexts, y, batch_size, flat)


class _TreeOutput(Exception):
    """Raised at preparation when `f` returns a tree: the call is prepared again on the flat layout."""


def _probed(f: Callable[..., Any]) -> Callable[..., Any]:
    """`f` for the output check at preparation, raising `_TreeOutput` when it returns a tree."""

    def probe(*args: Any) -> Any:
        y = f(*args)
        if array_kind(y) is None and is_tree(y):
            raise _TreeOutput
        return y

    return probe


def _prepare_array(
    operator: Operator,
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tangents: Any,
    contexts: tuple[Context, ...],
    y: ArrayLike | None,
    batch_size: int | None,
    probe: bool = False,
    owner: Callable[..., Any] | None = None,
    raw: list | None = None,
) -> Prep:
    """`prepare` for one array `x` (`probe`: look out for a tree output; `owner`: the user's `f`;
    `raw`: a list receiving the backend's `Kernels`, which `_prepare_tree` may compile further)."""
    x_array, kind, impl, native, to_native, from_native, convert_contexts = _setup(operator, backend, x)
    translate = impl.translate_error
    xn = x_array if to_native is None else to_native(x_array)
    cn = convert_contexts(contexts)
    if y is not None:
        if not operator.two_argument:
            raise TypeError(
                f"{operator.name}: two-argument functions `f(y, x)` (passed with `y=`) are "
                "supported by pushforward, pullback, derivative and jacobian only."
            )
        y_kind = array_kind(y)
        if y_kind is None:
            raise TypeError(f"{operator.name}: `y` must be an array buffer; got {type(y).__name__}.")
        f_native = impl.one_argument(f, y if y_kind is native else converter(y_kind, native)(y))  # type: ignore[misc]
    else:
        f_native = f

    context = native.context(xn) if native.context is not None else None
    with context() if context is not None else contextlib.nullcontext():
        try:
            spec = impl.output_spec(_probed(f_native) if probe else f_native, xn, cn)
        except Exception as exc:
            if isinstance(exc, _TreeOutput):
                raise
            better = explained(exc, translate, operator.name)
            if better is None:
                raise
            raise better from exc
        check_output(operator, spec)
        tn = check_tangents = None
        if operator.tangents is not None:
            like_x = operator.tangents == "x"
            check_tangents = tangent_checker(
                operator.name,
                tuple(x_array.shape) if like_x else spec.shape,
                x_array.dtype if like_x else spec.dtype,
                x,
                tangents,
            )
            tangents, _ = check_tangents.check(tangents)
            tn = tangents if to_native is None else tuple(to_native(t) for t in tangents)
        builder, guarded = size_guard(operator, impl, f_native, xn, cn)
        token = BATCH_SIZE.set(batch_size)
        try:
            kernels = builder.kernels(operator, f_native, xn, tn, cn, spec)
        finally:
            BATCH_SIZE.reset(token)
        if guarded is not None:
            kernels = kernels._replace(info={**kernels.info, **guarded})
    if raw is not None:
        raw.append(kernels)
    out = None if from_native is None else _tree_converter(from_native, native)
    plain_out = value_out = out
    if kernels.sparse is not None:
        plain_out, value_out = _sparse_outputs(kernels.sparse, kind, out)

    # The prepared call converts the arrays of a dense result itself (`Kernel.convert`); a lazy
    # kind's tuple goes through `out`, which evaluates its arrays at once.
    inline = from_native is not None and kernels.sparse is None

    def bind(kernel: Callable[..., Any], out: Callable[[Any], Any] | None, results: Any, convert: bool) -> Kernel:
        return Kernel(
            kernel,
            to_native,
            convert_contexts,
            out,
            from_native if convert else None,
            results,
            kernels.single_tangent,
            native,
            translate,
            check_tangents,
            context,
        )

    return Prep(
        operator=operator,
        f=f if owner is None else owner,
        backend=backend,
        kind=kind,
        xtype=type(x),
        shape=tuple(x_array.shape),
        native_shape=getattr(x, "shape", None),
        dtype=x_array.dtype,
        buffer=None if y is None else tuple(y.shape),
        ncontexts=len(contexts),
        output=spec,
        info=kernels.info,
        plain=bind(kernels.plain, plain_out, operator.results[-1], inline),
        with_value=bind(kernels.with_value, value_out, operator.results, inline and not native.evaluate),
        batch_size=batch_size,
        tree=None,
        flat=False,
        sparse=kernels.sparse is not None,
    )


def _prepare_tree(
    operator: Operator,
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: Any,
    tangents: Any,
    contexts: tuple[Context, ...],
    y: Any,
    batch_size: int | None,
    flat: bool,
) -> Prep:
    """`prepare` on the flat layout: `x`'s differentiable leaves raveled into one vector.

    The backend differentiates `v ↦ ravel(f(unravel(v)))` with the one-array pipeline; the prep's
    calls ravel `x` and the tangents, and cut the flat results back into trees by the operator's
    result roles (`Operator.results`).
    """
    if y is not None:
        raise TypeError(
            f"{operator.name}: two-argument functions `f(y, x)` take one array `x` and `y`; "
            "write `f(x)` returning the output to differentiate trees."
        )
    xl = layout(x, operator.name)
    if operator.input == "scalar" and not (xl.spec.is_leaf() and xl.shapes == ((),)):
        raise TypeError(
            f"{operator.name}: `x` must be a scalar; got a tree with {len(xl.vary)} differentiable "
            f"leaves. Use `ad.{'pushforward' if operator.order == 1 else 'hvp'}` or "
            f"`ad.{'jacobian' if operator.order == 1 else 'hessian'}` for trees."
        )
    out = OutputTree(operator.name)
    flat_f = flat_function(f, xl, out)
    ravel: Callable[[list], Any] = xl.ravel
    if operator.input == "scalar":  # derivative operators: the one value as a 0-d array
        vector_f, ravel = flat_f, lambda leaves: _reshape(xl.ravel(leaves), ())

        def flat_f(v: Any, *contexts: Any) -> Any:
            return vector_f(_reshape(v, (1,)), *contexts)

    v = ravel(xl.leaves)
    evaluate(flat_f, backend, v, *contexts)
    yl = out.layout
    if operator.output == "scalar" and yl is not None:
        raise ValueError(
            f"{operator.name}: `f` must return one scalar; it returned a {yl.spec.type.__name__} "
            f"tree with leaves {', '.join(yl.paths)}. Use `ad.jacobian` or `ad.pullback` for tree outputs."
        )
    like = {"x": xl, "y": yl}
    ravel_tangents = None if operator.tangents is None else _tangent_raveler(operator.name, like[operator.tangents])
    flat_tangents = None if ravel_tangents is None else ravel_tangents(tangents)
    raw: list = []
    inner = _prepare_array(operator, flat_f, backend, v, flat_tangents, contexts, None, batch_size, owner=f, raw=raw)
    ydtype = dtype_name(inner.output.dtype)
    rebuild = [_rebuilder(role, xl, yl, flat, inner.sparse, ydtype) for role in operator.results]
    plain_rebuild, name = rebuild[-1], operator.name

    def rebuilt(results: tuple) -> tuple:
        return tuple(r(value) for r, value in zip(rebuild, results, strict=True))

    fused = None
    if ravel_tangents is None and operator.input != "scalar" and not inner.sparse:
        fused = _fused_tree(operator, backend, xl, yl, flat, ydtype, v, raw[0], inner.info)
    if fused is None and ravel_tangents is None and yl is None and not inner.sparse:
        fused = _leafwise_tree(operator, f, backend, xl, v, inner.info)
    if fused is not None:
        plain, with_value = fused
    elif ravel_tangents is None:

        def plain(x: Any, contexts: tuple) -> Any:
            return plain_rebuild(inner.plain(operator, f, backend, ravel(xl.accept(x, name)), contexts))

        def with_value(x: Any, contexts: tuple) -> Any:
            return rebuilt(inner.with_value(operator, f, backend, ravel(xl.accept(x, name)), contexts))

    else:

        def plain(x: Any, tangents: Any, contexts: tuple) -> Any:  # type: ignore[misc]
            result, single = inner.plain(
                operator, f, backend, ravel(xl.accept(x, name)), contexts, None, ravel_tangents(tangents)
            )
            return plain_rebuild(result), single

        def with_value(x: Any, tangents: Any, contexts: tuple) -> Any:  # type: ignore[misc]
            results, single = inner.with_value(
                operator, f, backend, ravel(xl.accept(x, name)), contexts, None, ravel_tangents(tangents)
            )
            return rebuilt(results), single

    return Prep(
        operator=operator,
        f=f,
        backend=backend,
        kind=inner.kind,
        xtype=type(x),
        shape=inner.shape,
        native_shape=None,
        dtype=inner.dtype,
        buffer=None,
        ncontexts=len(contexts),
        output=inner.output,
        info=inner.info,
        plain=plain,
        with_value=with_value,
        batch_size=batch_size,
        tree=xl,
        flat=flat,
        sparse=inner.sparse,
    )


def _fused_tree(
    operator: Operator,
    backend: AbstractBackend,
    xl: TreeLayout,
    yl: TreeLayout | None,
    flat: bool,
    ydtype: str,
    v: Any,
    kernels: Any,
    info: dict,
) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The prepared calls `(plain, with_value)` of a tree as one compiled call each, or `None`.

    For a backend that compiles its kernels on an array kind with a tree compiler
    (`register_tree_compiler`: JAX): raveling the leaves, the derivative kernel and the cut of
    its results into leaves become one program, one dispatch instead of three. A tree of plain
    containers (dicts with string keys, lists, tuples) whose leaves are all differentiable
    arrays of the backend's own kind is passed as it is: the compiled executable flattens and
    checks it (`kernel.exact`), and only a call it refuses is compared leaf by leaf
    (`TreeLayout.accept`, which names the paths that differ), then runs through the jitted
    function for good. Other trees are checked by `accept` and pass their differentiable leaves.
    """
    _, _, impl, native, to_native, from_native, convert_contexts = _setup(operator, backend, v)
    make = tree_compiler(native.name)
    if make is None or to_native is not None or impl.backend.combinator or info.get("compiled") is False:
        return None

    def probe(v: Any) -> Any:
        return v

    if impl.compile(probe, v) is probe:  # the backend runs eagerly (`AutoJAX(jit=False)`)
        return None
    context = native.context(v) if native.context is not None else None
    cuts = [_cutter(role, xl, yl, flat, ydtype) for role in operator.results]
    (plain_cut, plain_build), dtype = cuts[-1], xl.dtype

    def plain_fn(arg: Any, *contexts: Any) -> Any:
        return plain_cut(kernels.plain(concat(flatten(arg)[0], dtype), *contexts))

    def value_fn(arg: Any, *contexts: Any) -> tuple:
        results = kernels.with_value(concat(flatten(arg)[0], dtype), *contexts)
        return tuple(cut(r) for (cut, _), r in zip(cuts, results, strict=True))

    def value_build(results: tuple) -> tuple:
        return tuple(build(r) for (_, build), r in zip(cuts, results, strict=True))

    whole = len(xl.vary) == len(xl.leaves) and from_native is None and _plain_containers(xl.spec)
    out = None if from_native is None else _tree_converter(from_native, native)
    translate, name = impl.translate_error, operator.name
    return tuple(  # type: ignore[return-value]
        _fused_call(make(fn, context), build, whole, xl, name, None, convert_contexts, out, translate)
        for fn, build in ((plain_fn, plain_build), (value_fn, value_build))
    )


def _fused_call(
    kernel: Any,
    build: Callable[[Any], Any],
    whole: bool,
    xl: TreeLayout,
    name: str,
    to_native: Callable[[Any], Any] | None,
    convert_contexts: Callable[[tuple], tuple],
    out: Callable[[Any], Any] | None,
    translate: Callable[[Exception, str], Exception | None],
) -> Callable[..., Any]:
    """The prepared call `call(x, contexts)` around one tree kernel taking the list of
    differentiable leaves (see `_fused_tree`, `_leafwise_tree`), or `x` itself if `whole`."""
    exact, vary = whole, xl.vary  # `exact`: pass `x` to `kernel.exact` (until it refuses a call)

    def call(x: Any, contexts: tuple) -> Any:
        nonlocal exact
        args = convert_contexts(contexts) if contexts else ()
        try:
            if exact:
                try:
                    r = kernel.exact(x, *args)
                except TypeError:  # another tree, or other contexts: `accept` tells
                    leaves = xl.accept(x, name)
                    exact = False
                    r = kernel(leaves, *args)
            else:
                leaves = xl.accept(x, name)
                parts = [leaves[i] for i in vary]
                r = kernel(parts if to_native is None else [to_native(p) for p in parts], *args)
        except Exception as exc:
            better = explained(exc, translate, name)
            if better is None:
                raise
            raise better from exc
        return build(r if out is None else out(r))

    return call


def _leafwise_tree(
    operator: Operator, f: Callable[..., Any], backend: AbstractBackend, xl: TreeLayout, v: Any, info: dict
) -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """The prepared calls `(plain, with_value)` differentiating `f` leaf by leaf, where the array
    kind has tree kernels (`register_tree_kernels`: torch's tape, for gradients), or `None`.

    No flat vector then: `f` gets the leaves themselves (checked by `TreeLayout.accept` and
    converted one by one) and the kernels give one result per leaf.
    """
    if set(operator.results) - {"x", "y"} or any(type(leaf) is float for leaf in xl.leaves):
        return None
    _, _, impl, native, to_native, from_native, convert_contexts = _setup(operator, backend, v)
    make = tree_kernels(native.name)
    if make is None or impl.backend.combinator:
        return None
    args = xl.args

    def f_leaves(parts: list, *contexts: Any) -> Any:
        tree = xl.unflatten(parts, static=True)
        return f(*tree, *contexts) if args else f(tree, *contexts)

    made = make(operator.name, backend, info, f_leaves)
    if made is None:
        return None

    def build(r: Any) -> Any:
        return xl.unflatten(list(r), static=False)

    def value_build(results: tuple) -> tuple:
        return tuple(build(r) if role == "x" else r for role, r in zip(operator.results, results, strict=True))

    out = None if from_native is None else _tree_converter(from_native, native)
    translate, name = impl.translate_error, operator.name
    plain_build = build if operator.results[-1] == "x" else (lambda r: r)
    return tuple(  # type: ignore[return-value]
        _fused_call(kernel, rebuild, False, xl, name, to_native, convert_contexts, out, translate)
        for kernel, rebuild in zip(made, (plain_build, value_build), strict=True)
    )


def _plain_containers(spec: Any) -> bool:
    """Whether the tree structure `spec` has only dicts with string keys, lists, tuples and `None`
    (which every tree library flattens alike)."""
    if spec.is_leaf():
        return True
    if spec.type not in (dict, list, tuple, type(None)):
        return False
    if spec.type is dict and not all(type(key) is str for key in spec.entries()):
        return False
    return all(_plain_containers(child) for child in spec.children())


def _cutter(
    role: str, xl: TreeLayout, yl: TreeLayout | None, flat: bool, ydtype: str, alone: bool = False
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """`(cut, build)` for one flat result of `role` (dense): `cut` makes it a tuple of arrays, `build`
    their tree. `cut` is array operations, compiled with the kernel by `_fused_tree`; `alone`: a
    cut run on its own after the kernel (`TreeLayout.pieces`, compiled once per layout where the
    library compiles)."""
    if role == "x" or (role == "y" and yl is not None):
        lay = xl if role == "x" else yl
        assert lay is not None
        return (lay.pieces if alone else lay.cut), lambda pieces: lay.unflatten(list(pieces), static=False)
    if role == "y":
        return (lambda r: r), (lambda r: r)
    if role in ("xs", "ys"):
        cut, build = _cutter(role[0], xl, yl, flat, ydtype, alone)
        return (lambda rs: tuple(cut(r) for r in rs)), (lambda rs: tuple(build(r) for r in rs))
    rows = xl if role == "H" else yl
    return (lambda m: tuple(block_leaves(m, rows, xl, flat, ydtype))), (lambda b: block_tree(b, rows, xl, flat))


def _reshape(v: Any, shape: tuple[int, ...]) -> Any:
    return namespace(v).reshape(v, shape)


def _tangent_raveler(operator: str, lay: TreeLayout | None) -> Callable[[Any], Any]:
    """Tangents (one tree like `lay`, or a tuple of them) -> the flat tangent or tuple of them."""
    if lay is None:  # a bare array output: its tangents are checked by the one-array pipeline
        return lambda tangents: tangents
    return lambda tangents: tangent_leaves(operator, lay, tangents)


def _rebuilder(
    role: str, xl: TreeLayout, yl: TreeLayout | None, flat: bool, sparse: bool, ydtype: str
) -> Callable[[Any], Any]:
    """The function turning one flat result of `role` (see `Operator.results`) into its tree
    (a sparse matrix stays as it is)."""
    if sparse and role in ("J", "H"):
        return lambda r: r
    cut, build = _cutter(role, xl, yl, flat, ydtype, alone=True)
    return lambda r: build(cut(r))


def _sparse_outputs(
    layout: SparseLayout, kind: ArrayKind, out: Callable[[Any], Any] | None
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The output conversions of a sparse matrix result: `plain`'s, and `with_value`'s (matrix last).

    The kernels return the matrix's CSR data in the backend's kind; it becomes a sparse matrix
    of the user's kind (`_arrays.sparse_builder`), the other results are converted as usual.
    """
    build = sparse_builder(kind, *layout)

    def matrix(data: Any) -> Any:
        return build(data if out is None else out(data))

    def with_value(results: tuple) -> tuple:
        rest = results[:-1] if out is None else out(results[:-1])
        return (*rest, matrix(results[-1]))

    return matrix, with_value


def _compose(first: Callable[[Any], Any], then: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    return first if then is None else (lambda v: then(first(v)))


def reuse(
    prep: Prep | None,
    operator: Operator,
    f: Callable[..., Any],
    backend: AbstractBackend,
    x: ArrayLike,
    tangents: ArrayLike | tuple[ArrayLike, ...] | None,
    contexts: tuple[Context, ...],
    y: ArrayLike | None = None,
    batch_size: int | None = None,
    flat: bool = False,
) -> Prep:
    """The prep to use for a call: the one given, or a recent or new one.

    A prep of `operator` comes back at once: its calls check the rest of the signature (`Prep`'s
    guard, which checks the operator too, so the public functions call a `Prep` they are given
    without coming here, unless a `batch_size` or another `flat` is asked for). Another `prep`
    raises here, `None` finds or makes one (`_recent`).
    """
    if type(prep) is Prep and prep.operator is operator and batch_size is None and flat is prep.flat:
        return prep
    if prep is None:
        return _recent(operator, f, backend, x, tangents, contexts, y, batch_size, flat)
    if type(prep) is not Prep:
        raise TypeError(
            f"{operator.name}: `prep` must come from `ad.prepare_{operator.name}`; got {type(prep).__name__}."
        )
    prep.check(operator, f, backend, x, contexts, y)
    if batch_size is not None and batch_size != prep.batch_size:
        raise PreparationMismatchError(
            f"{operator.name}: `batch_size={batch_size!r}` differs from the {prep.batch_size!r} the "
            f"`prep` was built with. Pass `batch_size` to `ad.prepare_{operator.name}` only."
        )
    if flat is not prep.flat:
        raise PreparationMismatchError(
            f"{operator.name}: `flat={flat!r}` differs from the `flat={prep.flat!r}` the `prep` was "
            f"built with. Pass the same `flat` to `ad.prepare_{operator.name}` and to the call."
        )
    return prep


_RECENT: OrderedDict[tuple, Prep] = OrderedDict()
_RECENT_SIZE = 64
_RECENT_LOCK = threading.Lock()


def _recent(
    operator: Operator,
    f: Any,
    backend: Any,
    x: Any,
    tangents: Any,
    contexts: tuple,
    y: Any,
    batch_size: int | None,
    flat: bool,
) -> Prep:
    """The prep of an unprepared call, remembered for the next calls with the same signature.

    A prep is valid for any arguments of the same kind, shape and dtype, so unprepared calls in
    a loop (or inside SciPy callbacks and linear operators) pay the preparation — a JAX
    compilation, say — once instead of at every call. The last `_RECENT_SIZE` are kept.
    """
    try:
        key = (
            operator,
            f,
            backend,
            type(x),
            tuple(getattr(x, "shape", ())),
            str(getattr(x, "dtype", "")),
            tuple(type(c) for c in contexts),
            None if y is None else (type(y), tuple(y.shape), str(y.dtype)),
            batch_size,
            flat,
            None if type(x) is float or array_kind(x) is not None else fingerprint(*flatten(x)),
        )
        hash(key)
    except (TypeError, AttributeError):  # an unhashable `f` or backend: prepare afresh
        return prepare(operator, f, backend, x, tangents, contexts, y, batch_size, flat)
    with _RECENT_LOCK:
        prep = _RECENT.get(key)
        if prep is not None:
            _RECENT.move_to_end(key)
    if prep is None:
        prep = prepare(operator, f, backend, x, tangents, contexts, y, batch_size, flat)
        with _RECENT_LOCK:
            _RECENT[key] = prep
            if len(_RECENT) > _RECENT_SIZE:
                _RECENT.popitem(last=False)
    return prep
