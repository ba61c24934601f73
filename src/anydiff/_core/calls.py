"""The prepared call: one function per prep, written for its arguments.

A prepared call in a loop should cost what the library's own call costs. Every layer between the
user's call and the kernel (the prep's signature check, the conversions in and out, the backend's
context manager, the translation of `f`'s errors) costs 0.1-0.3 µs as a Python function of its
own, and a JAX call at n = 10 takes 8-12 µs. So, as `dataclasses` writes an `__init__`,
`prepared_call` writes the layers a prep needs into one function: the source is put together from
the pieces below for the prep's combination (tangents or not, conversion of the inputs, contexts,
a context manager or a `Switch`, conversion of the result, one tangent passed alone to a kernel
that takes it so), compiled once per combination, and each prep binds its values (kernel,
converters, the signature it was built for) in a closure. The source is in `linecache`, so
tracebacks through a prepared call show its lines.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any, NamedTuple

from .arrays import ArrayKind, Switch, array_kind
from .checks import TangentCheck
from .errors import AnyDiffError

__all__ = ["Kernel", "explained", "prepared_call"]


class Kernel(NamedTuple):
    """How a prepared call runs one of the backend's kernels (made by `_prepare_array`).

    `kernel(x, *contexts)`, or `kernel(x, tangents, *contexts)` with a tuple of tangents (or one
    tangent, for a `single_tangent` kernel: `Kernels.single_tangent`), runs on the backend's
    arrays: `to_native` converts `x` and the tangents to them (`None`: they are taken as they
    are), `convert_contexts` the contexts' values. `out` converts a result back to the kind of
    `x`. `results` says what the result is made of: a role of `Operator.results` (the plain form:
    one array, or a tuple of one per tangent) or a tuple of them (the `value_and_` form). With
    `convert`, the prepared call converts the result's arrays of kind `native` itself, written
    out; a result with a tuple per tangent is written out for one tangent, and goes through `out`
    for several. A kernel marked `enters_context = True` enters the array kind's `context` itself.
    """

    kernel: Callable[..., Any]
    to_native: Callable[[Any], Any] | None
    convert_contexts: Callable[[tuple], tuple]
    out: Callable[[Any], Any] | None
    convert: Callable[[Any], Any] | None
    results: str | tuple[str, ...]
    single_tangent: bool
    native: ArrayKind
    translate: Callable[[Exception, str], Exception | None]
    tangents: TangentCheck | None
    context: Callable[[], ContextManager[Any]] | None


def explained(exc: Exception, translate: Callable[[Exception, str], Exception | None], name: str) -> Exception | None:
    """The backend's explanation of an exception from the user's `f` (`translate_error`), or `None`
    to raise it as it is (an anydiff error already explains itself)."""
    return None if isinstance(exc, AnyDiffError) else translate(exc, name)


def prepared_call(prep: Any, call: Kernel | Callable[..., Any]) -> Callable[..., Any]:
    """`prepared(operator, f, backend, x, contexts, y=None, tangents=None)`: the call of `prep`.

    It checks the call against the signature `prep` was built for, comparing identities first
    (`prep.check` compares in full what differs, and raises `PreparationMismatchError` unless only
    identities did), then runs `call`: a `Kernel`, written out, or a function `call(x, contexts)`
    (operators without tangents) or `call(x, tangents, contexts)` (returning `(result, single)`),
    called as it is. Operators with tangents return `(result, single)`: `single` when one tangent
    was given rather than a tuple. The check includes the operator, so that an operator's public
    function may call a prep it is given without going through `reuse`.
    """
    operator = prep.operator
    has_tangents = operator.tangents is not None
    # a float `x` or a tree (whose leaves `TreeLayout.accept` compares) has no shape to compare
    shape = not (prep.xtype is float or prep.tree is not None)
    values = {
        "operator": operator,
        "f": prep.f,
        "backend": prep.backend,
        "xtype": prep.xtype,
        "ncontexts": prep.ncontexts,
        "unbuffered": prep.buffer is None,
        # `x.shape` as the library gives it (a torch.Size, a TensorShape), faster to compare with
        # another than with a tuple (TensorFlow: 0.16 against 1 µs)
        "native_shape": prep.native_shape,
        "dtype": prep.dtype,
        "check": prep.check,
        "name": operator.name,
        "call": call,
        "explained": explained,
        "array_kind": array_kind,
    }
    if not isinstance(call, Kernel):
        key: tuple = (shape, has_tangents, False, False, False, False, None, None, False)
    else:
        context = None if getattr(call.kernel, "enters_context", False) else call.context
        values.update(call._asdict(), context=context, check_tangents=None)
        if isinstance(context, Switch):
            values.update(enter=context.enter, leave=context.leave)
        if call.tangents is not None:
            t_type, t_dtype, like, check_tangents = call.tangents
            values.update(t_type=t_type, t_dtype=t_dtype, like=like, check_tangents=check_tangents)
        conversion = "inline" if call.convert is not None else "out" if call.out is not None else None
        key = (
            shape,
            has_tangents,
            True,
            call.to_native is not None,
            prep.ncontexts > 0,
            "switch" if isinstance(context, Switch) else "with" if context is not None else None,
            call.results,
            conversion,
            has_tangents and call.single_tangent,
        )
    make = _MAKERS.get(key) or _compile(key)
    return make(**{name: values.get(name) for name in _PARAMETERS})


_PARAMETERS = (
    "operator", "f", "backend", "xtype", "ncontexts", "unbuffered", "native_shape", "dtype", "check", "name",
    "call", "explained", "array_kind", "kernel", "to_native", "convert_contexts", "out", "convert", "native",
    "translate", "context", "enter", "leave", "t_type", "t_dtype", "like", "check_tangents",
)  # fmt: skip

_MAKERS: dict[tuple, Callable[..., Callable[..., Any]]] = {}

# The pieces of a prepared call's source, indented for the body of `prepared`.
_SIGNATURE = """\
def prepared(operator_, f_, backend_, x, contexts, y=None, tangents=None):
    if not (
        operator_ is operator
        and f_ is f
        and backend_ is backend
        and type(x) is xtype
        and len(contexts) == ncontexts
        and (y is None) is unbuffered
"""
# MLX makes a new dtype object on each access (equal, not identical): read once
_SHAPE = """\
        and x.shape == native_shape
        and ((d := x.dtype) is dtype or d == dtype)
"""
_CHECK = """\
    ):
        check(operator_, f_, backend_, x, contexts, y)
"""
# the usual case, one tangent like the preparation's, written out (and converted, `{one}`); any
# other: `check_tangents`, then `{other}` (one tangent alone for a `single_tangent` kernel, and
# the tangents converted)
_TANGENTS = """\
    if (
        type(tangents) is t_type
        and ((d := tangents.dtype) is t_dtype or d == t_dtype)
        and tangents.shape == like
    ):
        batch, single = {one}, True
    else:
        batch, single = check_tangents(tangents)
{other}"""
# the kernel's call, `{run}` below, in the kind's context entered as `Kernel.context` says
_ENTERED = {
    None: "        {call}\n",
    "with": "        with context():\n            {call}\n",
    "switch": "        token = enter()\n        try:\n            {call}\n        finally:\n            leave(token)\n",
}
_RUN = """\
    try:
{run}    except Exception as exc:
        better = explained(exc, translate, name)
        if better is None:
            raise
        raise better from exc
"""


def _finished(results: str | tuple[str, ...], conversion: str | None, alone: bool) -> str:
    """The lines turning the kernel's result `r`, made of `results` (`Kernel.results`), into the
    prepared call's: converted (`conversion`: `"inline"`, `"out"` or `None`), and the result of
    one tangent in a tuple where the kernel gave it `alone`."""

    def array(path: str, convert: bool) -> str:
        return f"(convert(v) if array_kind(v := {path}) is native else v)" if convert else path

    def part(role: str, path: str, convert: bool) -> str:
        if role in _PER_TANGENT:  # written out for one tangent
            return f"({array(path if alone else path + '[0]', convert)},)"
        return array(path, convert)

    def whole(convert: bool) -> str:
        if isinstance(results, str):
            return part(results, "r", convert)
        return "(" + "".join(part(role, f"r[{i}]", convert) + ", " for i, role in enumerate(results)) + ")"

    roles = (results,) if isinstance(results, str) else results
    if _PER_TANGENT.isdisjoint(roles):
        return {"inline": f"    r = {whole(True)}\n", "out": "    r = out(r)\n", None: ""}[conversion]
    if conversion == "inline":
        return f"    if single:\n        r = {whole(True)}\n    else:\n        r = out(r)\n"
    lines = "    r = out(r)\n" if conversion == "out" else ""
    return lines + (f"    if single:\n        r = {whole(False)}\n" if alone else "")


_PER_TANGENT = {"ys", "xs"}


def _source(key: tuple) -> str:
    """The source of `make(<_PARAMETERS>) -> prepared` for one combination of `prepared_call`:
    `(shape, tangents, kernel, to_native, contexts, context, results, conversion, alone)`, where
    `context` is how the kernel's context is entered: `"with"`, `"switch"` (a `Switch`) or `None`."""
    shape, has_tangents, kernel, to_native, contexts, context, results, conversion, alone = key
    lines = _SIGNATURE + (_SHAPE if shape else "") + _CHECK
    if not kernel:  # a function `call`, called as it is
        lines += f"    return call(x, {'tangents, ' if has_tangents else ''}contexts)\n"
    else:
        if has_tangents:
            wrap = "to_native({})" if to_native else "{}"
            one = wrap.format("tangents")
            many = "tuple([to_native(t) for t in batch])" if to_native else "batch"
            if alone:
                other = f"        batch = {wrap.format('batch[0]')} if single else {many}\n"
            else:
                other = f"        batch = {many}\n" if to_native else ""
            lines += _TANGENTS.format(one=one if alone else f"({one},)", other=other)
        if to_native:
            lines += "    x = to_native(x)\n"
        arguments = ", ".join(["x"] + ["batch"] * has_tangents + ["*convert_contexts(contexts)"] * contexts)
        lines += _RUN.format(run=_ENTERED[context].format(call=f"r = kernel({arguments})"))
        lines += _finished(results, conversion, alone)
        lines += "    return r, single\n" if has_tangents else "    return r\n"
    body = "".join("    " + line + "\n" for line in lines.splitlines())
    return f"def make({', '.join(_PARAMETERS)}):\n{body}    return prepared\n"


def _compile(key: tuple) -> Callable[..., Callable[..., Any]]:
    source = _source(key)
    filename = f"<anydiff prepared call {'-'.join(map(str, key))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict[str, Any] = {"__name__": __name__}  # frames of anydiff, for `_user_level`
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102  # our own source, above
    make = _MAKERS[key] = namespace["make"]
    return make
