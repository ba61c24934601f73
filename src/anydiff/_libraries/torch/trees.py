"""torch's tree registry for anydiff's trees (e.g. transformers' `ModelOutput`), and the lesson for
an `nn.Module` passed as `x`."""

from __future__ import annotations

from typing import Any


def torch_nodes(leaf: Any) -> tuple[Any, Any] | None:
    """`(flatten, unflatten)` for `type(leaf)` when torch's pytree registry has it, else `None`."""
    from torch.utils import _pytree

    node = _pytree.SUPPORTED_NODES.get(type(leaf))
    if node is None:
        return None
    return node.flatten_fn, lambda context, children: node.unflatten_fn(list(children), context)


def module_lesson(leaf: Any) -> str | None:
    """How to differentiate a torch module's parameters, for a module met as a leaf of `x`."""
    import torch

    if not isinstance(leaf, torch.nn.Module):
        return None
    return (
        f"a torch `{type(leaf).__name__}` module; anydiff differentiates trees of arrays, not modules. "
        "Pass the parameters, `params = dict(model.named_parameters())`, and inside `f` call "
        "`torch.func.functional_call(model, params, (inputs,))`."
    )


def torch_split(v: Any, sizes: list[int]) -> Any:
    """One `torch.split` of a vector into pieces of `sizes` (its backward is one concatenation)."""
    import torch

    return torch.split(v, sizes)


def tape_gradient(operator: str, backend: Any, info: dict, f: Any) -> tuple[Any, Any] | None:
    """`(gradient, value_and_gradient)` of `f(leaves, *contexts)` with respect to each leaf, from
    one recording of the autograd tape, where the prep's gradient takes the tape route; else `None`.

    A tree's gradient needs no flat vector on the tape: the raveling, its cut inside `f` (a
    split and a view per leaf, each recorded), the concatenation of the cut's backward pass and
    the final cut all go (`register_tree_kernels`).
    """
    if operator != "gradient" or info.get("route") != "autograd tape" or getattr(backend, "compile", True):
        return None
    import torch

    def value_and_gradient(parts: list, *contexts: Any) -> tuple[Any, tuple]:
        leaves = [part.detach().requires_grad_(True) for part in parts]
        if torch.is_grad_enabled():
            y = f(leaves, *contexts)
        else:
            with torch.enable_grad():  # called under `torch.no_grad()`
                y = f(leaves, *contexts)
        grads = torch.autograd.grad(y, leaves, allow_unused=True) if y.requires_grad else [None] * len(leaves)
        return y.detach(), tuple(torch.zeros_like(a) if g is None else g for a, g in zip(leaves, grads, strict=True))

    def gradient(parts: list, *contexts: Any) -> tuple:
        return value_and_gradient(parts, *contexts)[1]

    return gradient, value_and_gradient


def _register() -> None:
    from anydiff.extend import register_tree_kernels

    register_tree_kernels("torch", tape_gradient)


_register()  # imported with `anydiff._libraries.torch`, which imports no torch library
