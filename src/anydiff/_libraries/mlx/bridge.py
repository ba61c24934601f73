"""MLX programs calling a `DifferentiateWith` function: one `mx.custom_function` per node.

Its `vjp` and `jvp` call the custom functions of derived nodes (`nodes.py`), which have rules
in turn, so `mx.grad`, `mx.value_and_grad`, `mx.vjp`, `mx.jvp` and their compositions (second
order: the gradient of a gradient, forward over reverse) work.

`mx.compile` and `mx.vmap` trace a function on arrays without values and cannot run Python code
on values in the compiled or vectorised program: MLX has no host callback. The substitute
needs values, so a call under them raises `ad.UnsupportedError` naming what works.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype, tangent
from anydiff.extend import UnsupportedError, array_kind, converter

from . import AutoMLX
from .arrays import MLX

__all__ = ["asarray", "call", "owns", "transparent"]

#: the substitute that needs no bridge from MLX
transparent = AutoMLX
#: no call from `mx.compile` or `mx.vmap` (`callable_from`): anydiff's MLX operators, which
#: compile and vectorise, cannot be the outer part of a `SecondOrder` pair across libraries
compiled = False


def owns(x: Any) -> bool:
    return isinstance(x, mx.array)


def asarray(a: Any) -> Any:
    """A context array as an MLX array (MLX's own as they are)."""
    kind = array_kind(a)
    return a if kind is None or kind is MLX else converter(kind, MLX)(a)  # type: ignore[misc]


def _arguments(primals: Any, tree: Any) -> tuple:
    """`tree` (the primals, tangents, ...) as a tuple: MLX hands a rule the argument of a
    one-argument function bare, and those of several as a sequence."""
    return (tree,) if isinstance(primals, mx.array) else tuple(tree)


def _custom(node: Node) -> Any:
    """The custom function of `node`, with its rules."""

    def value(*args: Any) -> Any:
        try:
            return evaluate(node, args, MLX)
        except ValueError as exc:
            if not str(exc).startswith("[eval]"):
                raise
            raise UnsupportedError(
                f"{node.base!r} was called inside `mx.compile` or `mx.vmap`: they trace on arrays "
                "without values and MLX cannot call Python code (the substitute) from the traced "
                "program. What works: the call, `mx.grad`, `mx.value_and_grad`, `mx.vjp`, "
                "`mx.jvp` and their compositions, eagerly; compile only the MLX code around the call."
            ) from exc

    custom = mx.custom_function(value)

    @custom.vjp
    def _(primals: Any, ct: Any, output: Any) -> Any:
        args = _arguments(primals, primals)
        avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
        wanted = tuple(i <= node.k for i in range(len(args)))
        found = cotangents(_Ops, node, args, ct, wanted, avals)
        # Context arrays get no gradient (as from torch): zeros, which MLX's rules expect.
        result = tuple(mx.zeros_like(a) if c is None else c for a, c in zip(args, found, strict=True))
        return result[0] if isinstance(primals, mx.array) else result

    @custom.jvp
    def _(primals: Any, tangents: Any) -> Any:
        args, ts = _arguments(primals, primals), _arguments(primals, tangents)
        # contexts are not differentiated: MLX's tangents on them are dropped (as torch's are)
        ty = tangent(_Ops, node, args, (*ts[: 1 + node.k], *(None,) * (len(args) - 1 - node.k)))
        return mx.zeros_like(value(*args)) if ty is None else ty

    return custom


def call(node: Node, args: tuple) -> Any:
    # The custom function lives with the node's preps (made outside its lock: two threads may
    # both make one, which is harmless).
    found = node._preps.get("mlx")
    if found is None:
        found = node._preps.setdefault("mlx", _custom(node))
    return found(*args)


class _Ops:
    call = staticmethod(call)
