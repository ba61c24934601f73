"""Graph colorings of sparsity patterns: few products for a sparse Jacobian or Hessian.

Columns of a Jacobian that share no row can be pushed forward together (one JVP per color);
the same holds for rows and VJPs, and for a symmetric Hessian a star coloring (direct
decompression) or an acyclic coloring (substitution) needs even fewer HVPs. `coloring`
computes these colorings greedily; `anydiff.sparse.decompression` turns the products back
into the sparse matrix.

| kind | graph problem | decompression |
|---|---|---|
| `"column"` | partial distance-2 coloring of the columns | direct |
| `"row"` | the same on the rows | direct |
| `"symmetric"` | star coloring (or acyclic, with `decompression="substitution"`) | direct (substitution) |
| `"bidirectional"` | column colors for JVPs and row colors for VJPs, from a dense-row / dense-column split | direct |

Greedy coloring is sequential by nature (the color of a vertex depends on every earlier
neighbour, and the lexicographically first maximal independent set is P-complete), so each
kernel is a loop over vertices, and there are two sets of kernels that give identical
colorings:

- compiled, with numba (`pip install "anydiff[fast]"`): loops over NumPy arrays in which a
  set of colors is a row of 64-bit words, compiled on first use and kept in numba's on-disk
  cache. They are used when the pure kernels would take longer than getting them going
  (about half a second in a process that has not used them yet, for importing numba and
  loading the kernels; from about two million nonzeros × orders for a column coloring), and
  for any coloring of more than a few thousand nonzeros once they are in use;
- pure Python otherwise: a set of colors is one Python integer used as a bit set, so marking
  a neighbour is one `|` and the smallest free color is the lowest zero bit, `~f & (f + 1)`.

Distance-2 colorings keep the colors already used in each net (row, for a column coloring)
instead of building the distance-2 graph, which only the dynamic orders and DSATUR need (the
compiled kernels count largest-first's degrees without it). When several orders
are tried, the search stops at a coloring that meets a lower bound (the largest net; two
colors for a graph with an edge), since no later order could beat it. Everything around the
loops (graphs, degrees, orders' inputs, checks, post-processing) is vectorised with
NumPy/SciPy.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field, fields
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._core.arrays import csr_rows
from .decompression import KINDS, Kind, as_pattern, check_symmetric, identity, star_readings

__all__ = ["GreedyColoring", "OptimalColoring", "coloring"]

ORDERS: tuple[str, ...] = (
    "natural",
    "largest_first",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "dsatur",
    "random",
)
# "best" tries every deterministic order; "random" is left out so that "best" needs no seed.
BEST_ORDERS: tuple[str, ...] = ORDERS[:-1]
_DECOMPRESSIONS = ("direct", "substitution")


@dataclass(frozen=True, slots=True)
class GreedyColoring:
    """`GreedyColoring(order="largest_first", *, postprocessing, seed, decompression)` -> coloring settings.

    Frozen and hashable, used by `coloring` and by `AutoSparse`: vertices are colored one at
    a time, in the given order, with the smallest color allowed.

    Args:
        order: the vertex order. `"natural"` (index order), `"largest_first"` (decreasing
            degree; on a Jacobian, the distance-2 degree), `"smallest_last"`,
            `"incidence_degree"`, `"dynamic_largest_first"` (the dynamic orders of ColPack),
            `"dsatur"` (Brélaz's saturation order: next the vertex whose neighbours already
            use the most colors; for acyclic colorings it also colors the triangular graph
            of the natural order this way) or `"random"` (a permutation drawn from `seed`).
            A tuple of orders tries each and keeps the fewest colors (the first on ties);
            `"best"` is the tuple of every order but `"random"` and costs about the sum of
            their times.
        postprocessing: give the neutral color `-1` to colors that direct decompression
            never reads (star colorings of Hessians with zero diagonal entries, empty
            columns or rows), which can remove products.
        seed: seed of the `"random"` order.
        decompression: for `kind="symmetric"`: `"direct"` (star coloring, each entry read
            from one product) or `"substitution"` (acyclic coloring: fewer colors, entries
            solved along two-colored trees). Jacobian colorings are always direct.

    Raises:
        ValueError: unknown order or decompression.

    Example:
        >>> import numpy as np
        >>> coloring(np.eye(3) + np.eye(3, k=1), "column", GreedyColoring("natural")).tolist()
        [0, 1, 0]
    """

    order: str | tuple[str, ...] = "largest_first"
    _: KW_ONLY
    postprocessing: bool = False
    seed: int = 0
    decompression: Literal["direct", "substitution"] = "direct"

    def __post_init__(self) -> None:
        order = self.order
        if isinstance(order, list):
            order = tuple(order)
            object.__setattr__(self, "order", order)
        names = order if isinstance(order, tuple) else (order,)
        valid = (*ORDERS, "best")
        if not names or not all(isinstance(name, str) and name in valid for name in names):
            raise ValueError(
                "GreedyColoring: `order` must be one of "
                f"{', '.join(map(repr, valid))}, or a tuple of them; received {order!r}. "
                "Fix: e.g. GreedyColoring(order='smallest_last') or "
                "GreedyColoring(order=('natural', 'dsatur'))."
            )
        if self.decompression not in _DECOMPRESSIONS:
            raise ValueError(
                "GreedyColoring: `decompression` must be 'direct' or 'substitution'; received "
                f"{self.decompression!r}. Fix: use 'substitution' for acyclic Hessian colorings."
            )
        if not isinstance(self.seed, int | np.integer):
            raise TypeError(
                f"GreedyColoring: `seed` must be an integer; received {self.seed!r}. Fix: e.g. "
                "GreedyColoring('random', seed=1)."
            )

    def __repr__(self) -> str:
        changed = [
            f"{field.name}={getattr(self, field.name)!r}"
            for field in fields(self)
            if getattr(self, field.name) != field.default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    @property
    def orders(self) -> tuple[str, ...]:
        """The orders to try, `"best"` expanded."""
        names = self.order if isinstance(self.order, tuple) else (self.order,)
        expanded: list[str] = []
        for name in names:
            for order in BEST_ORDERS if name == "best" else (name,):
                if order not in expanded:
                    expanded.append(order)
        return tuple(expanded)


@dataclass(frozen=True, repr=False)
class OptimalColoring(GreedyColoring):
    """`OptimalColoring(order="largest_first", *, time_limit=10.0, ...)` -> the fewest colors for a Jacobian.

    The greedy coloring of `order` (the settings of `GreedyColoring`), then improved by OR-Tools'
    CP-SAT solver (`pip install ortools`, or `anydiff[optimal]`): column (row) colorings with
    the fewest colors it finds within `time_limit` seconds, never more than the greedy ones,
    proven optimal when the search ends before the limit (`anydiff.sparse.optimal`). Worth it
    where one preparation serves many calls and the pattern is small (hundreds to a few
    thousand columns); the search stops at once where the greedy coloring meets the lower
    bound (the most nonzeros in one row). Column and row colorings only: Hessians' star and
    acyclic colorings, and bidirectional ones, are greedy (`GreedyColoring`).

    Args:
        order, postprocessing, seed: as for `GreedyColoring` (`seed` also seeds the solver).
        time_limit: seconds the solver may search (a positive number).

    Raises:
        ValueError: a `time_limit` that is not a positive number (and what `GreedyColoring`
            raises for its settings).

    Example:
        >>> import numpy as np
        >>> rows, columns = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5], [0, 3, 0, 5, 2, 1, 2, 5, 4, 1, 4, 3]
        >>> pattern = np.zeros((6, 6), dtype=bool)
        >>> pattern[rows, columns] = True  # each row: one pair of columns that conflict
        >>> int(coloring(pattern, "column", GreedyColoring("natural")).max() + 1)
        3
        >>> int(coloring(pattern, "column", OptimalColoring("natural")).max() + 1)  # doctest: +SKIP
        2
    """

    time_limit: float = field(default=10.0, kw_only=True)

    def __post_init__(self) -> None:
        super().__post_init__()
        limit = self.time_limit
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
            raise ValueError(
                f"OptimalColoring: `time_limit` must be a positive number of seconds; received "
                f"{limit!r}. Fix: e.g. OptimalColoring(time_limit=5.0)."
            )


def coloring(pattern: Any, kind: Kind = "column", algorithm: GreedyColoring | None = None) -> np.ndarray:
    """`coloring(pattern, kind="column", algorithm=None)` -> integer colors, 0-based.

    Args:
        pattern: the sparsity pattern, a 2-D SciPy sparse matrix/array or dense array (bool
            or numeric; nonzero entries are the structural nonzeros), m × n.
        kind:
            `"column"`: length n; columns sharing a row get different colors, so one JVP
            per color recovers J (`seeds = seed_matrix(colors)`, `J @ seeds`).
            `"row"`: length m; the same for rows and VJPs.
            `"symmetric"`: length n, for a square, structurally symmetric pattern (a
            Hessian). A star coloring, so that every entry can be read directly from
            `H @ seeds`; with `algorithm.decompression == "substitution"`, an acyclic
            coloring (fewer colors; decompression solves along two-colored trees). Never
            uses more colors than a distance-2 coloring, which is always a star coloring.
            `"bidirectional"`: length n + m, for `MixedMode`: `colors[:n]` are the column
            colors (forward products, numbered `0 .. kf - 1`) and `colors[n:]` the row colors
            (reverse products, numbered `kf .. kf + kr - 1`, after the column ones), so
            `colors.max() + 1` is the number of products. Chosen by splitting the nonzeros
            into dense rows (read by VJPs) and the rest (read by JVPs), or dense columns
            (JVPs) and the rest (VJPs), keeping the split with fewest products; the pure
            column and row colorings are among the candidates.
            With `algorithm.postprocessing`, or in `"bidirectional"` colorings, `-1` marks a
            neutral vertex that belongs to no product.
        algorithm: a `GreedyColoring`; default `GreedyColoring()`.

    Returns:
        A 1-D int64 NumPy array.

    Raises:
        ValueError: unknown `kind`, a pattern that is not 2-D, a non-square or non-symmetric
            pattern for `"symmetric"`, or substitution with `"bidirectional"`.
        TypeError: `algorithm` is not a `GreedyColoring`, or a non-numeric pattern.

    Example:
        >>> import numpy as np
        >>> arrow = np.eye(4); arrow[0, :] = arrow[:, 0] = 1
        >>> int(coloring(arrow, "column").max() + 1), int(coloring(arrow, "symmetric").max() + 1)
        (4, 2)
        >>> int(coloring(arrow, "bidirectional").max() + 1)
        3
    """
    if kind not in KINDS:
        raise ValueError(
            f"coloring: `kind` must be one of {', '.join(map(repr, KINDS))}; received "
            f"{kind!r}. Fix: kind='column' for forward mode, 'row' for reverse mode, "
            "'symmetric' for Hessians."
        )
    if algorithm is None:
        algorithm = GreedyColoring()
    elif not isinstance(algorithm, GreedyColoring):
        raise TypeError(
            "coloring: `algorithm` must be a GreedyColoring; received "
            f"{type(algorithm).__name__}. Fix: e.g. algorithm=GreedyColoring('smallest_last')."
        )
    if kind in ("column", "row"):
        return _distance2_coloring(_vertices(pattern, kind, algorithm), algorithm)
    if isinstance(algorithm, OptimalColoring):
        raise ValueError(
            f"coloring: OptimalColoring colors the columns or rows of a Jacobian; received "
            f"kind={kind!r}. Fix: GreedyColoring for kind='symmetric' (Hessians) or 'bidirectional'."
        )
    if kind == "symmetric":
        S = _canonical_csr(pattern)
        jit = _kernels(S.nnz, algorithm, algorithm.decompression)
        if S.shape[0] != S.shape[1] or not _is_symmetric(S, jit):
            check_symmetric(S, "coloring")
        return _symmetric_coloring(S, algorithm, jit)
    if algorithm.decompression == "substitution":
        raise ValueError(
            "coloring: kind='bidirectional' supports only direct decompression; received "
            "an algorithm with decompression='substitution'. Fix: use "
            "GreedyColoring(decompression='direct') for MixedMode."
        )
    return _bicoloring(as_pattern(pattern, "coloring"), algorithm)


# ---------------------------------------------------------------------------------------
# Patterns in, bipartite graphs and graphs


def _canonical_arrays(pattern: Any) -> tuple[str, np.ndarray, np.ndarray, tuple[int, int]] | None:
    """`(format, indptr, indices, shape)` of a CSR or CSC `pattern` already in canonical form.

    Canonical (sorted indices, no duplicates) and without stored zeros, `as_pattern` would
    only copy it; its arrays are read in place instead (never written). None otherwise.
    """
    if not sp.issparse(pattern) or pattern.format not in ("csr", "csc") or pattern.ndim != 2:
        return None
    if pattern.dtype.kind not in "biufc" or not pattern.has_canonical_format:
        return None
    nnz = int(pattern.indptr[-1])
    if not pattern.data[:nnz].all():
        return None
    return pattern.format, pattern.indptr, pattern.indices[:nnz], pattern.shape


def _canonical_csr(pattern: Any) -> sp.csr_array:
    """`as_pattern(pattern)`, sharing the index arrays of a pattern already canonical in CSR."""
    arrays = _canonical_arrays(pattern)
    if arrays is None or arrays[0] != "csr":
        return as_pattern(pattern, "coloring")
    _, indptr, indices, shape = arrays
    return sp.csr_array((np.ones(indices.size, dtype=bool), indices, indptr), shape=shape)


def _vertices(pattern: Any, kind: str, algorithm: GreedyColoring) -> _Bipartite:
    """The columns (`kind="column"`) or rows of `pattern` with their nets, the rows or columns."""
    arrays = _canonical_arrays(pattern)
    if arrays is None:
        S = as_pattern(pattern, "coloring")
        arrays = ("csr", S.indptr, S.indices, S.shape)
    compressed, indptr, indices, (m, n) = arrays
    jit = _kernels(indices.size, algorithm, kind)
    if (compressed == "csc") == (kind == "column"):
        return _Bipartite(indptr, indices, m if kind == "column" else n, jit)
    return _Bipartite.from_members(indptr, indices, n if kind == "column" else m, jit)


def _transpose(indptr: np.ndarray, indices: np.ndarray, ncols: int, jit: Any) -> tuple[np.ndarray, np.ndarray]:
    """CSR arrays of the transpose (sorted indices) of the CSR structure `(indptr, indices)`."""
    if jit is not None:
        return jit.transpose(_int64(indptr), _int64(indices), ncols)
    shape = (indptr.size - 1, ncols)
    csc = sp.csr_array((np.ones(indices.size, dtype=bool), indices, indptr), shape=shape).tocsc()
    csc.sort_indices()
    return csc.indptr, csc.indices


def _is_symmetric(S: sp.csr_array, jit: Any) -> bool:
    """Whether the canonical square `S` equals its transpose structurally (arrays compared)."""
    indptr, indices = _transpose(S.indptr, S.indices, S.shape[1], jit)
    return bool(np.array_equal(indptr, S.indptr) and np.array_equal(indices, S.indices))


class _Bipartite:
    """Vertices and the nets they lie in, as CSR-like arrays (the columns of J and their rows,
    or the rows and their columns). Two vertices sharing a net need different colors.

    `jit` holds the compiled kernels, or None for the pure ones. The nets' member lists, the
    distance-2 degrees and the distance-2 graph are built on first use.
    """

    __slots__ = ("_degree", "_graph", "_lists", "_members", "indices", "indptr", "jit", "nnets")

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        nnets: int,
        jit: Any,
        members: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if jit is not None:  # one integer type, so that each kernel compiles once
            indptr, indices = _int64(indptr), _int64(indices)
            if members is not None:
                members = (_int64(members[0]), _int64(members[1]))
        self.indptr = indptr
        self.indices = indices
        self.nnets = nnets
        self.jit = jit
        self._members = members
        self._lists: tuple[list[int], list[int]] | None = None
        self._degree: np.ndarray | None = None
        self._graph: _Graph | None = None

    @staticmethod
    def from_members(indptr: np.ndarray, indices: np.ndarray, nvertices: int, jit: Any) -> _Bipartite:
        """From the nets' lists of members (`indptr`, `indices`) instead of the vertices' nets."""
        if jit is not None:
            indptr, indices = _int64(indptr), _int64(indices)
        vertex_ptr, vertex_idx = _transpose(indptr, indices, nvertices, jit)
        return _Bipartite(vertex_ptr, vertex_idx, indptr.size - 1, jit, members=(indptr, indices))

    @property
    def nvertices(self) -> int:
        return self.indptr.size - 1

    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, indices) of each net's vertices."""
        if self._members is None:
            self._members = _transpose(self.indptr, self.indices, self.nnets, self.jit)
        return self._members

    def largest_net(self) -> int:
        """The most vertices in one net: they pairwise conflict, so no coloring has fewer colors."""
        if self._members is not None:
            return int(np.diff(self._members[0]).max(initial=0))
        return int(np.bincount(self.indices, minlength=self.nnets).max(initial=0))

    @property
    def lists(self) -> tuple[list[int], list[int]]:
        """(indptr, indices) as Python lists, for the pure kernels."""
        if self._lists is None:
            self._lists = (self.indptr.tolist(), self.indices.tolist())
        return self._lists

    def degree(self) -> np.ndarray:
        """Degrees in the distance-2 graph (the other vertices sharing a net)."""
        if self._degree is None:
            if self.jit is not None:
                self._degree = self.jit.distance2_degree(self.indptr, self.indices, *self.members())
            else:
                self._degree = self.graph().degree
        return self._degree

    def graph(self) -> _Graph:
        """The distance-2 graph: vertices sharing a net are adjacent (JᵀJ for columns)."""
        if self._graph is None:
            if self.jit is not None:
                indptr, indices = self.jit.distance2_graph(self.indptr, self.indices, *self.members(), self.degree())
                self._graph = _Graph(indptr, indices, self.jit)
            else:
                shape = (self.nvertices, self.nnets)
                data = np.ones(self.indices.size, dtype=bool)
                incidence = sp.csr_array((data, self.indices, self.indptr), shape=shape)
                # Boolean products add with `or`, so no entry can cancel to an explicit zero.
                product = sp.csr_array(incidence @ incidence.T)
                product.sort_indices()
                self._graph = _Graph.adjacency(product, None)
        return self._graph


def _int64(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.int64)


class _Graph:
    """An undirected graph without self-loops: CSR adjacency (int64, neighbours sorted) and degrees.

    Sorted neighbours make the ties of the dynamic orders independent of how SciPy happens
    to lay out a matrix product.
    """

    __slots__ = ("_lists", "degree", "indices", "indptr", "jit")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, jit: Any) -> None:
        self.indptr = indptr
        self.indices = indices
        self.degree = np.diff(indptr)
        self.jit = jit
        self._lists: tuple[list[int], list[int]] | None = None

    @staticmethod
    def adjacency(S: sp.csr_array, jit: Any) -> _Graph:
        """The graph of a symmetric CSR structure with sorted indices, its diagonal dropped."""
        if jit is not None:
            indptr, indices = jit.drop_diagonal(_int64(S.indptr), _int64(S.indices))
            return _Graph(indptr, indices, jit)
        n = S.shape[0]
        rows = csr_rows(S.indptr)
        keep = S.indices != rows
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=n), out=indptr[1:])
        return _Graph(indptr, S.indices[keep].astype(np.int64), jit)

    @property
    def lists(self) -> tuple[list[int], list[int]]:
        """(indptr, indices) as Python lists, for the pure kernels."""
        if self._lists is None:
            self._lists = (self.indptr.tolist(), self.indices.tolist())
        return self._lists


# ---------------------------------------------------------------------------------------
# Partial distance-2 coloring (columns or rows of a Jacobian)


def _distance2_coloring(vertices: _Bipartite, algorithm: GreedyColoring) -> np.ndarray:
    """Color the vertices so that two vertices sharing a net differ; the fewest colors over the orders.

    Empty vertices take color 0 (-1 with post-processing).
    """
    n = vertices.nvertices
    orders = algorithm.orders
    # The vertices of one net pairwise conflict: once a coloring uses that few colors, no
    # later order can beat it (and ties keep the first), so the search stops.
    enough = max(vertices.largest_net(), min(n, 1)) if len(orders) > 1 else 0
    best: np.ndarray | None = None
    for order in orders:
        if order in ("natural", "random"):
            colors = _greedy(vertices, _simple_order(order, n, algorithm.seed))
        elif order == "largest_first":
            colors = _greedy(vertices, _by_decreasing_degree(vertices.degree(), vertices.jit))
        elif order == "dsatur":
            colors, _ = _dsatur(vertices.graph())
        else:
            colors = _greedy(vertices, _dynamic_order(order, vertices.graph()))
        if best is None or colors.max(initial=-1) < best.max(initial=-1):
            best = colors
        if best.max(initial=-1) < enough:
            break
    assert best is not None  # algorithm.orders is never empty
    if isinstance(algorithm, OptimalColoring):
        from .optimal import fewest_colors

        best = fewest_colors(vertices.members(), n, best, algorithm.time_limit, algorithm.seed)
    return _neutral_empty(best, vertices) if algorithm.postprocessing else best


def _greedy(vertices: _Bipartite, order: np.ndarray) -> np.ndarray:
    """Greedy partial distance-2 coloring in `order` (each vertex takes the smallest color allowed)."""
    if vertices.jit is not None:
        return vertices.jit.greedy_distance2(vertices.indptr, vertices.indices, vertices.nnets, _int64(order))
    return _greedy_distance2(vertices.lists, vertices.nnets, order.tolist())


def _greedy_distance2(nets: tuple[list[int], list[int]], nnets: int, order: list[int]) -> np.ndarray:
    """Pure kernel of `_greedy`; `nets` is (indptr, indices) as lists.

    `used[i]` is the bit set of the colors already present in net i, so the colors forbidden
    for a vertex are the union over its nets, with no distance-2 graph built.
    """
    indptr, indices = nets
    used = [0] * nnets
    bits = [0] * (len(indptr) - 1)
    for v in order:
        members = indices[indptr[v] : indptr[v + 1]]
        forbidden = 0
        for net in members:
            forbidden |= used[net]
        bit = ~forbidden & (forbidden + 1)
        for net in members:
            used[net] |= bit
        bits[v] = bit
    return _bits_to_colors(bits)


def _bits_to_colors(bits: list[int]) -> np.ndarray:
    """Colors from one-bit Python integers (color c is 1 << c)."""
    try:
        # Powers of two are exact in float64 up to 2**1023; frexp reads off the exponent.
        return np.frexp(np.array(bits, dtype=np.float64))[1].astype(np.int64) - 1
    except OverflowError:
        return np.array([bit.bit_length() - 1 for bit in bits], dtype=np.int64)


def _compact(colors: np.ndarray) -> np.ndarray:
    """Renumber the non-neutral colors 0, 1, ... keeping their order; -1 stays -1."""
    used = np.unique(colors[colors >= 0])
    lookup = np.full(int(colors.max(initial=-1)) + 2, -1, dtype=np.int64)
    lookup[used] = np.arange(used.size)
    return lookup[colors]


# ---------------------------------------------------------------------------------------
# Vertex orders


def _simple_order(order: str, n: int, seed: int) -> np.ndarray:
    if order == "natural":
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng(seed).permutation(n)


def _by_decreasing_degree(degree: np.ndarray, jit: Any) -> np.ndarray:
    """Vertices by decreasing degree, ties by increasing index (the largest-first order)."""
    if jit is not None:
        return jit.by_decreasing_degree(degree)
    return np.argsort(-degree, kind="stable")


def _dynamic_order(order: str, graph: _Graph) -> np.ndarray:
    """Vertex order for the orders that need degrees (static or updated as vertices go)."""
    jit = graph.jit
    if order == "largest_first":
        return _by_decreasing_degree(graph.degree, jit)
    if order == "smallest_last":
        if jit is not None:
            return jit.smallest_last(graph.indptr, graph.indices, graph.degree)
        return np.array(_smallest_last(graph), dtype=np.int64)
    if order == "incidence_degree":
        # Popped from the end: the largest degree first among equal incidences.
        by_degree = np.argsort(graph.degree, kind="stable")
        if jit is not None:
            return jit.incidence_degree(graph.indptr, graph.indices, graph.degree, by_degree)
        return np.array(_incidence_degree(graph, by_degree.tolist()), dtype=np.int64)
    if jit is not None:
        return jit.dynamic_largest_first(graph.indptr, graph.indices, graph.degree)
    return np.array(_dynamic_largest_first(graph), dtype=np.int64)


def _buckets(keys: np.ndarray, size: int) -> list[list[int]]:
    """Bucket queue: bucket d lists the vertices with key d, in increasing index order."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=size)
    splits = np.split(order, np.cumsum(counts)[:-1])
    return [bucket.tolist() for bucket in splits]


# The three dynamic orders keep lazy bucket queues: when a key changes the vertex is pushed
# again and stale entries (vertex already placed, or key changed) are skipped when popped.
# Within a bucket the last pushed vertex comes first. (The compiled kernels keep each bucket
# as a linked stack, pushing the initial vertices in the same order.)


def _smallest_last(graph: _Graph) -> list[int]:
    """Repeatedly remove a vertex of smallest degree in the remaining graph; color in reverse."""
    indptr, indices = graph.lists
    degree = graph.degree.tolist()
    n = len(degree)
    buckets = _buckets(graph.degree, max(degree, default=0) + 1)
    removed = [False] * n
    removal: list[int] = []
    low = 0
    while len(removal) < n:
        bucket = buckets[low]
        if not bucket:
            low += 1
            continue
        v = bucket.pop()
        if removed[v] or degree[v] != low:
            continue
        removed[v] = True
        removal.append(v)
        for u in indices[indptr[v] : indptr[v + 1]]:
            if not removed[u]:
                d = degree[u] - 1
                degree[u] = d
                buckets[d].append(u)
                if d < low:
                    low = d
    removal.reverse()
    return removal


def _incidence_degree(graph: _Graph, by_degree: list[int]) -> list[int]:
    """Next the vertex with most already-ordered neighbours (ties: larger degree first).

    `by_degree` lists the vertices by increasing degree (stable), the initial bucket 0.
    """
    indptr, indices = graph.lists
    n = graph.degree.size
    incidence = [0] * n
    buckets: list[list[int]] = [[] for _ in range(int(graph.degree.max(initial=0)) + 1)]
    buckets[0] = by_degree
    placed = [False] * n
    order: list[int] = []
    high = 0
    while len(order) < n:
        bucket = buckets[high]
        if not bucket:
            high -= 1
            continue
        v = bucket.pop()
        if placed[v] or incidence[v] != high:
            continue
        placed[v] = True
        order.append(v)
        for u in indices[indptr[v] : indptr[v + 1]]:
            if not placed[u]:
                d = incidence[u] + 1
                incidence[u] = d
                buckets[d].append(u)
                if d > high:
                    high = d
    return order


def _dynamic_largest_first(graph: _Graph) -> list[int]:
    """Next the vertex of largest degree in the graph of the vertices not yet ordered."""
    indptr, indices = graph.lists
    degree = graph.degree.tolist()
    n = len(degree)
    buckets = _buckets(graph.degree, max(degree, default=0) + 1)
    placed = [False] * n
    order: list[int] = []
    high = len(buckets) - 1
    while len(order) < n:
        bucket = buckets[high]
        if not bucket:
            high -= 1
            continue
        v = bucket.pop()
        if placed[v] or degree[v] != high:
            continue
        placed[v] = True
        order.append(v)
        for u in indices[indptr[v] : indptr[v + 1]]:
            if not placed[u]:
                d = degree[u] - 1
                degree[u] = d
                buckets[d].append(u)
    return order


def _dsatur(graph: _Graph) -> tuple[np.ndarray, np.ndarray]:
    """Brélaz's DSATUR on a distance-1 graph: colors and the order in which vertices got them.

    Next is the uncolored vertex whose neighbours use the most distinct colors (ties: larger
    degree, then smaller index), found with a lazy max-heap.
    """
    # The initial heap: every vertex at saturation 0, by decreasing degree then index.
    by_priority = _by_decreasing_degree(graph.degree, graph.jit)
    if graph.jit is not None:
        return graph.jit.dsatur(graph.indptr, graph.indices, graph.degree, by_priority)
    n = graph.degree.size
    degree = graph.degree.tolist()
    forbidden = [0] * n
    saturation = [0] * n
    bits = [0] * n
    heap = [(0, -degree[v], v) for v in by_priority.tolist()]  # sorted, hence a heap
    picked: list[int] = []
    indptr, indices = graph.lists
    while heap:
        negative_saturation, _, v = heapq.heappop(heap)
        if bits[v] or -negative_saturation != saturation[v]:
            continue
        f = forbidden[v]
        bit = ~f & (f + 1)
        bits[v] = bit
        picked.append(v)
        for u in indices[indptr[v] : indptr[v + 1]]:
            if not bits[u] and not forbidden[u] & bit:
                forbidden[u] |= bit
                saturation[u] += 1
                heapq.heappush(heap, (-saturation[u], -degree[u], u))
    return _bits_to_colors(bits), np.array(picked, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Symmetric colorings (Hessians): star and acyclic


def _symmetric_coloring(S: sp.csr_array, algorithm: GreedyColoring, jit: Any) -> np.ndarray:
    """Best star (or acyclic) coloring over the orders, never worse than distance-2.

    Candidates for each order: the distance-2 coloring of the adjacency graph (the columns
    of S + I), which is a star and an acyclic coloring; the greedy star coloring; for
    substitution, the greedy acyclic coloring and the triangular coloring of Powell & Toint
    / Coleman & Moré, which is acyclic too. For `"dsatur"` the triangular coloring is a
    DSATUR coloring of the triangular graph of the natural order (it finds the optimal
    3 colors of the 5-point stencil, where greedy acyclic colorings stop at 4).
    """
    n = S.shape[0]
    graph = _Graph.adjacency(S, jit)
    if S.nnz - graph.indices.size == n:  # the whole diagonal is stored
        closed = S
    else:
        closed = sp.csr_array(S + identity(n, bool))
        closed.sort_indices()
    nets = _Bipartite(closed.indptr, closed.indices, n, jit, members=(closed.indptr, closed.indices))
    substitution = algorithm.decompression == "substitution"
    edges = _edge_ids(graph) if substitution else None
    orders = algorithm.orders
    # A graph with an edge needs two colors: no later order can beat a 2-coloring.
    enough = (2 if graph.indices.size else min(n, 1)) if len(orders) > 1 else 0
    best: np.ndarray | None = None
    candidates = (c for order in orders for c in _symmetric_candidates(order, graph, nets, edges, algorithm.seed))
    for candidate in candidates:
        if best is None or candidate.max(initial=-1) < best.max(initial=-1):
            best = candidate
        if best.max(initial=-1) < enough:
            break
    assert best is not None
    if algorithm.postprocessing and not substitution:
        best = _neutralize_star(S, best)
    return best


def _symmetric_candidates(
    order: str, graph: _Graph, nets: _Bipartite, edges: np.ndarray | None, seed: int
) -> Iterator[np.ndarray]:
    """The candidate colorings of one order, computed one at a time (see `_symmetric_coloring`)."""
    n = graph.degree.size
    if order in ("natural", "random"):
        vertex_order = _simple_order(order, n, seed)
        yield _greedy(nets, vertex_order)
    elif order == "dsatur":
        distance2_colors, vertex_order = _dsatur(nets.graph())
        yield distance2_colors
    else:
        vertex_order = _dynamic_order(order, graph)
        yield _greedy(nets, vertex_order)
    if edges is None:
        yield _star_coloring(graph, vertex_order)
        return
    yield _acyclic_coloring(graph, edges, vertex_order)
    if order == "dsatur":
        yield _dsatur(_lower_triangle(nets, np.arange(n)).graph())[0]
    else:
        yield _greedy(_lower_triangle(nets, vertex_order), vertex_order)


def _lower_triangle(closed: _Bipartite, order: np.ndarray) -> _Bipartite:
    """Vertex j with the nets i of S + I (diagonal included) that come at or after j in `order`.

    This is the triangular matrix whose entry (i, j) is kept when i is at or after j.
    Columns of it that share no row may share a color, and such a triangular coloring is
    acyclic: on a two-colored cycle, the latest vertex would be a common row of its two
    cycle neighbours, which have the same color.
    """
    n = closed.nvertices
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    if closed.jit is not None:
        indptr, indices = closed.jit.lower_triangle(closed.indptr, closed.indices, position)
        return _Bipartite(indptr, indices, n, closed.jit)
    vertex = csr_rows(closed.indptr)
    keep = position[closed.indices] >= position[vertex]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(vertex[keep], minlength=n), out=indptr[1:])
    return _Bipartite(indptr, closed.indices[keep], n, closed.jit)


def _star_coloring(graph: _Graph, order: np.ndarray) -> np.ndarray:
    if graph.jit is not None:
        return graph.jit.star(graph.indptr, graph.indices, _int64(order))
    return _bits_to_colors(_star_greedy(graph, order.tolist()))


def _star_greedy(graph: _Graph, order: list[int]) -> list[int]:
    """Greedy star coloring: forbid exactly the colors that would close a two-colored P4.

    With `seen[u]` the colors of u's colored neighbours and `twice[u]` those seen at least
    twice, coloring v with k creates a two-colored path on four vertices iff, for a colored
    neighbour w of v and a colored neighbour x != v of w with color k, either x has two
    neighbours of w's color (path v-w-x-y: x is the hub of a star) or v has (path u-v-w-x).
    """
    indptr, indices = graph.lists
    n = len(indptr) - 1
    bits = [0] * n
    seen = [0] * n
    twice = [0] * n
    for v in order:
        neighbours = indices[indptr[v] : indptr[v + 1]]
        forbidden = seen[v]
        repeated = twice[v]
        for w in neighbours:
            bw = bits[w]
            if not bw:
                continue
            if repeated & bw:
                forbidden |= seen[w]
            else:
                for x in indices[indptr[w] : indptr[w + 1]]:
                    if twice[x] & bw:
                        forbidden |= bits[x]  # 0 for x == v or uncolored x
        bit = ~forbidden & (forbidden + 1)
        bits[v] = bit
        for w in neighbours:
            s = seen[w]
            twice[w] |= s & bit
            seen[w] = s | bit
    return bits


def _edge_ids(graph: _Graph) -> np.ndarray:
    """An id per undirected edge, shared by its two CSR positions (the smaller position)."""
    if graph.jit is not None:
        return graph.jit.edge_ids(graph.indptr, graph.indices)
    # Neighbours are sorted, so the k-th entry in (row, column) order is position k, and its
    # mirror is the k-th in (column, row) order: a stable sort by column.
    mirror = np.argsort(graph.indices, kind="stable")
    return np.minimum(np.arange(mirror.size), mirror)


def _acyclic_coloring(graph: _Graph, edges: np.ndarray, order: np.ndarray) -> np.ndarray:
    if graph.jit is not None:
        return graph.jit.acyclic(graph.indptr, graph.indices, edges, _int64(order))
    return _bits_to_colors(_acyclic_greedy(graph, edges.tolist(), order.tolist()))


def _acyclic_greedy(graph: _Graph, edges: list[int], order: list[int]) -> list[int]:
    """Greedy acyclic coloring: forbid exactly the colors that would close a two-colored cycle.

    The two-colored forests are kept as a union-find over edges (Gebremedhin, Tarafdar,
    Manne, Pothen 2007, Algorithm 3.1). Coloring v with the color of x closes a cycle iff
    the tree of an edge w-x (w a neighbour of v) is reached from v through two different
    neighbours.
    """
    indptr, indices = graph.lists
    n = len(indptr) - 1
    bits = [0] * n
    parent = list(range(len(edges)))
    visitor = [-1] * len(edges)  # per tree root: the last vertex that reached the tree
    via = [-1] * len(edges)  # ... and through which neighbour

    def find(e: int) -> int:
        while parent[e] != e:
            parent[e] = parent[parent[e]]
            e = parent[e]
        return e

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for v in order:
        start, stop = indptr[v], indptr[v + 1]
        forbidden = 0
        for p in range(start, stop):
            forbidden |= bits[indices[p]]
        for p in range(start, stop):
            w = indices[p]
            if not bits[w]:
                continue
            for q in range(indptr[w], indptr[w + 1]):
                bx = bits[indices[q]]
                if not bx or forbidden & bx:
                    continue
                root = find(edges[q])
                if visitor[root] != v:
                    visitor[root] = v
                    via[root] = w
                elif via[root] != w:
                    forbidden |= bx
        bit = ~forbidden & (forbidden + 1)
        bits[v] = bit
        # Edges from v to neighbours of one color form a star around v: one tree.
        first_edge: dict[int, int] = {}
        for p in range(start, stop):
            bw = bits[indices[p]]
            if bw:
                union(edges[p], first_edge.setdefault(bw, edges[p]))
        # An edge v-w joins the trees of w's edges to neighbours with v's color.
        for p in range(start, stop):
            w = indices[p]
            if not bits[w]:
                continue
            for q in range(indptr[w], indptr[w + 1]):
                if bits[indices[q]] == bit and indices[q] != v:
                    union(edges[p], edges[q])
    return bits


def _neutralize_star(S: sp.csr_array, colors: np.ndarray) -> np.ndarray:
    """Give -1 to the colors that no direct reading of a star coloring needs.

    Diagonal entries need their vertex's color; an off-diagonal entry readable only at
    (i, c(j)) needs c(j). Entries readable both ways (two-vertex stars) pick a color that is
    already needed, else the color most such entries could use.
    """
    rows = csr_rows(S.indptr)
    cols = S.indices.astype(np.int64)
    here, mirror = star_readings(rows, cols, colors)
    needed = np.zeros(int(colors.max(initial=-1)) + 1, dtype=bool)
    needed[colors[rows[rows == cols]]] = True
    needed[colors[cols[here & ~mirror]]] = True
    needed[colors[rows[mirror & ~here]]] = True
    both = np.flatnonzero(here & mirror & (rows < cols))
    a, b = colors[rows[both]], colors[cols[both]]
    open_pairs = ~needed[a] & ~needed[b]
    if open_pairs.any():
        a, b = a[open_pairs], b[open_pairs]
        popularity = np.bincount(np.concatenate([a, b]), minlength=needed.size)
        for ca, cb in zip(a.tolist(), b.tolist(), strict=True):
            if not (needed[ca] or needed[cb]):
                needed[ca if popularity[ca] >= popularity[cb] else cb] = True
    return _compact(np.where(needed[colors], colors, -1))


# ---------------------------------------------------------------------------------------
# Bicoloring (MixedMode)


def _bicoloring(S: sp.csr_array, algorithm: GreedyColoring) -> np.ndarray:
    """Column and row colors from the best split of the nonzeros into JVP and VJP parts.

    A row split sends the k densest rows to VJPs (a row coloring of those rows) and every
    other row to JVPs (a column coloring of the rest); a column split is the mirror image.
    k = 0 and k = m are the pure column and row colorings. Each candidate has a cheap lower
    bound, so candidates are tried by increasing bound until the bound reaches the best
    total; at most `_MAX_SPLITS` mixed candidates are tried.
    """
    m, n = S.shape
    lines = {"row": S, "column": sp.csr_array(S.T)}
    candidates = [(bound, k, "row") for bound, k in _split_bounds(lines["row"])]
    candidates += [(bound, k, "column") for bound, k in _split_bounds(lines["column"]) if 0 < k < n]
    candidates.sort()
    best: np.ndarray | None = None
    best_total = np.inf
    mixed_tried = 0
    for bound, k, side in candidates:
        if bound >= best_total:
            break
        pure = side == "row" and k in (0, m)
        if not pure:
            if mixed_tried == _MAX_SPLITS:
                continue
            mixed_tried += 1
        colors = _split_coloring(lines[side], side, k, algorithm)
        total = colors.max(initial=-1) + 1
        if total < best_total:
            best, best_total = colors, total
    assert best is not None  # the first candidate always beats an infinite total
    return best


# Each candidate costs two colorings; the bounds usually stop the search after one or two.
_MAX_SPLITS = 16


def _split_bounds(T: sp.csr_array) -> list[tuple[int, int]]:
    """Lower bounds on the products of the splits of the rows of T worth trying, as (bound, k).

    With rows sorted by decreasing count, sending the first k to one mode needs at least as
    many products of the other mode as the densest remaining row has nonzeros, plus at
    least as many as the largest number of those k rows meeting in one column. Only k at the
    ends of runs of equal counts are worth trying (inside a run the first part does not drop).
    """
    m = T.shape[0]
    counts = np.diff(T.indptr)
    by_count = np.argsort(-counts, kind="stable")
    sorted_counts = counts[by_count]
    rank = np.empty(m, dtype=np.int64)
    rank[by_count] = np.arange(m)
    # For each nonzero, how many rows of rank <= its row's rank meet in its column; the
    # running maximum over ranks is the densest column among the first k rows.
    entry_rank = rank[np.repeat(np.arange(m), counts)]
    by_column = np.lexsort((entry_rank, T.indices))
    column_sorted = T.indices[by_column]
    depth = np.arange(by_column.size) - np.searchsorted(column_sorted, column_sorted) + 1
    deepest = np.zeros(m, dtype=np.int64)
    np.maximum.at(deepest, entry_rank[by_column], depth)
    densest_column = np.maximum.accumulate(deepest) if m else deepest
    splits = {0, m, *(np.flatnonzero(sorted_counts[1:] < sorted_counts[:-1]) + 1).tolist()}
    return [
        (
            (int(sorted_counts[k]) if k < m else 0) + (int(densest_column[k - 1]) if k else 0),
            k,
        )
        for k in sorted(splits)
    ]


def _split_coloring(T: sp.csr_array, side: str, k: int, algorithm: GreedyColoring) -> np.ndarray:
    """Bidirectional colors when the k densest rows of T get their own products.

    For a row split T is J: those rows get row colors (VJPs), the other rows are covered
    by column colors (JVPs). For a column split T is Jᵀ and the roles swap.
    """
    jit = _kernels(T.nnz, algorithm, "bidirectional")
    chosen = np.zeros(T.shape[0], dtype=bool)
    chosen[np.argsort(-np.diff(T.indptr), kind="stable")[:k]] = True
    chosen_part, other_part = T[chosen], T[~chosen].tocsc()
    chosen_rows = _Bipartite(chosen_part.indptr, chosen_part.indices, T.shape[1], jit)
    other_columns = _Bipartite(other_part.indptr, other_part.indices, other_part.shape[0], jit)
    chosen_colors = np.full(T.shape[0], -1, dtype=np.int64)
    chosen_colors[chosen] = _neutral_empty(_distance2_coloring(chosen_rows, algorithm), chosen_rows)
    other_colors = _neutral_empty(_distance2_coloring(other_columns, algorithm), other_columns)
    column_colors, row_colors = (other_colors, chosen_colors) if side == "row" else (chosen_colors, other_colors)
    forward_count = column_colors.max(initial=-1) + 1
    return np.concatenate([column_colors, np.where(row_colors >= 0, row_colors + forward_count, -1)])


def _neutral_empty(colors: np.ndarray, vertices: _Bipartite) -> np.ndarray:
    """Neutral color for vertices without nonzeros (they need no product), renumbered."""
    return _compact(np.where(np.diff(vertices.indptr) > 0, colors, -1))


# ---------------------------------------------------------------------------------------
# Compiled kernels (numba, optional)
#
# Each `_nb_<name>` below is compiled with `numba.njit` on first use and computes exactly
# what its pure counterpart computes (the tests compare the two on every pattern they
# color). Index arrays are int64. A set of colors is a row of 64-bit words; the words at or
# past `in_use` (one past the word of the largest color given so far) are always zero, so
# clearing and merging stop there.

# When to use the compiled kernels by default: when the pure ones would take longer than
# it takes to get the compiled ones going. In a process that has not used them yet, that is
# importing numba (about half a second) and loading each kernel from numba's on-disk cache
# (tens of milliseconds; compiling it, once per machine, takes seconds); after that, almost
# nothing. The pure kernels' time is estimated as nonzeros × orders × a cost per nonzero
# (seconds, measured on the benchmark patterns; `_PURE_COST` per kind).
_PURE_COST = {"column": 3e-7, "row": 3e-7, "bidirectional": 6e-7, "direct": 1.5e-6, "substitution": 3e-6}
_STARTUP_SECONDS = 0.5
_WARM_SECONDS = 2e-3
# None: choose as above. True or False force one set of kernels (the tests use both).
_use_numba: bool | None = None
_compiled_in_use = False

_KERNEL_NAMES = (
    "transpose",
    "drop_diagonal",
    "lower_triangle",
    "by_decreasing_degree",
    "edge_ids",
    "distance2_degree",
    "distance2_graph",
    "greedy_distance2",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "dsatur",
    "star",
    "acyclic",
)


def _kernels(nnz: int, algorithm: GreedyColoring, kind: str) -> SimpleNamespace | None:
    """The compiled kernels for coloring `nnz` nonzeros with `algorithm`, or None for the pure ones.

    `kind` is the kind of coloring, or the decompression for symmetric colorings.
    """
    global _compiled_in_use
    if _use_numba is None:
        pure_seconds = nnz * len(algorithm.orders) * _PURE_COST[kind]
        if pure_seconds < (_WARM_SECONDS if _compiled_in_use else _STARTUP_SECONDS):
            return None
    elif not _use_numba:
        return None
    compiled = _compiled_kernels()
    if compiled is None and _use_numba:
        raise ImportError(
            "coloring: the compiled coloring kernels need numba, which is not installed. "
            'Fix: pip install "anydiff[fast]", or leave the choice of kernels to anydiff.'
        )
    _compiled_in_use = compiled is not None
    return compiled


@functools.cache
def _compiled_kernels() -> SimpleNamespace | None:
    try:
        import numba
    except ImportError:
        return None
    # cache=True keeps the machine code on disk, so compilation happens once per machine.
    jit = numba.njit(cache=True, nogil=True)
    return SimpleNamespace(**{name: jit(globals()[f"_nb_{name}"]) for name in _KERNEL_NAMES})


def _nb_transpose(indptr: np.ndarray, indices: np.ndarray, ncols: int) -> tuple[np.ndarray, np.ndarray]:
    nrows = indptr.size - 1
    nnz = indptr[nrows]
    tptr = np.zeros(ncols + 1, np.int64)
    for p in range(nnz):
        tptr[indices[p] + 1] += 1
    for c in range(ncols):
        tptr[c + 1] += tptr[c]
    fill = tptr[:-1].copy()
    tidx = np.empty(nnz, np.int64)
    for r in range(nrows):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            tidx[fill[c]] = r
            fill[c] += 1
    return tptr, tidx


def _nb_by_decreasing_degree(degree: np.ndarray) -> np.ndarray:
    # A counting sort: decreasing degree, increasing index among equal degrees.
    n = degree.size
    top = 0
    for v in range(n):
        top = max(top, degree[v])
    start = np.zeros(top + 2, np.int64)
    for v in range(n):
        start[top - degree[v] + 1] += 1
    for b in range(top + 1):
        start[b + 1] += start[b]
    order = np.empty(n, np.int64)
    for v in range(n):
        b = top - degree[v]
        order[start[b]] = v
        start[b] += 1
    return order


def _nb_drop_diagonal(indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = indptr.size - 1
    ptr = np.zeros(n + 1, np.int64)
    idx = np.empty(indptr[n], np.int64)
    k = 0
    for v in range(n):
        for p in range(indptr[v], indptr[v + 1]):
            if indices[p] != v:
                idx[k] = indices[p]
                k += 1
        ptr[v + 1] = k
    return ptr, idx[:k].copy()


def _nb_lower_triangle(indptr: np.ndarray, indices: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = indptr.size - 1
    ptr = np.zeros(n + 1, np.int64)
    idx = np.empty(indptr[n], np.int64)
    k = 0
    for v in range(n):
        for p in range(indptr[v], indptr[v + 1]):
            if position[indices[p]] >= position[v]:
                idx[k] = indices[p]
                k += 1
        ptr[v + 1] = k
    return ptr, idx[:k].copy()


def _nb_edge_ids(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    # Rows in increasing order meet the entries of column c in increasing row order, which is
    # the order of row c's entries: the mirror of (r, c) is the next unread entry of row c.
    n = indptr.size - 1
    fill = indptr[:-1].copy()
    ids = np.empty(indptr[n], np.int64)
    for r in range(n):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            ids[p] = min(p, fill[c])
            fill[c] += 1
    return ids


def _nb_distance2_degree(
    indptr: np.ndarray, indices: np.ndarray, net_ptr: np.ndarray, net_idx: np.ndarray
) -> np.ndarray:
    # Each pair is counted once, from its smaller vertex: the members of a net are sorted,
    # so those after v are read from the end of the net's list.
    n = indptr.size - 1
    mark = np.full(n, -1, np.int64)
    degree = np.zeros(n, np.int64)
    for v in range(n):
        d = 0
        for p in range(indptr[v], indptr[v + 1]):
            net = indices[p]
            first = net_ptr[net]
            q = net_ptr[net + 1] - 1
            while q >= first and net_idx[q] > v:
                u = net_idx[q]
                if mark[u] != v:
                    mark[u] = v
                    d += 1
                    degree[u] += 1
                q -= 1
        degree[v] += d
    return degree


def _nb_distance2_graph(
    indptr: np.ndarray, indices: np.ndarray, net_ptr: np.ndarray, net_idx: np.ndarray, degree: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = indptr.size - 1
    gptr = np.zeros(n + 1, np.int64)
    for v in range(n):
        gptr[v + 1] = gptr[v] + degree[v]
    fill = gptr[:-1].copy()
    gidx = np.empty(gptr[n], np.int64)
    mark = np.full(n, -1, np.int64)
    # Each vertex, in increasing order, appends itself to its neighbours' rows (the relation
    # is symmetric), so the rows come out sorted.
    for u in range(n):
        mark[u] = u
        for p in range(indptr[u], indptr[u + 1]):
            net = indices[p]
            for q in range(net_ptr[net], net_ptr[net + 1]):
                w = net_idx[q]
                if mark[w] != u:
                    mark[w] = u
                    gidx[fill[w]] = u
                    fill[w] += 1
    return gptr, gidx


def _nb_greedy_distance2(indptr: np.ndarray, indices: np.ndarray, nnets: int, order: np.ndarray) -> np.ndarray:
    n = indptr.size - 1
    one = np.uint64(1)
    full = ~np.uint64(0)
    colors = np.zeros(n, np.int64)
    # Colors 0-63: one word per net, merged with `|`.
    low = np.zeros(nnets, np.uint64)
    # Colors from 64 on, set up when first needed: word k of a color set holds colors
    # 64k .. 64k + 63 (word 0 unused). A net keeps the list of those colors or, when it has at
    # least as many members as a color set has words, a color set: either way no more memory
    # than its members, and merging a set costs no more than reading the list.
    ready = False
    heavy = np.empty(0, np.int64)
    start = np.empty(0, np.int64)
    stop = np.empty(0, np.int64)
    listed = np.empty(0, np.int64)
    net_colors = np.empty((0, 0), np.uint64)
    forbidden = np.empty(0, np.uint64)
    in_use = 1
    for v in order:
        f = np.uint64(0)
        for p in range(indptr[v], indptr[v + 1]):
            f |= low[indices[p]]
        if f != full:
            bit = ~f & (f + one)
            b = 0
            while (bit >> np.uint64(b)) != one:
                b += 1
            colors[v] = b
            for p in range(indptr[v], indptr[v + 1]):
                low[indices[p]] |= bit
            continue
        if not ready:
            ready = True
            size = np.zeros(nnets, np.int64)
            for p in range(indptr[n]):
                size[indices[p]] += 1
            # A vertex sees at most sum(size - 1) colors over its nets.
            bound = 1
            for u in range(n):
                reach = 1
                for p in range(indptr[u], indptr[u + 1]):
                    reach += size[indices[p]] - 1
                bound = max(bound, reach)
            words = min(bound, n) // 64 + 1
            heavy = np.full(nnets, -1, np.int64)
            start = np.zeros(nnets + 1, np.int64)
            nheavy = 0
            for net in range(nnets):
                if size[net] >= words:
                    heavy[net] = nheavy
                    nheavy += 1
                    start[net + 1] = start[net]
                else:
                    start[net + 1] = start[net] + size[net]
            listed = np.empty(start[nnets], np.int64)
            stop = start[:-1].copy()
            net_colors = np.zeros((nheavy, words), np.uint64)
            forbidden = np.zeros(words, np.uint64)
        for k in range(1, in_use):
            forbidden[k] = 0
        for p in range(indptr[v], indptr[v + 1]):
            net = indices[p]
            h = heavy[net]
            if h >= 0:
                for k in range(1, in_use):
                    forbidden[k] |= net_colors[h, k]
            else:
                for q in range(start[net], stop[net]):
                    c = listed[q]
                    forbidden[c >> 6] |= one << np.uint64(c & 63)
        k = 1
        while k < in_use and forbidden[k] == full:
            k += 1
        free = forbidden[k] if k < in_use else np.uint64(0)
        b = 0
        while (free >> np.uint64(b)) & one:
            b += 1
        c = 64 * k + b
        colors[v] = c
        in_use = max(in_use, k + 1)
        bit = one << np.uint64(b)
        for p in range(indptr[v], indptr[v + 1]):
            net = indices[p]
            h = heavy[net]
            if h >= 0:
                net_colors[h, k] |= bit
            else:
                listed[stop[net]] = c
                stop[net] += 1
    return colors


# The bucket queues of the dynamic orders are doubly linked lists (`head[key]`, `after`,
# `before`): a vertex whose key changes moves to the front of its new bucket. Keys only ever
# move one way, so this takes vertices in the same order as the pure kernels' stacks with
# stale entries.


def _nb_smallest_last(indptr: np.ndarray, indices: np.ndarray, degree: np.ndarray) -> np.ndarray:
    n = indptr.size - 1
    degree = degree.copy()
    top = 0
    for v in range(n):
        top = max(top, degree[v])
    head = np.full(top + 1, -1, np.int64)
    after = np.full(n, -1, np.int64)
    before = np.full(n, -1, np.int64)
    for v in range(n):
        d = degree[v]
        after[v] = head[d]
        if head[d] >= 0:
            before[head[d]] = v
        head[d] = v
    removed = np.zeros(n, np.bool_)
    removal = np.empty(n, np.int64)
    low = 0
    for count in range(n):
        while head[low] < 0:
            low += 1
        v = head[low]
        head[low] = after[v]
        if after[v] >= 0:
            before[after[v]] = -1
        removed[v] = True
        removal[count] = v
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if removed[u]:
                continue
            d = degree[u]
            if before[u] >= 0:
                after[before[u]] = after[u]
            else:
                head[d] = after[u]
            if after[u] >= 0:
                before[after[u]] = before[u]
            d -= 1
            degree[u] = d
            before[u] = -1
            after[u] = head[d]
            if head[d] >= 0:
                before[head[d]] = u
            head[d] = u
            low = min(low, d)
    return removal[::-1].copy()


def _nb_incidence_degree(
    indptr: np.ndarray, indices: np.ndarray, degree: np.ndarray, by_degree: np.ndarray
) -> np.ndarray:
    n = indptr.size - 1
    top = 0
    for v in range(n):
        top = max(top, degree[v])
    head = np.full(top + 1, -1, np.int64)
    after = np.full(n, -1, np.int64)
    before = np.full(n, -1, np.int64)
    for v in by_degree:
        after[v] = head[0]
        if head[0] >= 0:
            before[head[0]] = v
        head[0] = v
    incidence = np.zeros(n, np.int64)
    placed = np.zeros(n, np.bool_)
    order = np.empty(n, np.int64)
    high = 0
    for count in range(n):
        while head[high] < 0:
            high -= 1
        v = head[high]
        head[high] = after[v]
        if after[v] >= 0:
            before[after[v]] = -1
        placed[v] = True
        order[count] = v
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if placed[u]:
                continue
            d = incidence[u]
            if before[u] >= 0:
                after[before[u]] = after[u]
            else:
                head[d] = after[u]
            if after[u] >= 0:
                before[after[u]] = before[u]
            d += 1
            incidence[u] = d
            before[u] = -1
            after[u] = head[d]
            if head[d] >= 0:
                before[head[d]] = u
            head[d] = u
            high = max(high, d)
    return order


def _nb_dynamic_largest_first(indptr: np.ndarray, indices: np.ndarray, degree: np.ndarray) -> np.ndarray:
    n = indptr.size - 1
    degree = degree.copy()
    high = 0
    for v in range(n):
        high = max(high, degree[v])
    head = np.full(high + 1, -1, np.int64)
    after = np.full(n, -1, np.int64)
    before = np.full(n, -1, np.int64)
    for v in range(n):
        d = degree[v]
        after[v] = head[d]
        if head[d] >= 0:
            before[head[d]] = v
        head[d] = v
    placed = np.zeros(n, np.bool_)
    order = np.empty(n, np.int64)
    for count in range(n):
        while head[high] < 0:
            high -= 1
        v = head[high]
        head[high] = after[v]
        if after[v] >= 0:
            before[after[v]] = -1
        placed[v] = True
        order[count] = v
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if placed[u]:
                continue
            d = degree[u]
            if before[u] >= 0:
                after[before[u]] = after[u]
            else:
                head[d] = after[u]
            if after[u] >= 0:
                before[after[u]] = before[u]
            d -= 1
            degree[u] = d
            before[u] = -1
            after[u] = head[d]
            if head[d] >= 0:
                before[head[d]] = u
            head[d] = u
    return order


def _nb_dsatur(
    indptr: np.ndarray, indices: np.ndarray, degree: np.ndarray, by_priority: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = indptr.size - 1
    one = np.uint64(1)
    full = ~np.uint64(0)
    # Within one saturation the next vertex is the one of smallest rank in `by_priority`
    # (larger degree, then smaller index): each saturation keeps the set of its vertices'
    # ranks as a bit set, with a summary bit set of its nonzero words.
    rank = np.empty(n, np.int64)
    for r in range(n):
        rank[by_priority[r]] = r
    words = n // 64 + 1
    summary_words = words // 64 + 1
    levels = 2
    members = np.zeros((levels, words), np.uint64)
    summary = np.zeros((levels, summary_words), np.uint64)
    count = np.zeros(levels, np.int64)
    for r in range(n):
        members[0, r >> 6] |= one << np.uint64(r & 63)
    for w in range(words):
        if members[0, w]:
            summary[0, w >> 6] |= one << np.uint64(w & 63)
    count[0] = n
    saturation = np.zeros(n, np.int64)
    colors = np.full(n, -1, np.int64)
    picked = np.empty(n, np.int64)
    color_words = 1
    forbidden = np.zeros((n, color_words), np.uint64)
    in_use = 1
    top = 0
    for step in range(n):
        while count[top] == 0:
            top -= 1
        s = 0
        while summary[top, s] == 0:
            s += 1
        x = summary[top, s]
        b = 0
        while not (x >> np.uint64(b)) & one:
            b += 1
        w = 64 * s + b
        x = members[top, w]
        b = 0
        while not (x >> np.uint64(b)) & one:
            b += 1
        v = by_priority[64 * w + b]
        members[top, w] &= ~(one << np.uint64(b))
        if members[top, w] == 0:
            summary[top, w >> 6] &= ~(one << np.uint64(w & 63))
        count[top] -= 1
        k = 0
        while k < in_use and forbidden[v, k] == full:
            k += 1
        free = forbidden[v, k] if k < in_use else np.uint64(0)
        b = 0
        while (free >> np.uint64(b)) & one:
            b += 1
        if k >= color_words:
            grown = np.zeros((n, 2 * color_words), np.uint64)
            grown[:, :color_words] = forbidden
            forbidden = grown
            color_words *= 2
        in_use = max(in_use, k + 1)
        colors[v] = 64 * k + b
        picked[step] = v
        bit = one << np.uint64(b)
        for p in range(indptr[v], indptr[v + 1]):
            u = indices[p]
            if colors[u] >= 0 or forbidden[u, k] & bit:
                continue
            forbidden[u, k] |= bit
            level = saturation[u]
            wu = rank[u] >> 6
            bu = one << np.uint64(rank[u] & 63)
            members[level, wu] &= ~bu
            if members[level, wu] == 0:
                summary[level, wu >> 6] &= ~(one << np.uint64(wu & 63))
            count[level] -= 1
            level += 1
            saturation[u] = level
            if level == levels:
                grown_members = np.zeros((2 * levels, words), np.uint64)
                grown_summary = np.zeros((2 * levels, summary_words), np.uint64)
                grown_count = np.zeros(2 * levels, np.int64)
                grown_members[:levels] = members
                grown_summary[:levels] = summary
                grown_count[:levels] = count
                members, summary, count = grown_members, grown_summary, grown_count
                levels *= 2
            members[level, wu] |= bu
            summary[level, wu >> 6] |= one << np.uint64(wu & 63)
            count[level] += 1
            top = max(top, level)
    return colors, picked


def _nb_star(indptr: np.ndarray, indices: np.ndarray, order: np.ndarray) -> np.ndarray:
    n = indptr.size - 1
    one = np.uint64(1)
    full = ~np.uint64(0)
    colors = np.full(n, -1, np.int64)
    words = 1
    seen = np.zeros((n, words), np.uint64)  # colors of the colored neighbours
    twice = np.zeros((n, words), np.uint64)  # ... those seen at least twice
    forbidden = np.zeros(words, np.uint64)
    in_use = 1
    for v in order:
        for k in range(in_use):
            forbidden[k] = seen[v, k]
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            cw = colors[w]
            if cw < 0:
                continue
            word = cw >> 6
            bit = one << np.uint64(cw & 63)
            if twice[v, word] & bit:
                for k in range(in_use):
                    forbidden[k] |= seen[w, k]
            else:
                for q in range(indptr[w], indptr[w + 1]):
                    x = indices[q]
                    cx = colors[x]
                    if cx >= 0 and twice[x, word] & bit:
                        forbidden[cx >> 6] |= one << np.uint64(cx & 63)
        k = 0
        while k < in_use and forbidden[k] == full:
            k += 1
        free = forbidden[k] if k < in_use else np.uint64(0)
        b = 0
        while (free >> np.uint64(b)) & one:
            b += 1
        if k >= words:
            grown_seen = np.zeros((n, 2 * words), np.uint64)
            grown_twice = np.zeros((n, 2 * words), np.uint64)
            grown_seen[:, :words] = seen
            grown_twice[:, :words] = twice
            seen, twice = grown_seen, grown_twice
            forbidden = np.zeros(2 * words, np.uint64)
            words *= 2
        in_use = max(in_use, k + 1)
        colors[v] = 64 * k + b
        bit = one << np.uint64(b)
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            twice[w, k] |= seen[w, k] & bit
            seen[w, k] |= bit
    return colors


def _nb_acyclic(indptr: np.ndarray, indices: np.ndarray, edges: np.ndarray, order: np.ndarray) -> np.ndarray:
    n = indptr.size - 1
    one = np.uint64(1)
    full = ~np.uint64(0)
    colors = np.full(n, -1, np.int64)
    parent = np.arange(edges.size)
    visitor = np.full(edges.size, -1, np.int64)  # per tree root: the last vertex that reached the tree
    via = np.full(edges.size, -1, np.int64)  # ... and through which neighbour
    forbidden = np.zeros(n // 64 + 1, np.uint64)
    first_edge = np.empty(n, np.int64)  # per color, while coloring v: v's first edge to it
    first_owner = np.full(n, -1, np.int64)
    in_use = 1
    for v in order:
        for k in range(in_use):
            forbidden[k] = 0
        for p in range(indptr[v], indptr[v + 1]):
            cw = colors[indices[p]]
            if cw >= 0:
                forbidden[cw >> 6] |= one << np.uint64(cw & 63)
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if colors[w] < 0:
                continue
            for q in range(indptr[w], indptr[w + 1]):
                cx = colors[indices[q]]
                if cx < 0 or forbidden[cx >> 6] & (one << np.uint64(cx & 63)):
                    continue
                root = edges[q]
                while parent[root] != root:
                    parent[root] = parent[parent[root]]
                    root = parent[root]
                if visitor[root] != v:
                    visitor[root] = v
                    via[root] = w
                elif via[root] != w:
                    forbidden[cx >> 6] |= one << np.uint64(cx & 63)
        k = 0
        while k < in_use and forbidden[k] == full:
            k += 1
        free = forbidden[k] if k < in_use else np.uint64(0)
        b = 0
        while (free >> np.uint64(b)) & one:
            b += 1
        c = 64 * k + b
        colors[v] = c
        in_use = max(in_use, k + 1)
        # Edges from v to neighbours of one color form a star around v: one tree. And an
        # edge v-w joins the trees of w's edges to neighbours with v's color.
        for p in range(indptr[v], indptr[v + 1]):
            cw = colors[indices[p]]
            if cw < 0:
                continue
            if first_owner[cw] != v:
                first_owner[cw] = v
                first_edge[cw] = edges[p]
            else:
                a = edges[p]
                while parent[a] != a:
                    parent[a] = parent[parent[a]]
                    a = parent[a]
                r = first_edge[cw]
                while parent[r] != r:
                    parent[r] = parent[parent[r]]
                    r = parent[r]
                if a != r:
                    parent[a] = r
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if colors[w] < 0:
                continue
            for q in range(indptr[w], indptr[w + 1]):
                x = indices[q]
                if colors[x] == c and x != v:
                    a = edges[p]
                    while parent[a] != a:
                        parent[a] = parent[parent[a]]
                        a = parent[a]
                    r = edges[q]
                    while parent[r] != r:
                        parent[r] = parent[parent[r]]
                        r = parent[r]
                    if a != r:
                        parent[a] = r
    return colors
