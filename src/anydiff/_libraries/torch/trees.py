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
