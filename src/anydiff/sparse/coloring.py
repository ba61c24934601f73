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
neighbour, and the lexicographically first maximal independent set is P-complete), so the
kernels are tight Python loops over vertices in which a set of colors is one Python integer
used as a bit set: marking a neighbour is one `|`, and the smallest free color is the lowest
zero bit, `~f & (f + 1)`. Everything around the loops (graphs, degrees, orders' inputs,
checks, post-processing) is vectorised with NumPy/SciPy.
"""

from __future__ import annotations

import heapq
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from .._core.arrays import csr_rows
from .decompression import KINDS, Kind, as_pattern, check_symmetric, identity, star_readings

__all__ = ["GreedyColoring", "coloring"]

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
        return f"GreedyColoring({', '.join(changed)})"

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
    S = as_pattern(pattern, "coloring")
    if kind == "column":
        colors = _distance2_coloring(S.tocsc(), algorithm)
    elif kind == "row":
        colors = _distance2_coloring(S, algorithm)
    elif kind == "symmetric":
        check_symmetric(S, "coloring")
        colors = _symmetric_coloring(S, algorithm)
    else:
        if algorithm.decompression == "substitution":
            raise ValueError(
                "coloring: kind='bidirectional' supports only direct decompression; received "
                "an algorithm with decompression='substitution'. Fix: use "
                "GreedyColoring(decompression='direct') for MixedMode."
            )
        colors = _bicoloring(S, algorithm)
    return colors


# ---------------------------------------------------------------------------------------
# Partial distance-2 coloring (columns or rows of a Jacobian)


def _distance2_coloring(nets_of: sp.csr_array | sp.csc_array, algorithm: GreedyColoring) -> np.ndarray:
    """Color the vertices of a bipartite graph so that two vertices sharing a net differ.

    `nets_of` lists, for each vertex, its nets: the CSC form of J for its columns, the CSR
    form for its rows. Empty vertices take color 0 (-1 with post-processing).
    """
    nvertices = nets_of.shape[1] if isinstance(nets_of, sp.csc_array) else nets_of.shape[0]
    nnets = nets_of.shape[0] if isinstance(nets_of, sp.csc_array) else nets_of.shape[1]
    nets = (nets_of.indptr.tolist(), nets_of.indices.tolist())
    graph: _Graph | None = None
    best: np.ndarray | None = None
    for order in algorithm.orders:
        if order in ("natural", "random"):
            colors = _greedy_distance2(nets, nnets, _simple_order(order, nvertices, algorithm.seed))
        else:
            if graph is None:
                graph = _Graph.distance2(nets_of)
            if order == "dsatur":
                colors, _ = _dsatur(graph)
            else:
                colors = _greedy_distance2(nets, nnets, _dynamic_order(order, graph))
        if best is None or colors.max(initial=-1) < best.max(initial=-1):
            best = colors
    assert best is not None  # algorithm.orders is never empty
    return _neutral_empty(best, nets_of) if algorithm.postprocessing else best


def _greedy_distance2(nets: tuple[list[int], list[int]], nnets: int, order: list[int]) -> np.ndarray:
    """Greedy partial distance-2 coloring in `order`; `nets` is (indptr, indices) as lists.

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
# Graphs and vertex orders


class _Graph:
    """An undirected graph given by a symmetric boolean CSR matrix whose diagonal is ignored.

    Degrees are computed at once; the adjacency lists for the Python loops cost more than
    the static orders need, so they are built on first use (dynamic orders, DSATUR, star and
    acyclic coloring).
    """

    __slots__ = ("_lists", "_matrix", "degree")

    def __init__(self, matrix: sp.csr_array) -> None:
        self._matrix = matrix
        self._lists: tuple[list[int], list[int]] | None = None
        self.degree = np.diff(matrix.indptr) - (matrix.diagonal() != 0)

    @staticmethod
    def distance2(nets_of: sp.csr_array | sp.csc_array) -> _Graph:
        """Vertices sharing a net are adjacent (the column intersection graph JᵀJ)."""
        incidence = sp.csr_array(nets_of.T) if isinstance(nets_of, sp.csc_array) else nets_of
        # Boolean products add with `or`, so no entry can cancel to an explicit zero.
        return _Graph(sp.csr_array(incidence @ incidence.T))

    @property
    def lists(self) -> tuple[list[int], list[int]]:
        """(indptr, indices) without self-loops, neighbours sorted, as Python lists."""
        if self._lists is None:
            matrix = self._matrix
            n = matrix.shape[0]
            keep = matrix.indices != csr_rows(matrix.indptr)
            indptr = np.concatenate(([0], np.cumsum(self.degree)))
            adjacency = sp.csr_array((np.ones(int(keep.sum()), dtype=bool), matrix.indices[keep], indptr), shape=(n, n))
            # Sorted neighbours make the ties of the dynamic orders independent of how SciPy
            # happens to lay out a matrix product.
            adjacency.sort_indices()
            self._lists = (adjacency.indptr.tolist(), adjacency.indices.tolist())
        return self._lists


def _simple_order(order: str, n: int, seed: int) -> list[int]:
    if order == "natural":
        return list(range(n))
    return np.random.default_rng(seed).permutation(n).tolist()


def _dynamic_order(order: str, graph: _Graph) -> list[int]:
    """Vertex order for the orders that need degrees (static or updated as vertices go)."""
    if order == "largest_first":
        return np.argsort(-graph.degree, kind="stable").tolist()
    if order == "smallest_last":
        return _smallest_last(graph)
    if order == "incidence_degree":
        return _incidence_degree(graph)
    return _dynamic_largest_first(graph)


def _buckets(keys: np.ndarray, size: int) -> list[list[int]]:
    """Bucket queue: bucket d lists the vertices with key d, in increasing index order."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=size)
    splits = np.split(order, np.cumsum(counts)[:-1])
    return [bucket.tolist() for bucket in splits]


# The three dynamic orders keep lazy bucket queues: when a key changes the vertex is pushed
# again and stale entries (vertex already placed, or key changed) are skipped when popped.
# Within a bucket the last pushed vertex comes first.


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


def _incidence_degree(graph: _Graph) -> list[int]:
    """Next the vertex with most already-ordered neighbours (ties: larger degree first)."""
    indptr, indices = graph.lists
    n = graph.degree.size
    incidence = [0] * n
    buckets: list[list[int]] = [[] for _ in range(int(graph.degree.max(initial=0)) + 1)]
    # Popping from the end takes the largest degree first among equal incidences.
    buckets[0] = np.argsort(graph.degree, kind="stable").tolist()
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


def _dsatur(graph: _Graph) -> tuple[np.ndarray, list[int]]:
    """Brélaz's DSATUR on a distance-1 graph: colors and the order in which vertices got them.

    Next is the uncolored vertex whose neighbours use the most distinct colors (ties: larger
    degree, then smaller index), found with a lazy max-heap.
    """
    n = graph.degree.size
    degree = graph.degree.tolist()
    forbidden = [0] * n
    saturation = [0] * n
    bits = [0] * n
    heap = [(0, -d, v) for v, d in enumerate(degree)]
    heapq.heapify(heap)
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
    return _bits_to_colors(bits), picked


# ---------------------------------------------------------------------------------------
# Symmetric colorings (Hessians): star and acyclic


def _symmetric_coloring(S: sp.csr_array, algorithm: GreedyColoring) -> np.ndarray:
    """Best star (or acyclic) coloring over the orders, never worse than distance-2.

    Candidates for each order: the distance-2 coloring of the adjacency graph (the columns
    of S + I), which is a star and an acyclic coloring; the greedy star coloring; for
    substitution, the greedy acyclic coloring and the triangular coloring of Powell & Toint
    / Coleman & Moré, which is acyclic too. For `"dsatur"` the triangular coloring is a
    DSATUR coloring of the triangular graph of the natural order (it finds the optimal
    3 colors of the 5-point stencil, where greedy acyclic colorings stop at 4).
    """
    n = S.shape[0]
    graph = _Graph(S)
    closed = sp.csr_array(S + identity(n, bool))
    closed.sort_indices()
    nets = (closed.indptr.tolist(), closed.indices.tolist())
    substitution = algorithm.decompression == "substitution"
    edges = _edge_ids(graph) if substitution else []
    best: np.ndarray | None = None
    for order in algorithm.orders:
        if order in ("natural", "random"):
            vertex_order = _simple_order(order, n, algorithm.seed)
            candidates = [_greedy_distance2(nets, n, vertex_order)]
        elif order == "dsatur":
            distance2_colors, vertex_order = _dsatur(_Graph.distance2(closed))
            candidates = [distance2_colors]
        else:
            vertex_order = _dynamic_order(order, graph)
            candidates = [_greedy_distance2(nets, n, vertex_order)]
        if substitution:
            candidates.append(_bits_to_colors(_acyclic_greedy(graph, edges, vertex_order)))
            if order == "dsatur":
                lower = _lower_triangle(closed, list(range(n)))
                candidates.append(_dsatur(_Graph.distance2(lower))[0])
            else:
                lower = _lower_triangle(closed, vertex_order)
                lower_nets = (lower.indptr.tolist(), lower.indices.tolist())
                candidates.append(_greedy_distance2(lower_nets, n, vertex_order))
        else:
            candidates.append(_bits_to_colors(_star_greedy(graph, vertex_order)))
        for candidate in candidates:
            if best is None or candidate.max(initial=-1) < best.max(initial=-1):
                best = candidate
    assert best is not None
    if algorithm.postprocessing and not substitution:
        best = _neutralize_star(S, best)
    return best


def _lower_triangle(S: sp.csr_array, order: list[int]) -> sp.csc_array:
    """The entries (i, j) of S (diagonal included) with i at or after j in `order`, as CSC.

    Columns of this triangle that share no row may share a color, and such a triangular
    coloring is acyclic: on a two-colored cycle, the latest vertex would be a common row of
    its two cycle neighbours, which have the same color.
    """
    n = S.shape[0]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    rows = csr_rows(S.indptr)
    keep = position[rows] >= position[S.indices]
    lower = sp.csc_array((np.ones(int(keep.sum()), dtype=bool), (rows[keep], S.indices[keep])), shape=(n, n))
    lower.sort_indices()
    return lower


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


def _edge_ids(graph: _Graph) -> list[int]:
    """An id per undirected edge, shared by its two CSR positions (the smaller position)."""
    indptr_list, indices_list = graph.lists  # the positions the loops will use
    indptr, cols = np.asarray(indptr_list), np.asarray(indices_list, dtype=np.int64)
    rows = csr_rows(indptr)
    # The k-th entry in (row, col) order and the k-th in (col, row) order are mirrors.
    mirror = np.empty(cols.size, dtype=np.int64)
    mirror[np.lexsort((cols, rows))] = np.lexsort((rows, cols))
    return np.minimum(np.arange(cols.size), mirror).tolist()


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
    chosen = np.zeros(T.shape[0], dtype=bool)
    chosen[np.argsort(-np.diff(T.indptr), kind="stable")[:k]] = True
    chosen_part, other_part = T[chosen], T[~chosen].tocsc()
    chosen_colors = np.full(T.shape[0], -1, dtype=np.int64)
    chosen_colors[chosen] = _neutral_empty(_distance2_coloring(chosen_part, algorithm), chosen_part)
    other_colors = _neutral_empty(_distance2_coloring(other_part, algorithm), other_part)
    column_colors, row_colors = (other_colors, chosen_colors) if side == "row" else (chosen_colors, other_colors)
    forward_count = column_colors.max(initial=-1) + 1
    return np.concatenate([column_colors, np.where(row_colors >= 0, row_colors + forward_count, -1)])


def _neutral_empty(colors: np.ndarray, nets_of: sp.csr_array | sp.csc_array) -> np.ndarray:
    """Neutral color for vertices without nonzeros (they need no product), renumbered."""
    return _compact(np.where(np.diff(nets_of.indptr) > 0, colors, -1))
