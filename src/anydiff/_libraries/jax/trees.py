"""JAX's tree registry for anydiff's trees: equinox modules, flax structs and `nnx.State`, chex."""

from __future__ import annotations

from typing import Any


def _children(obj: Any) -> tuple[list, Any]:
    """One level of JAX's flattening of `obj`: its children and the one-level tree definition."""
    import jax

    return jax.tree_util.tree_flatten(obj, is_leaf=lambda node: node is not obj)


def jax_nodes(leaf: Any) -> tuple[Any, Any] | None:
    """`(flatten, unflatten)` for `type(leaf)` when JAX's registry has it as a node, else `None`."""
    children, definition = _children(leaf)
    if definition.num_leaves == 1 and definition.num_nodes == 1:
        return None
    return _children, lambda definition, children: definition.unflatten(children)


def jax_split(v: Any, sizes: list[int]) -> Any:
    """One `jnp.split` of a vector into pieces of `sizes` (its transpose is one concatenation)."""
    import jax.numpy as jnp
    import numpy as np

    return jnp.split(v, np.cumsum(sizes[:-1]).tolist())


def jax_jit(fn: Any) -> Any:
    """`jax.jit(fn)`: a tree raveled or cut in one dispatch instead of one per leaf."""
    import jax

    return jax.jit(fn)
