"""JAX's tree registry for anydiff's trees: equinox modules, flax structs and `nnx.State`, chex."""

from __future__ import annotations

from contextlib import nullcontext
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


class TreeKernel:
    """A prepared tree call compiled whole (`register_tree_compiler`): `jax.jit(fn)`, and its
    executable for the arguments of the first `exact` call.

    `exact` takes the tree `x` itself: the executable flattens it in C++ and checks its
    structure, shapes and dtypes against the compiled ones (a `TypeError` before anything runs
    when they differ), so a prepared call does no work per leaf in Python. Like the kernels of
    `impl.py`, the executable runs outside `jax.enable_x64` and keeps its float64 types.
    """

    __slots__ = ("context", "executable", "jitted")

    def __init__(self, fn: Any, context: Any) -> None:
        import jax

        self.jitted = jax.jit(fn)
        self.context = context
        self.executable: Any = None

    def __call__(self, *args: Any) -> Any:
        if self.context is None:
            return self.jitted(*args)
        with self.context():
            return self.jitted(*args)

    def exact(self, *args: Any) -> Any:
        executable = self.executable
        if executable is None:
            from .impl import executable_for

            executable = executable_for(self.jitted, self.context or nullcontext, args)
            if executable is None:
                raise TypeError("not the concrete JAX arrays an executable is compiled for")
            self.executable = executable
        return executable(*args)


def _register() -> None:
    from anydiff.extend import register_tree_compiler

    register_tree_compiler("jax", TreeKernel)


_register()  # imported with `anydiff._libraries.jax`, which imports no JAX library
