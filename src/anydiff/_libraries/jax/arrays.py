"""JAX arrays: detection, conversion (imports jax only inside its functions)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import numpy as np

from anydiff.extend import ArrayKind, Switch, csr_rows, itemsize


def _jax_is_array(tp: type) -> bool:
    import jax

    return issubclass(tp, jax.Array)


@functools.cache  # made on first use: they import jax
def _converters() -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """`(jnp.asarray, jax.dlpack.from_dlpack)`, kept rather than imported on every conversion."""
    import jax
    import jax.numpy as jnp

    return jnp.asarray, jax.dlpack.from_dlpack


def _converted(convert: Callable[[Any], Any], a: Any, wide: bool) -> Any:
    """`convert(a)`, in x64 for an array of 8-byte items (`wide`): without it JAX would silently
    turn float64 into float32."""
    if not wide:
        return convert(a)
    with _x64()():
        return convert(a)


def _jax_from_numpy(a: np.ndarray) -> Any:
    return _converted(_converters()[0], a, a.dtype.itemsize == 8)


def _jax_from_foreign(a: Any) -> Any:
    if hasattr(a, "detach"):  # a torch tensor that requires grad cannot be exported as is
        a = a.detach()
    return _converted(_converters()[1], a, itemsize(a.dtype) == 8)


@functools.cache  # made on first use: it imports jax
def _x64() -> Callable[[], ContextManager[Any]]:
    """What enables x64 for one call: a `Switch` on the state's own swap and restore (0.11 µs,
    where `with jax.enable_x64(True)` takes 0.5 µs, 5 % of a small jitted call), or the
    context manager where the state has no such methods or a hook that they would skip."""
    import jax

    state = jax.enable_x64
    swap, restore = getattr(state, "swap_local", None), getattr(state, "set_local", None)
    if swap is None or restore is None or getattr(state, "_update_thread_local_hook", True) is not None:
        return lambda: state(True)
    return Switch(functools.partial(swap, True), restore)


def _jax_context(x: Any) -> Callable[[], ContextManager[Any]] | None:
    # JAX computes in float32 unless x64 is enabled; enabling it per call (thread-local) keeps
    # float64 without changing the user's global configuration.
    return _x64() if x.dtype.itemsize == 8 else None


def _jax_sparse(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> Callable[[Any], Any]:
    import jax.numpy as jnp
    from jax.experimental import sparse

    rows = csr_rows(indptr)
    coordinates = jnp.asarray(np.stack([rows, indices], axis=1).astype(np.int32))
    template = sparse.BCOO(
        (jnp.zeros(indices.size), coordinates), shape=shape, indices_sorted=True, unique_indices=True
    )
    _, aux = template.tree_flatten()
    unflatten = sparse.BCOO.tree_unflatten
    # `BCOO(...)` validates its arguments on each call (~80 µs); rebuilding one as a pytree from
    # the auxiliary data of one made here costs ~0.8 µs (through `jax.tree_util.tree_unflatten`
    # and a tree structure, ~1.7 µs). JAX arrays are immutable: the indices are shared.
    return lambda data: unflatten(aux, (data, coordinates))


JAX = ArrayKind(
    name="jax",
    module="jax",
    is_array=_jax_is_array,
    to_numpy=np.asarray,
    from_numpy=_jax_from_numpy,
    from_foreign=_jax_from_foreign,
    context=_jax_context,
    sparse=_jax_sparse,
)
