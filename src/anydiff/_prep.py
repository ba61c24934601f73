"""Preparation: validate once, convert arrays, build the backend's kernels, check every reuse.

Every operator goes through `prepare` (one-time work) and `Prep.check` (a cheap test that the
call matches what the prep was built for). The operator modules only describe themselves with an
`Operator` record; the pipeline here is shared by all of them.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._arrays import ArrayKind, array_kind, converter, sparse_builder
from ._backend import AbstractBackend
from ._contexts import check_contexts
from ._errors import AnyDiffError, PreparationMismatchError
from ._kernels import Kernels, OutputSpec, SparseLayout
from ._registry import implementation

__all__ = ["Operator", "Prep", "evaluate", "prepare", "reuse", "tangent_batch"]

_FLOAT_DTYPES = ("float32", "float64")

#: The default bound on the memory of the tangents (and their results) that a Jacobian or
#: Hessian pushes through `f` at once: a 20 000 x 20 000 float64 Jacobian (3.2 GB) then runs
#: in batches of 838 columns instead of one batch of 20 000.
TANGENT_BYTES = 256 * 2**20

# The `batch_size` given to the `prepare_<operator>` being run, read by the kernels it builds.
_BATCH_SIZE: contextvars.ContextVar[int | None] = contextvars.ContextVar("anydiff_batch_size", default=None)


def tangent_batch(count: int, bytes_per_tangent: int) -> int:
    """How many of `count` basis tangents a Jacobian or Hessian kernel pushes through `f` at once.

    The `batch_size` passed to `prepare_jacobian` / `prepare_hessian` when there is one, otherwise
    as many as fit in `TANGENT_BYTES`; a kernel being prepared reads it once, at prepare time.
    """
    chosen = _BATCH_SIZE.get()
    if chosen is None:
        chosen = TANGENT_BYTES // max(1, bytes_per_tangent)
    return max(1, min(count, chosen))


def _check_batch_size(operator: Operator, batch_size: Any) -> None:
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(
            f"{operator.name}: `batch_size` must be a positive integer (the most basis tangents "
            f"pushed through `f` at once) or None for the default; got {batch_size!r}."
        )


@dataclass(frozen=True, slots=True)
class Operator:
    """What the shared pipeline needs to know about one operator.

    Attributes:
        name: the operator's name (`"gradient"`); its backend method is `prepare_<name>`.
        tangents: what the operator's tangents are shaped like: `None` (no tangents), `"x"`
            (pushforward, hvp) or `"y"` (pullback).
        output: the requirement on `f`'s output: `"any"`, `"scalar"` (shape `()`) or `"array"`.
        input: the requirement on `x`: `"any"` or `"scalar"` (derivative operators).
        two_argument: whether `f(y, x)` functions are allowed (with `y=`).
        value_form: the name of the operator's value-returning form, for messages.
    """

    name: str
    tangents: Literal["x", "y"] | None = None
    output: Literal["any", "scalar", "array"] = "any"
    input: Literal["any", "scalar"] = "any"
    two_argument: bool = False
    value_form: str = ""

    def kernels(self, impl: Any, f: Any, x: Any, tangents: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
        method = getattr(impl, f"prepare_{self.name}")
        if self.tangents is None:
            return method(f, x, contexts, spec)
        return method(f, x, tangents, contexts, spec)


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None)  # NumPy and TensorFlow dtypes ("float64")
    name = name if isinstance(name, str) else str(dtype).rsplit(".", 1)[-1]  # "torch.float64"
    return _C_NAMES.get(name, name)


# tinygrad names its dtypes after C's types.
_C_NAMES = {"double": "float64", "float": "float32", "half": "float16"}


def _describe_kind(x: Any) -> str:
    kind = array_kind(x)
    return kind.name if kind is not None else type(x).__name__


def _float_input(operator: Operator, x: Any) -> tuple[Any, ArrayKind]:
    """Check `x` and return it as an array with its kind (a Python float becomes NumPy)."""
    if isinstance(x, float):
        return np.asarray(x, dtype=np.float64), array_kind(np.float64(0.0))  # type: ignore[return-value]
    kind = array_kind(x)
    if kind is None:
        raise TypeError(
            f"{operator.name}: `x` must be an array (NumPy, JAX, torch, ...) or a Python float; "
            f"got {type(x).__name__}. Convert it first, e.g. `numpy.asarray(x, dtype=float)`."
        )
    dtype = _dtype_name(x.dtype)
    if dtype not in _FLOAT_DTYPES:
        hint = "complex inputs are not supported; " if "complex" in dtype else ""
        raise TypeError(
            f"{operator.name}: `x` must have a real floating-point dtype (float32 or float64); "
            f"got {dtype}. {hint}Convert it first, e.g. `x.astype(float)` or `x.double()`."
        )
    if operator.input == "scalar" and tuple(x.shape) != ():
        raise ValueError(
            f"{operator.name}: `x` must be a scalar (a float or a 0-d array); got shape "
            f"{tuple(x.shape)}. Use `ad.{'jacobian' if operator.name == 'derivative' else 'hessian'}` "
            "for array inputs."
        )
    return x, kind


def _check_output(operator: Operator, spec: OutputSpec) -> None:
    if operator.output == "scalar" and spec.shape != ():
        raise ValueError(
            f"{operator.name}: `f` must return a scalar (shape ()); it returned shape {spec.shape}. "
            "Use `ad.jacobian` (or `ad.pullback`) for array outputs, or reduce the output, "
            "e.g. `xp.sum(...)`."
        )
    if _dtype_name(spec.dtype) not in _FLOAT_DTYPES:
        raise TypeError(
            f"{operator.name}: `f` must return a real floating-point array (float32 or float64); "
            f"it returned dtype {_dtype_name(spec.dtype)}."
        )


def _contexts_converter(target: ArrayKind, accepts: frozenset[str]) -> Callable[[tuple], tuple]:
    """Unwrap `Constant`/`Cache` contexts and convert the arrays inside them to `target`."""

    def convert(value: Any) -> Any:
        kind = array_kind(value)
        if kind is not None:
            if kind is target or kind.name in accepts:
                return value
            return converter(kind, target)(value)  # type: ignore[misc]
        if isinstance(value, (tuple, list)):
            return type(value)(convert(v) for v in value)
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        return value

    return lambda contexts: tuple(convert(c.value) for c in contexts)


def _tree_converter(convert: Callable[[Any], Any], native: ArrayKind) -> Callable[[Any], Any]:
    """Apply `convert` to every native array in a (nested tuple) result."""

    def walk(r: Any) -> Any:
        if isinstance(r, tuple):
            return tuple(walk(v) for v in r)
        return convert(r) if array_kind(r) is native else r

    return walk


class Prep:
    """The one-time work of an operator, and the arguments it was built for.

    Made by `ad.prepare_<operator>(...)` and passed back with `prep=`. A prep may be reused for
    any `x`, tangents and contexts of the same array kind, shape and dtype; a call with another
    function, backend, operator, kind, shape or dtype raises `ad.PreparationMismatchError`.

    `prep.info` says what the backend chose (mode, strategy, batch size, ...). A prep holds no
    lock: share one between threads only for backends documented as thread-safe.
    """

    __slots__ = (
        "operator",
        "f",
        "backend",
        "kind",
        "xtype",
        "shape",
        "dtype",
        "ncontexts",
        "buffer",
        "output",
        "info",
        "plain",
        "with_value",
        "batch_size",
    )

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Prep is immutable")

    def __getattr__(self, name: str) -> Any:
        # What a backend reports on its prep (`prep.sparsity`, `prep.colors`, ...).
        try:
            return object.__getattribute__(self, "info")[name]
        except KeyError:
            raise AttributeError(f"this {self.operator.name} prep has no attribute {name!r}") from None

    def __repr__(self) -> str:
        chosen = "".join(f", {k}={v!r}" for k, v in self.info.items() if isinstance(v, (str, int)))
        return (
            f"<Prep {self.operator.name} with {self.backend!r} for {self.kind.name} "
            f"{_dtype_name(self.dtype)} {self.shape}{chosen}>"
        )

    def check(self, operator: Operator, f: Any, backend: Any, x: Any, contexts: tuple, y: Any = None) -> None:
        """Raise `PreparationMismatchError` unless the call matches the prep.

        Identity comparisons first: a prepared call in a loop pays about 0.2 µs here. (MLX makes a
        new dtype object on each access: equal, not identical.)
        """
        if (
            operator is not self.operator
            or f is not self.f
            or backend is not self.backend
            or type(x) is not self.xtype
            or len(contexts) != self.ncontexts
            or (
                self.xtype is not float
                # `tuple(...)`: TensorFlow's shapes take 2 µs to compare with a tuple, 0.3 µs to convert
                and (tuple(x.shape) != self.shape or (x.dtype is not self.dtype and x.dtype != self.dtype))
            )
            or (y is None) is not (self.buffer is None)
        ):
            self._check_slowly(operator, f, backend, x, contexts, y)

    def _check_slowly(self, operator: Operator, f: Any, backend: Any, x: Any, contexts: tuple, y: Any) -> None:
        """The full comparison, by equality (an equal backend or bound method is fine)."""
        is_float = type(x) is float
        rows = [
            ("operator", self.operator.name, operator.name, operator is self.operator),
            ("function", _name(self.f), _name(f), f is self.f or f == self.f),
            ("backend", repr(self.backend), repr(backend), backend == self.backend),
            (
                "array kind",
                _kind_label(self.xtype, self.kind),
                _kind_label(type(x), array_kind(x)),
                type(x) is self.xtype,
            ),
            ("shape", str(self.shape), "()" if is_float else str(tuple(getattr(x, "shape", ()))), None),
            ("dtype", _dtype_name(self.dtype), "float64" if is_float else _dtype_name(getattr(x, "dtype", "-")), None),
            ("contexts", str(self.ncontexts), str(len(contexts)), None),
            ("y buffer", str(self.buffer), str(None if y is None else tuple(y.shape)), None),
        ]
        rows = [(name, a, b, a == b if same is None else same) for name, a, b, same in rows]
        if all(same for *_, same in rows):
            return
        if rows[1][1] == rows[1][2] and not rows[1][3]:
            rows[1] = (rows[1][0], rows[1][1], rows[1][2] + " (another object)", False)
        width = max(len(r[1]) for r in rows) + 2
        table = "\n".join(f"  {' ' if same else '✗'} {name:<11} {a:<{width}} {b}" for name, a, b, same in rows)
        raise PreparationMismatchError(
            f"{operator.name}: the `prep` passed was built for other arguments:\n"
            f"    {'':<11} {'prepared for':<{width}} received\n{table}\n"
            f"Prepare again with `ad.prepare_{operator.name}` for these arguments, or call without "
            "`prep=`."
        )


def _kind_label(tp: type, kind: ArrayKind | None) -> str:
    if tp is float:
        return "float"
    return kind.name if kind is not None else tp.__name__


def _name(f: Any) -> str:
    return getattr(f, "__qualname__", None) or repr(f)


def _setup(operator: Operator, f: Any, backend: Any, x: Any, contexts: tuple) -> tuple:
    """Check `f`, `backend`, `x` and contexts; pick the backend and the converters in and out."""
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
    x_array, kind = _float_input(operator, x)
    impl = implementation(backend)
    native = impl.kind or kind
    to_native = None if kind.name in impl.accepts else converter(kind, native)
    from_native = converter(native, kind)
    if isinstance(x, float):
        to_native = _compose(lambda v: np.asarray(v, dtype=np.float64), to_native)
    return x_array, kind, impl, native, to_native, from_native, _contexts_converter(native, impl.accepts)


_EVALUATE = Operator("evaluate")


def evaluate(f: Any, backend: Any, x: Any, *contexts: Any) -> Any:
    """`evaluate(f, backend, x, *contexts) -> y`: `f` alone, run on the backend's arrays.

    For callers that need the value without a derivative (SciPy's `least_squares` residuals,
    output shapes): the arguments are converted as an operator would, and `y` comes back as the
    kind of `x`.
    """
    x_array, kind, impl, native, to_native, from_native, convert_contexts = _setup(_EVALUATE, f, backend, x, contexts)
    xn = x_array if to_native is None else to_native(x_array)
    context = native.context(xn) if native.context is not None else None
    with context() if context is not None else contextlib.nullcontext():
        y = f(xn, *convert_contexts(contexts))
    return y if from_native is None else from_native(y)


def prepare(
    operator: Operator,
    f: Any,
    backend: Any,
    x: Any,
    tangents: Any,
    contexts: tuple,
    y: Any = None,
    batch_size: int | None = None,
) -> Prep:
    """Validate the arguments, convert them to the backend's arrays and build its kernels.

    `batch_size` bounds the basis tangents a Jacobian or Hessian kernel pushes at once (see
    `tangent_batch`); other operators have no use for it.
    """
    _check_batch_size(operator, batch_size)
    x_array, kind, impl, native, to_native, from_native, convert_contexts = _setup(operator, f, backend, x, contexts)
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
            spec = impl.output_spec(f_native, xn, cn)
        except Exception as exc:
            better = None if isinstance(exc, AnyDiffError) else translate(exc, operator.name)
            if better is None:
                raise
            raise better from exc
        _check_output(operator, spec)
        tn = check_tangents = None
        if operator.tangents is not None:
            like_x = operator.tangents == "x"
            check_tangents = _tangent_checker(
                operator.name,
                tuple(x_array.shape) if like_x else spec.shape,
                x_array.dtype if like_x else spec.dtype,
                x,
            )
            tangents, _ = check_tangents(tangents)
            tn = tangents if to_native is None else tuple(to_native(t) for t in tangents)
        token = _BATCH_SIZE.set(batch_size)
        try:
            kernels = operator.kernels(impl, f_native, xn, tn, cn, spec)
        finally:
            _BATCH_SIZE.reset(token)
    out = None if from_native is None else _tree_converter(from_native, native)
    plain_out = value_out = out
    if kernels.sparse is not None:
        plain_out, value_out = _sparse_outputs(kernels.sparse, kind, out)

    def bind(kernel: Callable[..., Any], out: Callable[[Any], Any] | None) -> Callable[..., Any]:
        return _bind(
            kernel,
            to_native,
            convert_contexts,
            out,
            translate,
            operator.name,
            check_tangents,
            context,
        )

    return Prep(
        operator=operator,
        f=f,
        backend=backend,
        kind=kind,
        xtype=type(x),
        shape=tuple(x_array.shape),
        dtype=x_array.dtype,
        buffer=None if y is None else tuple(y.shape),
        ncontexts=len(contexts),
        output=spec,
        info=kernels.info,
        plain=bind(kernels.plain, plain_out),
        with_value=bind(kernels.with_value, value_out),
        batch_size=batch_size,
    )


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


def _tangent_tuple(name: str, tangents: Any, expected: tuple[int, ...], dtype: str, x: Any) -> tuple[tuple, bool]:
    """`(tangents as a tuple, whether one bare array was given)`, after checking each one."""
    if isinstance(tangents, list):
        raise TypeError(
            f"{name}: several tangents must be passed as a tuple of arrays; got a list. Write `tuple(tangents)`."
        )
    single = not isinstance(tangents, tuple)
    batch = (tangents,) if single else tangents
    if not batch:
        raise ValueError(f"{name}: the tuple of tangents is empty; pass at least one array.")
    x_kind = "float" if isinstance(x, float) else _describe_kind(x)
    of = "`x`" if name in ("pushforward", "hvp") else "`f(x)`"
    for i, t in enumerate(batch):
        label = "the tangent" if single else f"tangent {i}"
        t_kind = "float" if isinstance(t, float) else _describe_kind(t)
        if t_kind != x_kind and not (x_kind in ("float", "numpy") and t_kind in ("float", "numpy")):
            raise TypeError(f"{name}: {label} must be the same kind of array as `x` ({x_kind}); got {t_kind}.")
        shape = () if isinstance(t, float) else tuple(t.shape)
        if shape != expected:
            raise ValueError(f"{name}: {label} must have the shape of {of}, {expected}; got {shape}.")
        t_dtype = "float64" if isinstance(t, float) else _dtype_name(t.dtype)
        if t_dtype != dtype:
            raise TypeError(f"{name}: {label} must have the dtype of {of}, {dtype}; got {t_dtype}. Cast it first.")
    return batch, single


def _tangent_checker(name: str, expected: tuple[int, ...], dtype: Any, x: Any) -> Callable[[Any], tuple[tuple, bool]]:
    """The per-call tangent check: identity tests for the usual case, `_tangent_tuple` otherwise."""
    # A Python-float `x` always takes the full check (its tangents may be floats or 0-d arrays).
    xtype, dtype_name = (None if isinstance(x, float) else type(x)), _dtype_name(dtype)
    native_dtype = getattr(x, "dtype", None) if dtype_name == _dtype_name(getattr(x, "dtype", "float64")) else None

    def usual(t: Any) -> bool:
        return (
            type(t) is xtype
            and (t.dtype is native_dtype or t.dtype == native_dtype)  # MLX: equal, not identical
            and tuple(t.shape) == expected  # TensorFlow: see `Prep.check`
        )

    def check(tangents: Any) -> tuple[tuple, bool]:
        if type(tangents) is tuple:
            if tangents and all(usual(t) for t in tangents):
                return tangents, False
        elif usual(tangents):
            return (tangents,), True
        return _tangent_tuple(name, tangents, expected, dtype_name, x)

    return check


def _bind(
    kernel: Callable[..., Any],
    to_native: Callable[[Any], Any] | None,
    convert_contexts: Callable[[tuple], tuple],
    out: Callable[[Any], Any] | None,
    translate: Callable[[Exception, str], Exception | None],
    name: str,
    check_tangents: Callable[[Any], tuple[tuple, bool]] | None,
    context: Callable[[], ContextManager[Any]] | None,
) -> Callable[..., Any]:
    """The prepared call: convert inputs, run the kernel (in the backend's context), convert back.

    Returns `call(x, contexts)` for operators without tangents and
    `call(x, tangents, contexts) -> (result, single)` for the others. The common case (the
    backend's own arrays, no contexts) costs one Python frame on top of the kernel.
    """

    def explained(exc: Exception) -> Exception | None:
        return None if isinstance(exc, AnyDiffError) else translate(exc, name)

    def run(*args: Any) -> Any:
        if context is None:
            return kernel(*args)
        with context():
            return kernel(*args)

    if check_tangents is None:
        if to_native is None and out is None:

            def call(x: Any, contexts: tuple) -> Any:
                try:
                    if contexts:
                        return run(x, *convert_contexts(contexts))
                    if context is None:
                        return kernel(x)
                    with context():
                        return kernel(x)
                except Exception as exc:
                    better = explained(exc)
                    if better is None:
                        raise
                    raise better from exc

            return call

        def convert_and_call(x: Any, contexts: tuple) -> Any:
            if to_native is not None:
                x = to_native(x)
            try:
                r = run(x, *convert_contexts(contexts)) if contexts else run(x)
            except Exception as exc:
                better = explained(exc)
                if better is None:
                    raise
                raise better from exc
            return r if out is None else out(r)

        return convert_and_call

    def call_with_tangents(x: Any, tangents: Any, contexts: tuple) -> tuple[Any, bool]:
        batch, single = check_tangents(tangents)  # type: ignore[misc]
        if to_native is not None:
            x = to_native(x)
            batch = tuple(to_native(t) for t in batch)
        try:
            r = run(x, batch, *convert_contexts(contexts)) if contexts else run(x, batch)
        except Exception as exc:
            better = explained(exc)
            if better is None:
                raise
            raise better from exc
        return (r if out is None else out(r)), single

    return call_with_tangents


def reuse(
    prep: Prep | None,
    operator: Operator,
    f: Any,
    backend: Any,
    x: Any,
    tangents: Any,
    contexts: tuple,
    y: Any = None,
    batch_size: int | None = None,
) -> Prep:
    """The prep to use for a call: the one given after checking it, or a recent or new one."""
    if prep is None:
        return _recent(operator, f, backend, x, tangents, contexts, y, batch_size)
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
    return prep


_RECENT: OrderedDict[tuple, Prep] = OrderedDict()
_RECENT_SIZE = 64
_RECENT_LOCK = threading.Lock()


def _recent(
    operator: Operator, f: Any, backend: Any, x: Any, tangents: Any, contexts: tuple, y: Any, batch_size: int | None
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
        )
        hash(key)
    except (TypeError, AttributeError):  # an unhashable `f` or backend: prepare afresh
        return prepare(operator, f, backend, x, tangents, contexts, y, batch_size)
    with _RECENT_LOCK:
        prep = _RECENT.get(key)
        if prep is not None:
            _RECENT.move_to_end(key)
    if prep is None:
        prep = prepare(operator, f, backend, x, tangents, contexts, y, batch_size)
        with _RECENT_LOCK:
            _RECENT[key] = prep
            if len(_RECENT) > _RECENT_SIZE:
                _RECENT.popitem(last=False)
    return prep
