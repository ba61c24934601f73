"""PyTorch programs calling a `DifferentiateWith` function: one `torch.autograd.Function`.

Its `backward` and `jvp` apply the Function again on derived nodes (`nodes.py`), so they are
differentiable themselves (double backward, forward over reverse), and its `vmap` maps a node
instead of tracing `f`: `torch.autograd.grad`, forward-mode dual numbers and the `torch.func`
transforms (`grad`, `vjp`, `jvp`, `jacrev`, `jacfwd`, `hessian`, `vmap`) all work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.autograd.forward_ad as fwad

from anydiff.bridge.nodes import Node, cotangents, evaluate, numpy_dtype, tangent
from anydiff.extend import array_kind, array_kinds, converter

from . import AutoTorch

__all__ = ["asarray", "call", "owns", "transparent"]

_TORCH = array_kinds()["torch"]

#: the substitute that needs no bridge from torch
transparent = AutoTorch


def owns(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def asarray(a: Any) -> Any:
    """A context array as a tensor, so that `vmap` may map over it."""
    kind = array_kind(a)
    return a if kind is None or kind is _TORCH else converter(kind, _TORCH)(a)  # type: ignore[misc]


class _Call(torch.autograd.Function):
    """`node(*args)` with derivatives from the node's derived nodes."""

    @staticmethod
    def forward(node: Node, *args: Any) -> Any:  # type: ignore[override]
        return evaluate(node, args, _TORCH)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
        node, *args = inputs
        ctx.node = node
        ctx.output_like = (output.shape, output.dtype, output.device)
        ctx.save_for_backward(*args)
        ctx.save_for_forward(*args)

    @staticmethod
    def backward(ctx: Any, ct: Any) -> tuple:  # type: ignore[override]
        args = ctx.saved_tensors
        avals = tuple((tuple(a.shape), numpy_dtype(a.dtype)) for a in args)
        return (None, *cotangents(_Ops, ctx.node, args, ct, ctx.needs_input_grad[1:], avals))

    @staticmethod
    def jvp(ctx: Any, _: Any, *tangents: Any) -> Any:
        # `torch.func` hands zero tensors as the tangents of inputs it does not differentiate
        # (the contexts, then): they cannot be told from real ones, so they are dropped.
        live = 1 + ctx.node.k
        tangents = tangents[:live] + (None,) * (len(tangents) - live)
        ty = tangent(_Ops, ctx.node, ctx.saved_tensors, tangents)
        if ty is None:
            shape, dtype, device = ctx.output_like
            return torch.zeros(shape, dtype=dtype, device=device)
        return ty

    @staticmethod
    def vmap(info: Any, in_dims: tuple, node: Node, *args: Any) -> tuple[Any, int]:
        dims = in_dims[1:]
        moved = tuple(a if d is None else a.movedim(d, 0) for a, d in zip(args, dims, strict=True))
        return call(node.vmap(tuple(None if d is None else 0 for d in dims)), moved), 0


# `Function.apply` binds its arguments with `inspect.signature` on every call, which `torch.func`
# needs; outside its transforms the C++ `apply` underneath does the same work 2x faster (measured
# ~30 against ~70 µs per call on a loaded machine).
_plain_apply = super(torch.autograd.Function, _Call).apply


def call(node: Node, args: tuple) -> Any:
    if torch._C._are_functorch_transforms_active():
        return _Call.apply(node, *args)
    if _recorded(args):
        return _plain_apply(node, *args)
    # Nothing would record the Function (a plain call, or a rule's call inside a backward pass
    # without `create_graph`): its ~20 µs per call buy nothing, so the node is evaluated at once.
    return evaluate(node, args, _TORCH)


def _recorded(args: tuple) -> bool:
    """Whether torch's reverse or forward mode would record a Function applied to `args`."""
    if torch.is_grad_enabled() and any(a.requires_grad for a in args):
        return True
    return any(fwad.unpack_dual(a).tangent is not None for a in args)


class _Ops:
    call = staticmethod(call)

    @staticmethod
    def vmap(fn: Callable[..., Any], in_axes: tuple) -> Callable[..., Any]:
        return torch.func.vmap(fn, in_dims=in_axes)

    @staticmethod
    def sum0(a: Any) -> Any:
        return a.sum(0)
