"""Array kinds: detection without importing, conversion between kinds, and `ad.namespace`.

An *array kind* is the library an array belongs to ("numpy", "jax", "torch", ...). Results come
back as the kind of `x`, whatever backend did the work, so each prep picks its two converters
(user kind -> backend kind, and back) once, at prepare time; a prepared call on the backend's own
kind converts nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager as ContextManager
from types import MappingProxyType
from typing import Any, TypeAlias

import numpy as np

from .frozen import frozen_dataclass

__all__ = [
    "ArrayKind",
    "ArrayLike",
    "Switch",
    "array_kind",
    "array_kinds",
    "converter",
    "csr_rows",
    "dtype_name",
    "itemsize",
    "namespace",
    "register_array_kind",
    "register_namespace",
    "sparse_builder",
]

#: An array of any kind anydiff knows (NumPy, JAX, torch, TensorFlow, MLX, tinygrad, ... arrays,
#: and the tracers those libraries hand `f`), or a Python float where a point is expected. A
#: precise union would have to import every library, so it is `Any` to a type checker; the
#: name documents what is meant.
ArrayLike: TypeAlias = Any


#: The default `ArrayKind.dtype_names`: none (read-only, shared by every kind).
_NO_NAMES: Mapping[str, str] = MappingProxyType({})


class Switch:
    """A context entered and left by two calls, `token = enter()` then `leave(token)`, where a
    context manager would cost more than the switch itself (`ArrayKind.context`).

    JAX's x64: its state's own swap and restore take 0.11 µs, `with jax.enable_x64(True)`
    0.5 µs (making, entering and leaving a manager written in Python), 5 % of a small jitted
    call. A prepared call writes the two calls out; called, a switch gives the context manager
    for every other use (`with switch(): ...`).
    """

    __slots__ = ("enter", "leave")

    def __init__(self, enter: Callable[[], Any], leave: Callable[[Any], Any]) -> None:
        self.enter, self.leave = enter, leave

    def __call__(self) -> ContextManager[Any]:
        return _Switched(self)


class _Switched:
    __slots__ = ("switch", "token")

    def __init__(self, switch: Switch) -> None:
        self.switch = switch

    def __enter__(self) -> None:
        self.token = self.switch.enter()

    def __exit__(self, *exc: object) -> None:
        self.switch.leave(self.token)


@frozen_dataclass
class ArrayKind:
    """How anydiff recognises and converts the arrays of one library.

    Attributes:
        name: the kind's name, as shown in errors and tables ("numpy", "torch", ...).
        module: the top-level module that defines the array type; detection looks for it in
            `sys.modules` first, so recognising a kind never imports its library.
        is_array: whether a type (not an instance) is this kind's array type.
        to_numpy: array of this kind -> `numpy.ndarray` (no copy where the library allows).
        from_numpy: `numpy.ndarray` -> array of this kind.
        from_foreign: optional direct conversion from another kind's array (DLPack), used instead
            of a round trip through NumPy.
        context: for an input like the one given, a factory of the context manager every
            computation on this kind's arrays must run in (or a `Switch`, cheaper to enter),
            or `None` (JAX: x64 for float64).
        namespace: optional `array -> xp` for kinds that array-api-compat does not cover
            (TensorFlow); `ad.namespace` calls it the first time it meets such an array.
        dlpack: whether the arrays export DLPack (`__dlpack__`); conversions from kinds that
            do not (tinygrad) go through NumPy even where the target has `from_foreign`.
        sparse: optional `(indptr, indices, shape) -> build`, called once per prep of a sparse
            result (`ad.AutoSparse`), where `build(data)` makes the library's own sparse matrix
            from CSR data of this kind; see `sparse_builder`.
        dtype_names: the library's names of dtypes that NumPy names otherwise
            (`{"double": "float64"}` for a library naming them after C's types), for `dtype_name`.
        evaluate: optional, for a library whose arrays are lazy: computes a tuple of results
            at once (MLX: `mx.eval`) before they are converted one by one. An evaluation has a
            fixed cost (3-6 µs with MLX), paid once rather than once per result.
    """

    name: str
    module: str
    is_array: Callable[[type], bool]
    to_numpy: Callable[[Any], np.ndarray]
    from_numpy: Callable[[np.ndarray], Any]
    from_foreign: Callable[[Any], Any] | None = None
    context: Callable[[Any], Callable[[], ContextManager[Any]] | None] | None = None
    namespace: Callable[[Any], Any] | None = None
    dlpack: bool = True
    sparse: Callable[[np.ndarray, np.ndarray, tuple[int, int]], Callable[[Any], Any]] | None = None
    dtype_names: Mapping[str, str] = _NO_NAMES
    evaluate: Callable[[tuple], Any] | None = None

    def __init__(
        self,
        name: str,
        module: str,
        is_array: Callable[[type], bool],
        to_numpy: Callable[[Any], np.ndarray],
        from_numpy: Callable[[np.ndarray], Any],
        from_foreign: Callable[[Any], Any] | None = None,
        context: Callable[[Any], Callable[[], ContextManager[Any]] | None] | None = None,
        namespace: Callable[[Any], Any] | None = None,
        dlpack: bool = True,
        sparse: Callable[[np.ndarray, np.ndarray, tuple[int, int]], Callable[[Any], Any]] | None = None,
        dtype_names: Mapping[str, str] = _NO_NAMES,
        evaluate: Callable[[tuple], Any] | None = None,
    ) -> None:
        # Written out: every library's kind is made at import, where a generated `__init__` would
        # cost the dataclass machinery (0.5 ms) and the import of `dataclasses`.
        for field, value in (
            ("name", name),
            ("module", module),
            ("is_array", is_array),
            ("to_numpy", to_numpy),
            ("from_numpy", from_numpy),
            ("from_foreign", from_foreign),
            ("context", context),
            ("namespace", namespace),
            ("dlpack", dlpack),
            ("sparse", sparse),
            ("dtype_names", dtype_names),
            ("evaluate", evaluate),
        ):
            object.__setattr__(self, field, value)


_KINDS: dict[str, ArrayKind] = {}
_DTYPE_ALIASES: dict[str, str] = {}
_KIND_OF_TYPE: dict[type, ArrayKind | None] = {}
# array-api-compat's namespace of one array, by type: it depends on the type alone, and finding
# it costs ~1 µs per call against ~0.15 µs here (in `f`, at every evaluation). A call with several
# arrays takes the full search, where a registered namespace comes first.
_COMPAT: dict[type, Any] = {}


def register_array_kind(kind: ArrayKind) -> None:
    """Teach anydiff a new kind of array (used by backend modules and by other packages)."""
    _KINDS[kind.name] = kind
    _DTYPE_ALIASES.update(kind.dtype_names)
    _KIND_OF_TYPE.clear()
    _COMPAT.clear()  # a kind may bring the namespace of a type array-api-compat knew


def array_kinds() -> dict[str, ArrayKind]:
    """The registered array kinds, by name."""
    return dict(_KINDS)


def _detect(tp: type) -> ArrayKind | None:
    for kind in _KINDS.values():
        if kind.module in sys.modules and kind.is_array(tp):
            return kind
    return None


def array_kind(x: Any) -> ArrayKind | None:
    """The kind of `x`, or `None` when `x` is not an array anydiff knows."""
    tp = type(x)
    try:
        return _KIND_OF_TYPE[tp]
    except KeyError:
        kind = _KIND_OF_TYPE[tp] = _detect(tp)
        return kind


def converter(source: ArrayKind, target: ArrayKind) -> Callable[[Any], Any] | None:
    """A function converting `source` arrays to `target` arrays, or `None` when they are the same.

    Conversion goes through DLPack where the target library can read the source's arrays directly,
    and through NumPy otherwise.
    """
    if source is target:
        return None
    if target.name == "numpy":
        return source.to_numpy
    if source.name == "numpy":
        return target.from_numpy
    if target.from_foreign is not None and source.dlpack:
        return target.from_foreign
    to_numpy, from_numpy = source.to_numpy, target.from_numpy
    return lambda a: from_numpy(to_numpy(a))


def sparse_builder(
    kind: ArrayKind, indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]
) -> Callable[[Any], Any]:
    """`sparse_builder(kind, indptr, indices, shape) -> build`: `build(data)` is a sparse matrix.

    `data` is the CSR data (1-D, of `kind`) of a matrix with this structure; the matrix is the
    library's own sparse type where `kind.sparse` says how to make it, and a
    `scipy.sparse.csr_array` otherwise (for libraries without sparse arrays, such as MLX).
    Index work is done once, here; `build` costs a few microseconds.
    """
    if kind.sparse is not None:
        return kind.sparse(indptr, indices, shape)
    build, to_numpy = _scipy_csr(indptr, indices, shape), kind.to_numpy
    return lambda data: build(to_numpy(data))


def _numpy_from_numpy(a: np.ndarray) -> np.ndarray:
    return a


def _scipy_csr(indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> Callable[[Any], Any]:
    import scipy.sparse

    def build(data: np.ndarray) -> Any:
        # Fresh index arrays: a caller editing one result must not change the next ones.
        return scipy.sparse.csr_array((data, indices.copy(), indptr.copy()), shape=shape, copy=False)

    return build


register_array_kind(
    ArrayKind(
        name="numpy",
        module="numpy",
        # NumPy scalars (np.float64(1.0)) count as 0-d arrays.
        is_array=lambda tp: issubclass(tp, (np.ndarray, np.generic)),
        to_numpy=np.asarray,
        from_numpy=_numpy_from_numpy,
        sparse=_scipy_csr,
    )
)


_NAMESPACES: dict[type, Callable[[Any], Any]] = {}


def register_namespace(tp: type, make_namespace: Callable[[Any], Any]) -> None:
    """Register the array-API namespace for an array type that has no `__array_namespace__`.

    Backend modules use this for libraries whose arrays the array-API standard does not cover
    (TensorFlow tensors, for example).
    """
    _NAMESPACES[tp] = make_namespace
    _COMPAT.pop(tp, None)


def namespace(*arrays: Any) -> Any:
    """`namespace(*arrays) -> xp`: the array-API namespace of the arrays given.

    Works on NumPy, JAX and torch arrays, on the tracers JAX and torch hand `f` while
    differentiating it, and on anydiff's own tracer arrays, so one `f` runs on every backend.
    Python scalars among the arrays are ignored.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> def f(x):
        ...     xp = ad.namespace(x)
        ...     return xp.sum(xp.sin(x) ** 2)
        >>> float(f(np.zeros(3)))
        0.0
    """
    if len(arrays) == 1 and type(arrays[0]) in _COMPAT:
        return _COMPAT[type(arrays[0])]
    for a in arrays:
        make = _NAMESPACES.get(type(a))
        if make is not None:
            return make(a)
    # Kinds whose namespace anydiff supplies come before array-api-compat: MLX arrays have an
    # `__array_namespace__`, but `mlx.core` lacks array-API names. Registered on first sight.
    for a in arrays:
        kind = array_kind(a)
        if kind is not None and kind.namespace is not None:
            register_namespace(type(a), kind.namespace)
            return kind.namespace(a)
    import array_api_compat

    xp = array_api_compat.array_namespace(*arrays)
    if len(arrays) == 1:
        _COMPAT[type(arrays[0])] = xp
    return xp


def cumulative(
    xp: Any,
    accumulate: Callable[[Any, int], Any],
    x: Any,
    axis: int | None,
    dtype: Any,
    include_initial: bool,
    identity: float,
) -> Any:
    """The array API's `cumulative_sum` / `cumulative_prod`, for the namespaces anydiff supplies.

    `accumulate(x, axis)` is the library's own running sum or product; `identity` (0 or 1) is
    what `include_initial=True` puts first.
    """
    if axis is None:
        if x.ndim > 1:
            raise ValueError("cumulative_sum: `axis` is required for arrays of more than one dimension.")
        axis = 0
    result = accumulate(x if dtype is None else xp.astype(x, dtype), axis)
    if not include_initial:
        return result
    shape = list(result.shape)
    shape[axis] = 1
    return xp.concat([xp.full(tuple(shape), identity, dtype=result.dtype), result], axis=axis)


def dtype_name(dtype: Any) -> str:
    """The NumPy name of a dtype of any kind: `"float64"` for NumPy's, torch's, JAX's, ..."""
    name = getattr(dtype, "name", None)  # NumPy and TensorFlow dtypes ("float64")
    name = name if isinstance(name, str) else str(dtype).rsplit(".", 1)[-1]  # "torch.float64"
    return _DTYPE_ALIASES.get(name, name)


def itemsize(dtype: Any) -> int:
    """The bytes per element of a floating-point `dtype` of any kind."""
    return np.dtype(dtype_name(dtype)).itemsize


def csr_rows(indptr: np.ndarray) -> np.ndarray:
    """The row index of every stored entry of a CSR structure, aligned with its `indices`."""
    return np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
