"""Trees of arrays (API.md section 10): what a tree is, its flat layout, and `ad.ravel`.

A tree problem is turned into the one-array problem every backend already solves: the
differentiable leaves of `x` are raveled into one vector `v` (leaf order, each leaf in C order),
`f` becomes `v ↦ ravel(f(unravel(v)))`, and the flat results are cut back into trees. `optree`
is the tree engine (imported on the first tree); libraries with tree registries of their own
(classes registered with JAX or torch) join through `register_foreign_nodes`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from operator import itemgetter
from typing import Any

import numpy as np

from .arrays import array_kind, dtype_name, namespace
from .errors import PreparationMismatchError

__all__ = [
    "Args",
    "OutputTree",
    "TreeLayout",
    "Unravel",
    "aval",
    "block_leaves",
    "block_tree",
    "concat",
    "fingerprint",
    "flat_function",
    "flat_problem",
    "flatten",
    "is_tree",
    "layout",
    "ravel",
    "register_dataclass",
    "register_foreign_nodes",
    "register_leaf_advice",
    "register_pytree_node",
    "register_split",
    "register_tree_compiler",
    "register_tree_kernels",
    "tangent_leaves",
]

NAMESPACE = "anydiff"
_DIFFERENTIABLE = ("float32", "float64")
_REFUSED = ("float16", "bfloat16", "complex64", "complex128")


class Args:
    """`Args(a, b, ...)`: several active arguments, passed to `f` as `f(a, b, ..., *contexts)`.

    Every result shaped like `x` is then a tuple with one entry per argument (each may be a tree).
    A plain tuple `x = (a, b)` is one argument: `f` receives the tuple.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> ga, gb = ad.gradient(lambda a, b: (a * b).sum(), ad.AutoFiniteDiff(), ad.Args(np.ones(2), np.full(2, 3.0)))
        >>> ga.round(6), gb.round(6)
        (array([3., 3.]), array([1., 1.]))
    """

    __slots__ = ("values",)

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __iter__(self) -> Any:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> Any:
        return self.values[i]

    def __eq__(self, other: object) -> bool:
        return type(other) is Args and self.values == other.values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Args({', '.join(map(repr, self.values))})"


# -- the registries ----------------------------------------------------------------------------

_optree: Any = None
#: `(module, lookup)`: `lookup(leaf)` gives `(flatten, unflatten)` for the class of `leaf` when the
#: library `module` (JAX, torch) has it as a tree, or `None`; asked once that library is imported.
_FOREIGN: list[tuple[str, Callable[[Any], tuple[Callable, Callable] | None]]] = []
#: `(module, advise)`: `advise(leaf)` gives the text of a `TypeError` for a leaf that must not be
#: one (a torch `nn.Module` passed as `x`), or `None`.
_ADVICE: list[tuple[str, Callable[[Any], str | None]]] = []
_SEEN: set[type] = set()
#: `namespace name -> split(v, sizes) -> pieces`, and `-> compile(fn) -> fn`: see `register_split`
_SPLITS: dict[str, Callable[[Any, list[int]], Sequence[Any]]] = {}
_COMPILERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {}
#: `array kind name -> make(fn, context) -> kernel`: see `register_tree_compiler`
_TREE_COMPILERS: dict[str, Callable[[Callable[..., Any], Any], Any]] = {}
#: `array kind name -> make(operator, backend, info, f) -> (plain, with_value) | None`: see `register_tree_kernels`
_MakeKernels = Callable[[str, Any, dict, Callable[..., Any]], tuple[Callable, Callable] | None]
_TREE_KERNELS: dict[str, _MakeKernels] = {}


def _engine() -> Any:
    global _optree
    if _optree is None:
        import optree

        register: Any = optree.register_pytree_node  # its stubs want a Collection
        register(
            Args,
            lambda a: (a.values, None, range(len(a.values))),  # entries: paths read `x[0]`, `x[1]`
            lambda _, children: Args(*children),
            path_entry_type=optree.GetItemEntry,
            namespace=NAMESPACE,
        )
        _optree = optree
    return _optree


def register_pytree_node(
    cls: type, flatten: Callable[[Any], tuple[Sequence[Any], Any]], unflatten: Callable[[Any, Sequence[Any]], Any]
) -> None:
    """Make instances of `cls` trees: `flatten(obj) -> (children, aux)`, `unflatten(aux, children)`.

    As in JAX: `aux` is hashable and compared between calls sharing a prep, and `unflatten` must
    accept any leaf values (a backend's arrays or tracers, `None` at static leaves).
    """
    _engine().register_pytree_node(cls, flatten, unflatten, namespace=NAMESPACE)


def register_dataclass(cls: type, data_fields: Sequence[str], meta_fields: Sequence[str]) -> None:
    """Make instances of the dataclass `cls` trees: `data_fields` are children, `meta_fields` static.

    `cls(**fields)` rebuilds an instance, as `jax.tree_util.register_dataclass` does.
    """
    data, meta = tuple(data_fields), tuple(meta_fields)

    def flatten(obj: Any) -> tuple[list, tuple]:
        return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)

    def unflatten(aux: tuple, children: Sequence[Any]) -> Any:
        return cls(**dict(zip(data, children, strict=True)), **dict(zip(meta, aux, strict=True)))

    register_pytree_node(cls, flatten, unflatten)


def register_foreign_nodes(module: str, lookup: Callable[[Any], tuple[Callable, Callable] | None]) -> None:
    """Let the tree registry of library `module` count.

    `lookup(leaf) -> (flatten, unflatten) | None` is asked once per class met as a leaf (with an
    instance), while `module` is imported; a pair is registered for the class in anydiff's
    registry (anydiff's own registrations and optree's come first).
    """
    _FOREIGN.append((module, lookup))
    _SEEN.clear()


def register_split(
    namespace_name: str,
    split: Callable[[Any, list[int]], Sequence[Any]],
    compile: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
) -> None:
    """How to cut trees of the arrays whose `ad.namespace` is named `namespace_name`.

    `split(v, sizes)` cuts a 1-D array into pieces in one operation: trees are cut from their
    flat vector inside `f`, and reverse mode transposes n slices to n full-size updates, a split
    to one concatenation. `compile(fn)`, if given, compiles the raveling and cutting of a tree
    once per layout (`jax.jit`), for libraries that dispatch each operation eagerly.
    """
    _SPLITS[namespace_name] = split
    if compile is not None:
        _COMPILERS[namespace_name] = compile


def register_tree_compiler(kind_name: str, make: Callable[[Callable[..., Any], Any], Any]) -> None:
    """How a backend that compiles its kernels (`BackendImpl.compile`) on the arrays of kind
    `kind_name` compiles a prepared tree call into one: raveling the leaves, the derivative
    kernel and the cut of its results (`_core/prepare.py`, `_fused_tree`).

    `make(fn, context)` returns a kernel: `kernel(*args)` runs `fn` compiled (inside `context()`,
    the array kind's context or `None`), and `kernel.exact(*args)` runs it for exactly the types,
    shapes and tree structure of its first call (compiled then), raising `TypeError` before
    anything runs for other arguments, or when the first call's are not the library's own arrays.
    """
    _TREE_COMPILERS[kind_name] = make


def tree_compiler(kind_name: str) -> Callable[[Callable[..., Any], Any], Any] | None:
    """The `make` registered for `kind_name` (`register_tree_compiler`), or `None`."""
    return _TREE_COMPILERS.get(kind_name)


def register_tree_kernels(kind_name: str, make: _MakeKernels) -> None:
    """Kernels differentiating a tree leaf by leaf, for a library that does so natively (a tape).

    `make(operator, backend, info, f)` is asked at the preparation of `operator` (its name) with
    `backend` on a tree of arrays of kind `kind_name`, after the flat one (whose `prep.info` is
    `info`); `f(leaves,
    *contexts)` is the user's function of the list of differentiable leaves. It returns
    `(plain, with_value)` taking `(leaves, *contexts)` and giving the results with one tuple of
    arrays (one per leaf) in place of each result shaped like `x`, or `None` to keep the flat
    kernels. Only for the operators it knows; trees with Python-float leaves keep the flat ones.
    """
    _TREE_KERNELS[kind_name] = make


def tree_kernels(kind_name: str) -> _MakeKernels | None:
    """The `make` registered for `kind_name` (`register_tree_kernels`), or `None`."""
    return _TREE_KERNELS.get(kind_name)


def register_leaf_advice(module: str, advise: Callable[[Any], str | None]) -> None:
    """Refuse some leaves with a lesson: `advise(leaf) -> message | None`, asked while `module` is imported."""
    _ADVICE.append((module, advise))


def flatten(tree: Any) -> tuple[list, Any]:
    """`(leaves, treespec)`, first registering the classes other libraries know as trees."""
    optree = _engine()
    while True:
        leaves, spec = optree.tree_flatten(tree, namespace=NAMESPACE)
        fresh = {type(leaf): leaf for leaf in leaves if type(leaf) not in _SEEN}
        if not fresh or not any([_adopt(tp, leaf) for tp, leaf in fresh.items()]):
            return leaves, spec


def _adopt(tp: type, leaf: Any) -> bool:
    """Register `tp` from a foreign registry; whether it was one."""
    _SEEN.add(tp)
    if type(leaf) in (float, int, bool, str) or array_kind(leaf) is not None:
        return False
    for module, lookup in _FOREIGN:
        if module in sys.modules:
            pair = lookup(leaf)
            if pair is not None:
                flatten, unflatten = pair
                _engine().register_pytree_node(tp, flatten, unflatten, namespace=NAMESPACE)
                return True
    return False


def is_tree(x: Any) -> bool:
    """Whether `x` is more than one leaf (a container, `None`, `Args`, a registered class)."""
    if type(x) in (float, int) or array_kind(x) is not None:
        return False
    return not flatten(x)[1].is_leaf()


def fingerprint(leaves: list, spec: Any) -> tuple:
    """A hashable summary of a tree, equal for trees a prep fits (static objects by identity): part
    of the key under which an unprepared call's prep is remembered (`prepare._recent`)."""
    return (spec, tuple(_leaf_key(leaf) for leaf in leaves))


def _leaf_key(leaf: Any) -> Any:
    tp = type(leaf)
    if tp in (float, int, bool, str):
        return (tp, None if tp is float else leaf)
    shape = getattr(leaf, "shape", None)
    if shape is not None and array_kind(leaf) is not None:
        return (tp, tuple(shape), leaf.dtype)
    return (tp, id(leaf))


def _check_key(leaf: Any) -> tuple[Any, tuple[int, ...] | None, Any, bool]:
    """`(type, shape, dtype, native)` of an array leaf, `(type, None, value, False)` of another (see
    `same_leaves`); `native`: its shapes are tuples (NumPy, JAX, `torch.Size`), compared as they
    are (a TensorFlow shape takes 2 µs to compare with a tuple, 0.3 µs to convert)."""
    tp = type(leaf)
    if tp is not float and array_kind(leaf) is not None and getattr(leaf, "shape", None) is not None:
        return tp, tuple(leaf.shape), leaf.dtype, isinstance(leaf.shape, tuple)
    return tp, None, leaf, False


def _walker(spec: Any) -> Callable[[Any, list], bool] | None:
    """For a structure of plain containers (dicts with string keys, lists, tuples, `None`),
    `walk(tree, leaves)`: append the leaves of `tree` to `leaves` in leaf order, and say whether
    `tree` has that structure up to its leaves (which `same_leaves` then checks: a container where
    a leaf was is a leaf of another type). 2-3x faster than optree's `flatten`, which sorts the
    keys of every dict. `None` for other structures."""
    tp = spec.type
    if spec.is_leaf():
        return _leaf_walk
    if tp is type(None):
        return _none_walk
    if tp not in (dict, list, tuple) or (tp is dict and not all(type(key) is str for key in spec.entries())):
        return None
    maybe = [_walker(child) for child in spec.children()]
    children = [child for child in maybe if child is not None]
    if len(children) < len(maybe):
        return None
    keys = list(spec.entries()) if tp is dict else None  # sorted: optree's leaf order
    size, keyset = spec.num_children, (set(keys) if keys is not None else None)
    if all(child is _leaf_walk for child in children):  # leaves only: taken in one C call
        get = itemgetter(*keys) if keys is not None and size > 1 else None

        def walk_leaves(node: Any, out: list) -> bool:
            if type(node) is not tp or len(node) != size:
                return False
            if keys is None:
                out.extend(node)
            elif node.keys() != keyset:
                return False
            elif get is None:
                out.append(node[keys[0]])
            else:
                out.extend(get(node))
            return True

        return walk_leaves
    pairs = list(zip(keys if keys is not None else range(size), children, strict=True))

    def walk(node: Any, out: list) -> bool:
        if type(node) is not tp or len(node) != size or (keyset is not None and node.keys() != keyset):
            return False
        for key, child in pairs:
            if not child(node[key], out):
                return False
        return True

    return walk


def _leaf_walk(node: Any, out: list) -> bool:
    out.append(node)
    return True


def _none_walk(node: Any, out: list) -> bool:
    return node is None


def _paths(spec: Any, root: str) -> list[str]:
    return [accessor.codify(root) for accessor in spec.accessors()]


# -- leaves -------------------------------------------------------------------------------------


def _static_lesson(leaf: Any) -> str | None:
    """Why a non-array leaf must not be static (a container anydiff cannot see into), or `None`."""
    for module, advise in _ADVICE:
        if module in sys.modules:
            lesson = advise(leaf)
            if lesson is not None:
                return lesson
    import dataclasses  # not imported by `import anydiff`

    fields: list[str] = []
    if dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
        fields = [f.name for f in dataclasses.fields(leaf)]
    elif hasattr(type(leaf), "__attrs_attrs__"):
        fields = [a.name for a in type(leaf).__attrs_attrs__]
    holding = [n for n in fields if _holds_arrays(getattr(leaf, n, None))]
    if not holding:
        return None
    name = type(leaf).__name__
    return (
        f"a {name} holding arrays (fields {', '.join(holding)}) is not a registered tree, so anydiff "
        f"would treat it as one static leaf and never differentiate it. Register it: "
        f"`ad.register_dataclass({name}, data_fields=[...], meta_fields=[...])`, "
        "`jax.tree_util.register_dataclass`, or optree's `register_pytree_node`."
    )


def _holds_arrays(value: Any) -> bool:
    if type(value) is float or array_kind(value) is not None:
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_arrays(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_arrays(v) for v in value.values())
    return False


def _same_static(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if array_kind(a) is not None:
        return tuple(a.shape) == tuple(b.shape) and str(a.dtype) == str(b.dtype) and bool(np.array_equal(a, b))
    try:
        return bool(a == b)
    except Exception:  # an object whose `==` is not a truth value
        return a is b


# -- the layout of a tree -----------------------------------------------------------------------


class TreeLayout:
    """The structure, leaves and flat layout of one tree (`x`, or the output `y`).

    `vary` holds the indices of the differentiable leaves; the flat vector is their concatenation
    (each raveled in C order) in the promoted dtype `dtype`.
    """

    __slots__ = (
        "spec",
        "paths",
        "leaves",
        "vary",
        "shapes",
        "dtypes",
        "slices",
        "sizes",
        "size",
        "compiled",
        "dtype",
        "args",
        "keys",
        "walk",
    )

    def __init__(
        self, spec: Any, paths: list[str], leaves: list, vary: list[int], avals: list[tuple[tuple[int, ...], str]]
    ) -> None:
        self.spec, self.paths, self.leaves, self.vary = spec, paths, leaves, tuple(vary)
        self.shapes = tuple(shape for shape, _ in avals)
        self.dtypes = tuple(dtype for _, dtype in avals)
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        ends = np.cumsum([0, *self.sizes]).tolist()
        self.slices = tuple(slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True))
        self.size = ends[-1]
        self.dtype = str(np.result_type(*self.dtypes)) if self.dtypes else "float64"
        self.args = spec.type is Args
        self.keys = tuple(_check_key(leaf) for leaf in leaves)
        self.walk = _walker(spec)
        self.compiled: dict[tuple[str, str], Callable[..., Any]] = {}

    # -- checks --

    def accept(self, tree: Any, operator: str) -> list:
        """The leaves of `tree`, after checking that a prep of this layout fits it.

        Equal structures and leaves (`same_leaves`) are the fast path; otherwise the leaves are
        compared one by one and a `PreparationMismatchError` lists each differing path.
        """
        walk = self.walk
        if walk is not None:  # a tree of plain containers: no optree, no sorting of keys
            leaves: list = []
            if walk(tree, leaves) and self.same_leaves(leaves):
                return leaves
        leaves, spec = flatten(tree)
        if spec == self.spec and self.same_leaves(leaves):
            return leaves
        self.mismatch(tree, operator)
        return leaves

    def same_leaves(self, leaves: list) -> bool:
        """Whether `leaves` (of a tree with this structure) fit a prep of this layout: the same
        type, shape and dtype at each array leaf, the same value at each static one (objects by
        identity). One pass over precomputed keys: 0.2 µs a leaf."""
        for leaf, (tp, shape, dtype, native) in zip(leaves, self.keys, strict=True):
            if type(leaf) is not tp:
                return False
            if shape is None:  # a float, or a static leaf: `dtype` holds its value or the object
                if tp is not float and leaf is not dtype and not (tp in (int, bool, str) and leaf == dtype):
                    return False
            elif (leaf.dtype is not dtype and leaf.dtype != dtype) or (
                leaf.shape if native else tuple(leaf.shape)
            ) != shape:
                return False
        return True

    def mismatch(self, tree: Any, operator: str) -> None:
        """Raise `PreparationMismatchError` listing the paths where `tree` differs from this
        layout; return if a prep of this layout fits it after all (equal static arrays)."""
        rows = self.differences(layout(tree, operator), "x")
        if rows:
            raise PreparationMismatchError(
                f"{operator}: the `prep` passed was built for another tree:\n"
                + "".join(f"  {row}\n" for row in rows)
                + f"Prepare again with `ad.prepare_{operator}` for these arguments, or call without "
                "`prep=`; values that change between calls belong in `ad.Constant`."
            )

    def differences(self, other: TreeLayout, root: str) -> list[str]:
        """One row per differing path (empty when a prep of `self` fits `other`)."""
        if self.spec != other.spec:
            return [f"✗ {root} structure {_skeleton(self.spec)} → {_skeleton(other.spec)}"]
        rows = []
        vary, other_vary = set(self.vary), set(other.vary)
        for i, path in enumerate(self.paths):
            a, b = self.leaves[i], other.leaves[i]
            if (i in vary) != (i in other_vary):
                rows.append(f"✗ {path}  {_describe(a, i in vary)} → {_describe(b, i in other_vary)}")
            elif i in vary:
                j = self.vary.index(i)
                if (self.shapes[j], self.dtypes[j]) != (other.shapes[j], other.dtypes[j]):
                    rows.append(f"✗ {path}  {_describe(a, True)} → {_describe(b, True)}")
                elif type(a) is not type(b):
                    rows.append(f"✗ {path}  type {type(a).__name__} → {type(b).__name__}")
            elif not _same_static(a, b):
                rows.append(f"✗ {path} (static) {_short(a)} → {_short(b)}")
        return rows

    def static_paths(self) -> list[str]:
        vary = set(self.vary)
        return [p for i, p in enumerate(self.paths) if i not in vary]

    # -- raveling --

    def ravel(self, tree_leaves: list) -> Any:
        """The flat vector of `tree_leaves` (the leaves of a tree with this layout), of their kind."""
        parts = [tree_leaves[i] for i in self.vary]
        first = next((p for p in parts if type(p) is not float), None)
        if first is None or isinstance(first, np.ndarray):
            return np.concatenate([np.asarray(p, dtype=self.dtype).reshape(-1) for p in parts])
        with _context(first, self.dtype):
            return self._fused(namespace(first), "ravel", self._join)(*parts)

    def pieces(self, v: Any) -> list:
        """The leaves cut from the flat vector `v`, each with its shape and dtype."""
        with _context(v):
            return list(self._fused(namespace(v), "pieces", self.cut)(v))

    def _join(self, *parts: Any) -> Any:
        return concat(list(parts), self.dtype)

    def cut(self, v: Any) -> tuple:
        """One `split` where the namespace of `v` has one (`register_split`): reverse mode
        transposes each slice of `v` to a full-size update, a split to one concatenation."""
        xp = namespace(v)
        split = _SPLITS.get(getattr(xp, "__name__", ""))
        parts = split(v, self.sizes) if split is not None and len(self.sizes) > 1 else [v[s] for s in self.slices]
        flat_dtype = dtype_name(v.dtype)
        return tuple(
            _as_dtype(xp, xp.reshape(part, shape), dtype, flat_dtype)
            for part, shape, dtype in zip(parts, self.shapes, self.dtypes, strict=True)
        )

    def _fused(self, xp: Any, what: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, compiled once per namespace that has a compiler (`register_split`): a library
        that runs each operation eagerly (JAX on its arrays) then cuts a tree in one call."""
        name = getattr(xp, "__name__", "")
        compile = _COMPILERS.get(name)
        if compile is None:
            return fn
        key = (name, what)
        compiled = self.compiled.get(key)
        if compiled is None:
            compiled = self.compiled[key] = compile(fn)
        return compiled

    def unflatten(self, values: list, static: bool) -> Any:
        """The tree with the differentiable leaves `values` and, at static leaves, the original
        values (`static=True`) or `None`."""
        if len(values) == len(self.leaves):  # no static leaf
            tree = self.spec.unflatten(values)
            return tuple(tree) if self.args and not static else tree
        leaves = list(self.leaves) if static else [None] * len(self.leaves)
        for i, value in zip(self.vary, values, strict=True):
            leaves[i] = value
        tree = self.spec.unflatten(leaves)
        return tuple(tree) if self.args and not static else tree


def concat(parts: list, dtype: str) -> Any:
    """The leaves `parts` (arrays of one kind, or Python floats) raveled and joined, in `dtype`.

    Runs on any kind whose namespace anydiff knows, tracers and symbolic arrays included.
    """
    arrays = [p for p in parts if type(p) is not float]
    # the namespace of the library's arrays: NumPy leaves among them are its constants (autograd)
    xp = namespace(next((p for p in arrays if not isinstance(p, np.ndarray)), arrays[0]))
    target = getattr(xp, dtype)
    flat = []
    for p in parts:
        if type(p) is float:
            p = xp.asarray(p, dtype=target)
        elif dtype_name(p.dtype) != dtype:
            p = xp.astype(p, target)
        flat.append(xp.reshape(p, (-1,)))
    return xp.concat(flat)


def block_leaves(m: Any, rows: TreeLayout | None, cols: TreeLayout, flat: bool, dtype: str) -> list:
    """A flat Jacobian or Hessian `m` cut into blocks, as one list, row by row: array operations
    only (they run inside a compiled call too); `block_tree` nests them as `m[p][q]` (or keeps one
    2-D array if `flat`).

    `m` has shape `(rows.size, cols.size)`, or `y.shape + (cols.size,)` when `rows` is `None` (a
    bare array output, of dtype `dtype`). Block `[p][q]` has shape `row_p.shape + col_q.shape` and
    the promotion of the two leaves' dtypes.
    """
    xp = namespace(m)
    if rows is None:
        lead = tuple(m.shape[:-1])
        if flat:
            return [xp.reshape(m, (int(np.prod(lead, dtype=np.int64)), cols.size))]
        return [
            _cast(xp, xp.reshape(m[..., s], lead + shape), dtype, d)
            for s, shape, d in zip(cols.slices, cols.shapes, cols.dtypes, strict=True)
        ]
    if flat:
        return [m]
    return [
        _cast(xp, xp.reshape(m[r, c], row_shape + col_shape), row_dtype, col_dtype)
        for r, row_shape, row_dtype in zip(rows.slices, rows.shapes, rows.dtypes, strict=True)
        for c, col_shape, col_dtype in zip(cols.slices, cols.shapes, cols.dtypes, strict=True)
    ]


def block_tree(values: Sequence[Any], rows: TreeLayout | None, cols: TreeLayout, flat: bool) -> Any:
    """The nested blocks from `block_leaves`' list."""
    if flat:
        return values[0]
    if rows is None:
        return cols.unflatten(list(values), static=False)
    n = len(cols.vary)
    return rows.unflatten(
        [cols.unflatten(list(values[i * n : (i + 1) * n]), static=False) for i in range(len(rows.vary))],
        static=False,
    )


def _cast(xp: Any, block: Any, a: str, b: str) -> Any:
    target = "float64" if "float64" in (a, b) else "float32"
    return block if dtype_name(block.dtype) == target else xp.astype(block, getattr(xp, target))


def tangent_leaves(operator: str, lay: TreeLayout, tangents: Any) -> Any:
    """One tangent tree like `lay` raveled, or a tuple of them (a batch) raveled one by one.

    One tangent and a batch are told apart by structure (never ambiguous: a static position
    takes only `None` or a leaf, never a container).
    """
    one = _match(lay, tangents)
    if one is not None:
        return lay.ravel(_checked(operator, lay, one))
    if type(tangents) is tuple and tangents:
        batch = [_match(lay, t) for t in tangents]
        if all(b is not None for b in batch):
            return tuple(lay.ravel(_checked(operator, lay, b)) for b in batch)  # type: ignore[arg-type]
    root = lay.paths[0].split("[")[0].split(".")[0] if lay.paths else "x"
    raise ValueError(
        f"{operator}: the tangents must be one tree with the structure of `{root}` or a tuple of "
        f"such trees; `{root}` is {_skeleton(lay.spec)}, the tangents are "
        f"{_skeleton(flatten(tangents)[1])}."
    )


def _match(lay: TreeLayout, t: Any) -> list | None:
    """The leaves of `t` up to `lay`'s structure, or `None` if its structure differs."""
    if lay.args and type(t) is tuple:
        t = Args(*t)
    try:
        leaves = lay.spec.flatten_up_to(t)
    except (ValueError, TypeError):
        return None
    # A container where `x` has a leaf makes `t` no tangent of `x` (a batch as long as a tuple `x`)
    for leaf in leaves:
        if leaf is not None and type(leaf) not in (float, int) and array_kind(leaf) is None and is_tree(leaf):
            return None
    return leaves


def _checked(operator: str, lay: TreeLayout, leaves: list) -> list:
    """The leaves of one tangent, each differentiable one checked against its primal leaf."""
    out = list(leaves)
    for i, shape, dtype in zip(lay.vary, lay.shapes, lay.dtypes, strict=True):
        leaf, path = leaves[i], "t" + lay.paths[i]
        if type(leaf) in (int, float) and shape == ():
            out[i] = float(leaf)
            continue
        if array_kind(leaf) is None:
            raise TypeError(f"{operator}: tangent {path}: expected an array of shape {shape}; got {_short(leaf)}.")
        if tuple(leaf.shape) != shape or dtype_name(leaf.dtype) != dtype:
            raise ValueError(
                f"{operator}: tangent {path}: expected shape {shape} {dtype}, got "
                f"{tuple(leaf.shape)} {dtype_name(leaf.dtype)}."
            )
    return out


def _context(array: Any, dtype: str | None = None) -> Any:
    """The context the computations on `array` need (JAX's x64 for float64), or a null one; for
    results of dtype `dtype` if given (float32 leaves raveled with a Python float: float64)."""
    kind = array_kind(array)
    if kind is None or kind.context is None:
        return nullcontext()
    like = array if dtype is None or dtype_name(array.dtype) == dtype else np.empty(0, dtype)  # its dtype counts
    context = kind.context(like)
    return nullcontext() if context is None else context()


def _as_dtype(xp: Any, piece: Any, dtype: str, flat_dtype: str) -> Any:
    return piece if dtype == flat_dtype else xp.astype(piece, getattr(xp, dtype))


def _describe(leaf: Any, vary: bool) -> str:
    if type(leaf) is float:
        return "float"
    if vary:
        return f"shape {tuple(leaf.shape)} {dtype_name(leaf.dtype)}"
    return f"static {_short(leaf)}"


def _short(value: Any) -> str:
    if array_kind(value) is not None:
        return f"array {tuple(value.shape)} {dtype_name(value.dtype)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _skeleton(spec: Any) -> str:
    return str(_engine().tree_unflatten(spec, ["*"] * spec.num_leaves)).replace("'*'", "*")


def aval(leaf: Any) -> tuple[tuple[int, ...], str]:
    """The shape and dtype name of a leaf: `((), "float64")` for a Python float."""
    if type(leaf) is float:
        return (), "float64"
    return tuple(leaf.shape), dtype_name(leaf.dtype)


def layout(
    tree: Any,
    operator: str,
    root: str = "x",
    owner: Callable[[Any], Any] = array_kind,
    describe: Callable[[Any], tuple[tuple[int, ...], str]] = aval,
) -> TreeLayout:
    """The layout of the input tree `tree`, after checking its leaves (TypeError names the path).

    `owner(leaf)` is the kind of an array leaf (by default its `ArrayKind`; `DifferentiateWith`
    passes the library whose program calls it, whose tracers are no array kind), `None` for others;
    `describe(leaf)` its shape and dtype name (symbolic variables know them otherwise).
    """
    leaves, spec = flatten(tree)
    paths = _paths(spec, root)
    vary: list[int] = []
    avals: list[tuple[tuple[int, ...], str]] = []
    kinds: dict[str, tuple[Any, str]] = {}
    for i, leaf in enumerate(leaves):
        if type(leaf) is float:
            vary.append(i)
            avals.append(aval(leaf))
            continue
        kind = owner(leaf)
        if kind is None:
            lesson = _static_lesson(leaf)
            if lesson is not None:
                raise TypeError(f"{operator}: {paths[i]} is {lesson}")
            continue
        kinds.setdefault(str(getattr(kind, "name", None) or getattr(kind, "__name__", kind)), (kind, paths[i]))
        shape, dtype = describe(leaf)
        if dtype in _DIFFERENTIABLE:
            vary.append(i)
            avals.append((shape, dtype))
        elif dtype in _REFUSED:
            raise TypeError(
                f"{operator}: {paths[i]} has dtype {dtype}; differentiable leaves are float32 or float64 "
                f"(other leaves are static). Convert it, e.g. `{paths[i]}.astype(float)`."
            )
    if len(kinds) > 1:
        listing = ", ".join(f"{path} → {name}" for name, (_, path) in kinds.items())
        raise TypeError(
            f"{operator}: the arrays of one tree must be of one kind; this one mixes {listing}. "
            "Convert them to one library's arrays first."
        )
    if not vary and spec.is_leaf() and array_kind(tree) is None:
        raise TypeError(
            f"{operator}: `{root}` must be an array (NumPy, JAX, torch, ...), a Python float or a tree of "
            f"them; got {type(tree).__name__}. Convert it first, e.g. `numpy.asarray({root}, dtype=float)`."
        )
    if not vary:
        listing = ", ".join(f"{p}: {_short(leaf)}" for p, leaf in zip(paths, leaves, strict=True)) or "none"
        raise TypeError(
            f"{operator}: `{root}` has no differentiable leaf (float32 or float64 arrays, or Python "
            f"floats); its leaves are {listing}."
        )
    return TreeLayout(spec, paths, leaves, vary, avals)


def output_layout(y: Any, operator: str) -> TreeLayout | None:
    """The layout of `f`'s output, or `None` for a bare array (TypeError names a bad leaf)."""
    leaves, spec = flatten(y)
    if spec.is_leaf():
        return None
    if not leaves:
        raise TypeError(
            f"{operator}: `f` returned {type(y).__name__}, a tree without any array; `f` must return an "
            "array or a tree of arrays."
        )
    paths = _paths(spec, "y")
    for path, leaf in zip(paths, leaves, strict=True):
        if type(leaf) is float:
            continue
        # arrays, and the tracers of a library tracing `f` (a `DifferentiateWith` substitute's jit)
        dtype = dtype_name(leaf.dtype) if hasattr(leaf, "shape") and hasattr(leaf, "dtype") else None
        if dtype not in _DIFFERENTIABLE:
            raise TypeError(
                f"{operator}: the leaves of `f`'s output must be float32 or float64 arrays or Python "
                f"floats; {path} is {_short(leaf)}. Return auxiliary values separately."
            )
    return TreeLayout(spec, paths, leaves, list(range(len(leaves))), [aval(leaf) for leaf in leaves])


class OutputTree:
    """The layout of `f`'s output, recorded at its first evaluation; `ravel` flattens each output."""

    __slots__ = ("operator", "layout", "known")

    def __init__(self, operator: str) -> None:
        self.operator, self.known = operator, False
        self.layout: TreeLayout | None = None

    def ravel(self, y: Any) -> Any:
        if not self.known:
            self.layout, self.known = output_layout(y, self.operator), True
        if self.layout is None:
            return y
        leaves, spec = flatten(y)
        if spec != self.layout.spec:
            raise ValueError(
                f"{self.operator}: `f` returned a tree of another structure than at preparation "
                f"({spec} instead of {self.layout.spec})."
            )
        return concat(leaves, self.layout.dtype)


def flat_function(f: Callable[..., Any], lay: TreeLayout, out: OutputTree) -> Callable[..., Any]:
    """`v ↦ ravel(f(unravel(v)))`: `f` of a tree with layout `lay` as a function of one vector.

    Runs on a backend's arrays (tracers, symbolic arrays); `out` records and ravels the output.
    """

    def flat_f(v: Any, *contexts: Any) -> Any:
        tree = lay.unflatten(lay.pieces(v), static=True)
        return out.ravel(f(*tree, *contexts) if lay.args else f(tree, *contexts))

    return flat_f


def flat_problem(f: Callable[..., Any], x: Any, operator: str) -> tuple[Callable[..., Any], Any, Unravel | None]:
    """`(f, x, None)` for an array (or float) `x`; for a tree, `f` of the flat vector (`flat_function`),
    the vector (`ad.ravel(x)[0]`) and its `unravel`: for the tools that work on one flat vector
    (sparsity detection, SciPy)."""
    if type(x) is float or array_kind(x) is not None:
        return f, x, None
    lay = layout(x, operator)
    return flat_function(f, lay, OutputTree(operator)), lay.ravel(lay.leaves), Unravel(lay)


# -- `ad.ravel` ---------------------------------------------------------------------------------


class Unravel:
    """`unravel(v) -> tree`: the inverse of `ad.ravel`, for any 1-D array of the right length.

    Works inside `f` on a backend's arrays (each piece is a slice of `v`, in its leaf's dtype and
    shape); static leaves come back unchanged. `paths`, `slices`, `shapes` and `dtypes` describe
    the layout of the differentiable leaves (`J[:, unravel.slices[i]]` is leaf i's block).
    """

    __slots__ = ("_layout",)

    def __init__(self, layout: TreeLayout) -> None:
        self._layout = layout

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self._layout.paths[i] for i in self._layout.vary)

    @property
    def slices(self) -> tuple[slice, ...]:
        return self._layout.slices

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return self._layout.shapes

    @property
    def dtypes(self) -> tuple[str, ...]:
        return self._layout.dtypes

    def __call__(self, v: Any) -> Any:
        shape = tuple(getattr(v, "shape", (None,)))
        if shape != (self._layout.size,):
            raise ValueError(f"unravel: expected a 1-D array of length {self._layout.size}; got shape {shape}.")
        return self._layout.unflatten(self._layout.pieces(v), static=True)

    def __repr__(self) -> str:
        return f"<Unravel {len(self._layout.vary)} leaves, {self._layout.size} values>"


def ravel(tree: Any) -> tuple[Any, Unravel]:
    """`ravel(tree) -> (vector, unravel)`: the differentiable leaves of `tree` as one 1-D array.

    `vector` concatenates the float leaves (leaf order: depth first, dict keys sorted; each leaf
    in C order), in the tree's array kind and the promotion of their dtypes. `unravel(v)` gives
    the tree back from any 1-D array of that length.

    Example:
        >>> import numpy as np, anydiff as ad
        >>> v, unravel = ad.ravel({"w": np.ones((2, 2)), "b": np.zeros(1)})
        >>> v
        array([0., 1., 1., 1., 1.])
        >>> unravel(v)["w"].shape
        (2, 2)
    """
    lay = layout(tree, "ravel")
    return lay.ravel(lay.leaves), Unravel(lay)
