"""PyTorch programs calling a `DifferentiateWith` function: one `torch.autograd.Function`.

Its `backward` and `jvp` apply the Function again on derived nodes (`nodes.py`), so they are
differentiable themselves (double backward, forward over reverse), and its `vmap` maps a node
instead of tracing `f`: `torch.autograd.grad`, forward-mode dual numbers and the `torch.func`
transforms (`grad`, `vjp`, `jvp`, `jacrev`, `jacfwd`, `hessian`, `vmap`) all work.

The Function is applied only where torch would record it (`call`): a plain call evaluates the node
at once, and so do dual numbers along `x` alone (torch's own, or those of one `torch.func.jvp`),
whose value and tangent come from one evaluation of `f` by the substitute.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
import torch._C._functorch as _functorch
import torch.autograd.forward_ad as fwad
from torch._functorch.pyfunctorch import coerce_cinterpreter

from anydiff.bridge.nodes import (
    Node,
    Vmap,
    cotangents,
    evaluate,
    evaluate_taped,
    evaluate_with_tangent,
    numpy_dtype,
    tangent,
)
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


class _Taped(torch.autograd.Function):
    """`node(*args)` on torch's tape alone (no dual numbers, no `torch.func`): where the substitute
    keeps the residuals of its forward pass (`evaluate_taped`), the backward pass applies their
    pullback, and `f` is evaluated once; otherwise, or differentiated again (`create_graph`, dual
    numbers), it is `_Call`'s rules."""

    @staticmethod
    def forward(ctx: Any, node: Node, *args: Any) -> Any:  # type: ignore[override]
        ctx.node = node
        ctx.save_for_backward(*args)
        found = evaluate_taped(node, args, _TORCH)
        ctx.pullback = None if found is None else found[1]
        return evaluate(node, args, _TORCH) if found is None else found[0]

    @staticmethod
    def backward(ctx: Any, ct: Any) -> tuple:  # type: ignore[override]
        if ctx.pullback is None or torch.is_grad_enabled() or fwad._current_level >= 0:
            return _Call.backward(ctx, ct)
        rest = (None,) * (len(ctx.needs_input_grad) - 2)  # the node, the contexts' leaves
        return (None, ctx.pullback(ct) if ctx.needs_input_grad[1] else None, *rest)


# `Function.apply` binds its arguments with `inspect.signature` on every call, which `torch.func`
# needs; outside its transforms the C++ `apply` underneath does the same work 2x faster (measured
# ~30 against ~70 µs per call on a loaded machine).
_plain_apply = super(torch.autograd.Function, _Call).apply
_taped_apply = super(torch.autograd.Function, _Taped).apply


def call(node: Node, args: tuple) -> Any:
    """`node(*args)`: through the Function where torch would record it, evaluated at once otherwise."""
    if torch._C._are_functorch_transforms_active():
        return _in_transform(node, args)
    if torch.is_grad_enabled() and any(a.requires_grad for a in args):
        return _taped_apply(node, *args) if fwad._current_level < 0 else _plain_apply(node, *args)
    if fwad._current_level < 0:  # no dual numbers anywhere (torch has one level of them at most)
        # Nothing would record the Function (a plain call, or a rule's call inside a backward pass
        # without `create_graph`): its ~20 µs per call buy nothing, so the node is evaluated at once.
        return evaluate(node, args, _TORCH)
    found = _dual(node, args, None)
    return _plain_apply(node, *args) if found is None else found


def _in_transform(node: Node, args: tuple) -> Any:
    """`call` under `torch.func`: `_dual` on the level's own tensors inside one `torch.func.jvp`
    and nothing else (the Function costs ~250 µs there, twice); the Function otherwise."""
    stack = _functorch.get_interpreter_stack()
    if len(stack) == 1 and stack[0].key() == _functorch.TransformType.Jvp:
        found = _dual(node, args, coerce_cinterpreter(stack[0]))
        if found is not None:
            return found
    return _Call.apply(node, *args)


def _dual(node: Node, args: tuple, transform: Any) -> Any:
    """`node(*args)` evaluated at once where nothing would record more than the tangent of `x`
    (dual numbers of torch's, or of a `torch.func.jvp`: its `transform`), or `None`.

    With a tangent of `x`, the value and the tangent come from one evaluation of `f` (the
    Function's forward and `jvp` rule would evaluate it twice); a tangent of another argument,
    or a tensor that requires grad, is left to the Function's rules.
    """
    # torch's own `unpack_dual` and `make_dual` (~1 µs), without the checks of `forward_ad`'s (~4 µs
    # each), which tensors of the caller and the substitute's results of their shapes pass.
    level = fwad._current_level
    primals, tangents = zip(*(torch._unpack_dual(a, level) for a in args), strict=True)
    if transform is not None:  # the transform's tensors wrap plain ones, which torch computes on below it
        primals = tuple(_functorch._unwrap_for_grad(a, transform.level()) for a in primals)
        tangents = tuple(None if a is None else _functorch._unwrap_for_grad(a, transform.level()) for a in tangents)
    t = tangents[0]
    if any(a is not None for a in tangents[1:]) or (t is not None and isinstance(node, Vmap)):
        return None  # (the tangent of a `Vmap` node is mapped by the rules)
    if torch.is_grad_enabled() and any(a.requires_grad for a in (*primals, t) if a is not None):
        return None
    with nullcontext() if transform is None else transform.lower():
        if t is None:
            y, ty = evaluate(node, primals, _TORCH), None
        else:
            y, ty = evaluate_with_tangent(node, primals, t, _TORCH)
    y = _wrapped(y, transform)
    return y if ty is None else torch._make_dual(y, _wrapped(ty, transform), level=level)


def _wrapped(a: Any, transform: Any) -> Any:
    """`a` as a tensor of the `torch.func` `transform` (unchanged outside transforms)."""
    return a if transform is None else _functorch._wrap_for_grad(a, transform.level())


class _Ops:
    call = staticmethod(call)

    @staticmethod
    def vmap(fn: Callable[..., Any], in_axes: tuple) -> Callable[..., Any]:
        return torch.func.vmap(fn, in_dims=in_axes)

    @staticmethod
    def sum0(a: Any) -> Any:
        return a.sum(0)
