"""Paddle programs calling a `DifferentiateWith` function: one `paddle.autograd.PyLayer`.

Its `backward` applies the layer again on derived nodes (`nodes.py`), so Paddle differentiates
through it again: `paddle.grad(..., create_graph=True)` gives second order (reverse over
reverse), and `paddle.incubate.autograd.jvp`, which Paddle computes in dynamic mode as the
derivative of a pullback with respect to its cotangent, gives forward mode. Paddle has no
`vmap` that reaches the layer, so no batched node ever does.

The layer takes its arrays as one list, not one argument each. `paddle.grad` prunes the edges
of a layer with several inputs that do not lead to the tensors it differentiates with respect
to, and then requires `backward` to return `None` for them, which `backward` cannot know (the
cotangent of a pullback is pruned when differentiating with respect to `x` only, and wanted
when differentiating with respect to the cotangent too). One list input is one edge: Paddle
prunes none of it, and takes `None` for an element that needs no gradient. Context arrays
enter detached: they get no gradient, as from torch.
"""

from __future__ import annotations

from typing import Any

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype
from anydiff.extend import array_kind, converter

from . import AutoPaddle
from .arrays import PADDLE
from .load import load_paddle

paddle = load_paddle()
_PyLayer: Any = paddle.autograd.PyLayer  # a class of a module loaded at run time

__all__ = ["asarray", "call", "owns", "transparent"]

#: the substitute that needs no bridge from Paddle
transparent = AutoPaddle


def owns(x: Any) -> bool:
    return isinstance(x, paddle.Tensor)


def asarray(a: Any) -> Any:
    """A context array as a Paddle tensor outside Paddle's graph."""
    kind = array_kind(a)
    if kind is None:
        return a
    return a.detach() if kind is PADDLE else converter(kind, PADDLE)(a)  # type: ignore[misc]


class _Call(_PyLayer):
    """`node(*args)` with derivatives from the node's derived nodes."""

    @staticmethod
    def forward(ctx: Any, node: Node, args: list) -> Any:  # type: ignore[override]
        ctx.node = node
        # which arguments are differentiated: `x` and the linear ones, when Paddle tracks them
        ctx.wanted = tuple(i <= node.k and not a.stop_gradient for i, a in enumerate(args))
        ctx.save_for_backward(*args)
        return evaluate(node, tuple(args), PADDLE)

    @staticmethod
    def backward(ctx: Any, ct: Any) -> list:  # type: ignore[override]
        args = tuple(ctx.saved_tensor())
        avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
        return cotangents(_Ops, ctx.node, args, ct, ctx.wanted, avals)


def call(node: Node, args: tuple) -> Any:
    return _Call.apply(node, list(args))


class _Ops:
    call = staticmethod(call)
