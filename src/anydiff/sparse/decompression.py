"""Seeds and decompression: from a few compressed products back to the sparse matrix (private).

A coloring groups columns (or rows) whose products can be taken together. With `S` the 0/1
seed matrix of the colors, one batched product gives the compressed matrix and a gather
recovers every structural nonzero:

| kind | seeds | compressed (what the AD backend computes) | shape |
|---|---|---|---|
| `"column"` | `seeds`, n × k | `J @ seeds` (k JVPs) | m × k |
| `"row"` | `seeds`, m × k | `seeds.T @ J` (k VJPs) | k × n |
| `"symmetric"` | `seeds`, n × k | `H @ seeds` (k HVPs) | n × k |
| `"bidirectional"` | `seeds` n × kf, `reverse_seeds` m × kr | `(J @ seeds, reverse_seeds.T @ J)` | (m × kf, kr × n) |

Everything that depends only on the pattern and the colors is computed once by
`make_decompression`; a call then costs one gather (direct decompression) or a gather, a
cumulative sum and a second gather (substitution, for acyclic colorings of Hessians). The
index arrays are plain NumPy, so any array library can run the same recipe on its own
arrays (see `Decompression`). Rows and columns are in C order of the flattened arrays, like
the sparse results of the public operators.

Colors are 0-based integers; `-1` marks a neutral vertex that belongs to no seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import array_api_compat
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, depth_first_order
from scipy.sparse.linalg import spsolve_triangular

from anydiff._core.arrays import csr_rows
from anydiff._core.kernels import device as array_device

__all__ = [
    "Decompression",
    "as_pattern",
    "check_symmetric",
    "identity",
    "make_decompression",
    "pair_counts",
    "seed_matrix",
    "star_readings",
]

Kind = Literal["column", "row", "symmetric", "bidirectional"]
KINDS: tuple[str, ...] = ("column", "row", "symmetric", "bidirectional")


def as_pattern(pattern: Any, function: str = "coloring") -> sp.csr_array:
    """`as_pattern(pattern)` -> the structural nonzeros of `pattern` as a canonical boolean CSR array.

    Canonical means sorted column indices, no duplicates and no stored zeros, so that the
    structure of the result is exactly the set of structural nonzeros. The input is never
    modified.

    Args:
        pattern: a 2-D SciPy sparse matrix/array or anything `numpy.asarray` accepts, of
            boolean or numeric dtype; its nonzero entries are the structural nonzeros.
        function: the name of the public function, for error messages.

    Returns:
        A `scipy.sparse.csr_array` of dtype bool.

    Example:
        >>> import numpy as np
        >>> as_pattern(np.array([[1.0, 0.0], [0.0, 2.0]])).nnz
        2
    """
    if sp.issparse(pattern):
        if pattern.ndim != 2:
            raise ValueError(
                f"{function}: `pattern` must be 2-D; received a sparse array of shape "
                f"{pattern.shape}. Fix: reshape it to (rows, columns)."
            )
        dtype = pattern.dtype
        if dtype.kind not in "biufc":
            raise TypeError(
                f"{function}: `pattern` must have a boolean or numeric dtype; received dtype "
                f"{dtype}. Fix: pass `pattern != 0` or `pattern.astype(bool)`."
            )
        # astype copies data and index arrays, so the in-place clean-up below never touches
        # the caller's matrix.
        csr = sp.csr_array(pattern).astype(bool)
    else:
        array = np.asarray(pattern)
        if array.ndim != 2:
            raise ValueError(
                f"{function}: `pattern` must be 2-D; received an array of shape {array.shape}. "
                "Fix: reshape it to (rows, columns)."
            )
        if array.dtype.kind not in "biufc":
            raise TypeError(
                f"{function}: `pattern` must have a boolean or numeric dtype; received dtype "
                f"{array.dtype}. Fix: pass `pattern != 0` or `pattern.astype(bool)`."
            )
        csr = sp.csr_array(array != 0)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    return csr


def seed_matrix(colors: np.ndarray, ncolors: int | None = None, dtype: Any = np.float64) -> np.ndarray:
    """`seed_matrix(colors)` -> the 0/1 seed matrix, shape `(len(colors), ncolors)`.

    Column `c` of the result is the sum of the basis vectors of the vertices with color `c`;
    vertices with the neutral color `-1` get a zero row.

    Args:
        colors: integer colors, `-1` or in `0 .. ncolors - 1`.
        ncolors: number of columns; defaults to `colors.max() + 1` (0 for no colors).
        dtype: dtype of the result.

    Returns:
        A dense NumPy array of zeros and ones.

    Example:
        >>> seed_matrix(np.array([0, 1, 0, -1]))
        array([[1., 0.],
               [0., 1.],
               [1., 0.],
               [0., 0.]])
    """
    colors = np.asarray(colors, dtype=np.int64)
    if ncolors is None:
        ncolors = int(colors.max()) + 1 if colors.size else 0
    seeds = np.zeros((colors.size, ncolors), dtype=dtype)
    colored = np.flatnonzero(colors >= 0)
    seeds[colored, colors[colored]] = 1
    return seeds


@dataclass(frozen=True, slots=True, eq=False)
class Decompression:
    """`decompression(compressed)` -> the sparse matrix as a `scipy.sparse.csr_array`.

    Built once by `make_decompression`; holds the seeds to multiply by and the index arrays
    that map the compressed products to the CSR data of the result (rows and columns in C
    order of the flattened arrays, column indices sorted within each row).

    The recipe, in any array library (`xp` an array-API namespace, `C` the compressed array;
    for `kind="bidirectional"`, `C = (forward, reverse)`):

        flat = xp.reshape(C, (-1,))          # bidirectional: concat of both, forward first
        if substitution is False:             # direct decompression: one gather
            data = xp.take(flat, source)
        else:                                 # substitution (acyclic coloring)
            g = xp.take(flat, source) * sign
            prefix = xp.cumulative_sum(g, include_initial=True)
            data = xp.take(prefix, stop) - xp.take(prefix, start)

    and `(indptr, indices, data)` is the CSR matrix of `shape` (`row_indices` gives the COO
    rows for libraries that build sparse arrays from coordinates). A direct gather from one
    product `C` with k columns is also `C[source // k, source % k]`. Substituted values
    carry the rounding of partial sums within one two-colored tree (a few ulps of the
    entries of `H @ seeds` on the 100 × 100 grid).

    Attributes:
        kind: `"column"`, `"row"`, `"symmetric"` or `"bidirectional"`.
        shape: shape of the decompressed matrix.
        indptr, indices: its CSR structure (the pattern's).
        seeds: for `"row"`, m × k and `C = seeds.T @ J`; otherwise n × k and `C = A @ seeds`.
        reverse_seeds: `"bidirectional"` only: m × kr, reverse part `reverse_seeds.T @ J`.
        compressed_shapes: expected shape(s) of the compressed product(s).
        source: flat positions read from the compressed array(s).
        sign, start, stop: substitution only, else None (`sign` is float64 ±1).

    Example:
        >>> import numpy as np
        >>> J = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 4.0]])
        >>> d = make_decompression(J != 0, np.array([0, 1, 0]), "column")
        >>> d(J @ d.seeds).toarray()
        array([[1., 2., 0.],
               [0., 3., 4.]])
    """

    kind: str
    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    seeds: np.ndarray
    reverse_seeds: np.ndarray | None
    compressed_shapes: tuple[tuple[int, int], ...]
    source: np.ndarray
    sign: np.ndarray | None = None
    start: np.ndarray | None = None
    stop: np.ndarray | None = None

    @property
    def substitution(self) -> bool:
        """Whether decompression solves along trees (acyclic coloring) rather than only reading."""
        return self.sign is not None

    @property
    def ncolors(self) -> int:
        """Number of products per decompression (JVPs + VJPs, or HVPs)."""
        extra = 0 if self.reverse_seeds is None else self.reverse_seeds.shape[1]
        return self.seeds.shape[1] + extra

    @property
    def row_indices(self) -> np.ndarray:
        """Row index of every stored entry, aligned with `indices` (the COO rows)."""
        return csr_rows(self.indptr)

    def values(self, compressed: Any, xp: Any = None) -> Any:
        """`values(compressed)` -> the CSR data of the decompressed matrix (1-D, length nnz).

        Args:
            compressed: the compressed product, or `(forward, reverse)` for
                `kind="bidirectional"`, as arrays of any array-API library.
            xp: array-API namespace of `compressed`; by default the `array_api_compat`
                namespace of the arrays. Index arrays are moved to their device.

        Returns:
            The data array, in the library (and on the device) of `compressed`.
        """
        parts = tuple(compressed) if self.kind == "bidirectional" else (compressed,)
        for part, array in enumerate(parts):
            self._check_shape(array, part)
        if xp is None:
            xp = array_api_compat.array_namespace(*parts)
        flats = [xp.reshape(array, (-1,)) for array in parts]
        return self.read(flats[0] if len(flats) == 1 else xp.concat(flats), self.source, xp)

    def stacked_source(self) -> np.ndarray:
        """`source` for the products stacked one per row, as AD backends batch them.

        The compressed arrays of the kinds that multiply `A @ seeds` (`"column"`,
        `"symmetric"`, the forward part of `"bidirectional"`) hold one product per column; a
        batched product gives their transpose, `(k, m)`. Reading that directly (with `read`)
        saves transposing it in every call.
        """
        source = self.source
        if self.kind == "row":
            return source
        (m, k), *_ = self.compressed_shapes
        forward = source < m * k  # bidirectional: the reverse part comes after, as it is
        return np.where(forward, (source % max(k, 1)) * m + source // max(k, 1), source)

    def read(self, flat: Any, source: np.ndarray, xp: Any) -> Any:
        """The CSR data from `flat`, the compressed product(s) flattened, read at `source`
        (`self.source`, or `self.stacked_source()` for stacked products)."""
        device = array_device(flat)  # also for arrays without a `.device` (MLX)
        gathered = xp.take(flat, xp.asarray(source, device=device))
        if self.sign is None:
            return gathered
        sign = xp.asarray(self.sign, dtype=flat.dtype, device=device)
        prefix = xp.cumulative_sum(gathered * sign, include_initial=True)
        start = xp.asarray(self.start, device=device)
        stop = xp.asarray(self.stop, device=device)
        return xp.take(prefix, stop) - xp.take(prefix, start)

    def __call__(self, compressed: Any) -> sp.csr_array:
        """`decompression(compressed)` -> `scipy.sparse.csr_array` with the pattern's structure."""
        if self.kind == "bidirectional":
            compressed = tuple(np.asarray(c) for c in compressed)
        else:
            compressed = np.asarray(compressed)
        data = self.values(compressed)
        # Fresh index arrays, so that a caller editing the result cannot corrupt this plan.
        return sp.csr_array((data, self.indices.copy(), self.indptr.copy()), shape=self.shape, copy=False)

    def _check_shape(self, array: Any, part: int) -> None:
        expected = self.compressed_shapes[part]
        if tuple(array.shape) != expected:
            name = ("forward", "reverse")[part] if self.kind == "bidirectional" else "compressed"
            raise ValueError(
                f"decompress: the {name} product must have shape {expected} for this "
                f"{self.kind} coloring; received shape {tuple(array.shape)}. Fix: multiply by "
                "the plan's seeds as its docstring shows."
            )


def make_decompression(
    pattern: Any,
    colors: np.ndarray,
    kind: Kind = "column",
    *,
    substitution: bool = False,
) -> Decompression:
    """`make_decompression(pattern, colors, kind)` -> a `Decompression` for that coloring.

    Checks that `colors` allow the decompression (each structural nonzero can be recovered)
    and precomputes the seeds and index arrays.

    Args:
        pattern: the sparsity pattern (m × n; square and symmetric for `"symmetric"`).
        colors: as returned by `coloring(pattern, kind, ...)`: length n for `"column"` and
            `"symmetric"`, m for `"row"`, n + m for `"bidirectional"`.
        kind: `"column"`, `"row"`, `"symmetric"` or `"bidirectional"`.
        substitution: `"symmetric"` only: decompress by substitution along the two-colored
            trees of an acyclic coloring (fewer colors, one cumulative sum per call) instead
            of direct reading from a star coloring.

    Returns:
        The `Decompression`.

    Raises:
        ValueError: bad `kind`, wrong length of `colors`, or colors that do not allow the
            decompression (the message names a nonzero that cannot be recovered).

    Example:
        >>> import numpy as np
        >>> H = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
        >>> d = make_decompression(H != 0, np.array([0, 1, 2]), "symmetric")
        >>> np.allclose(d(H @ d.seeds).toarray(), H)
        True
    """
    if kind not in KINDS:
        raise ValueError(
            f"make_decompression: `kind` must be one of {', '.join(map(repr, KINDS))}; "
            f"received {kind!r}. Fix: use kind='column' for forward-mode Jacobians."
        )
    S = as_pattern(pattern, "make_decompression")
    m, n = S.shape
    expected = {"column": n, "row": m, "symmetric": n, "bidirectional": n + m}[kind]
    colors = np.asarray(colors)
    if colors.shape != (expected,) or colors.dtype.kind not in "iu":
        raise ValueError(
            f"make_decompression: `colors` for kind={kind!r} must be a 1-D integer array of "
            f"length {expected}; received {colors.dtype} array of shape {colors.shape}. "
            "Fix: pass the result of `coloring(pattern, kind)` for this pattern."
        )
    colors = colors.astype(np.int64)
    if kind == "symmetric":
        check_symmetric(S, "make_decompression")
    if substitution and kind != "symmetric":
        raise ValueError(
            "make_decompression: `substitution=True` needs kind='symmetric' (acyclic coloring "
            f"of a Hessian); received kind={kind!r}. Fix: drop `substitution` for "
            "Jacobian colorings, whose decompression is always direct."
        )
    rows = csr_rows(S.indptr)
    cols = S.indices.astype(np.int64)
    indptr = S.indptr.astype(np.int64)
    if kind == "column":
        return _column_decompression(S, rows, cols, indptr, colors)
    if kind == "row":
        return _row_decompression(S, rows, cols, indptr, colors)
    if kind == "bidirectional":
        return _bidirectional_decompression(S, rows, cols, indptr, colors)
    if substitution:
        return _substitution_decompression(S, rows, cols, indptr, colors)
    return _star_decompression(S, rows, cols, indptr, colors)


def check_symmetric(S: sp.csr_array, function: str) -> None:
    """Raise unless `S` (canonical) is square and structurally symmetric."""
    m, n = S.shape
    if m != n:
        raise ValueError(
            f"{function}: kind='symmetric' needs a square `pattern` (a Hessian's); received "
            f"shape {S.shape}. Fix: use kind='column' or kind='row' for a Jacobian."
        )
    asymmetric = (S != S.T).tocoo()
    if asymmetric.nnz:
        i, j = int(asymmetric.row[0]), int(asymmetric.col[0])
        present = (i, j) if S[i, j] else (j, i)
        raise ValueError(
            f"{function}: kind='symmetric' needs a structurally symmetric `pattern`; received one "
            f"where {present} is stored but {present[::-1]} is not (entries without mirror: "
            f"{asymmetric.nnz // 2}). Fix: symmetrize it with `pattern + pattern.T`, or use "
            "kind='column' for a Jacobian."
        )


def pair_counts(owner: np.ndarray, color: np.ndarray) -> np.ndarray:
    """`pair_counts(owner, color)` -> for each position, how often its (owner, color) pair occurs.

    Args:
        owner, color: non-negative integer arrays of equal length.

    Returns:
        int64 array aligned with the inputs.

    Example:
        >>> pair_counts(np.array([0, 0, 1, 0]), np.array([2, 2, 2, 1])).tolist()
        [2, 2, 1, 1]
    """
    if owner.size == 0:
        return np.zeros(0, dtype=np.int64)
    width = int(color.max()) + 1
    _, inverse, counts = np.unique(owner * width + color, return_inverse=True, return_counts=True)
    return counts[inverse]


def identity(n: int, dtype: Any) -> sp.csr_array:
    """The n × n identity as a CSR array (built directly: `eye_array` needs SciPy 1.12)."""
    return sp.csr_array((np.ones(n, dtype=dtype), np.arange(n), np.arange(n + 1)), shape=(n, n))


def _ncolors(colors: np.ndarray) -> int:
    return int(colors.max()) + 1 if colors.size else 0


def _column_decompression(
    S: sp.csr_array, rows: np.ndarray, cols: np.ndarray, indptr: np.ndarray, colors: np.ndarray
) -> Decompression:
    m, n = S.shape
    k = _ncolors(colors)
    entry_colors = colors[cols]
    _require_unique_reading(rows, entry_colors, "column", "columns", "row", rows, cols)
    return Decompression(
        kind="column",
        shape=(m, n),
        indptr=indptr,
        indices=cols,
        seeds=seed_matrix(colors, k),
        reverse_seeds=None,
        compressed_shapes=((m, k),),
        source=rows * k + entry_colors,
    )


def _row_decompression(
    S: sp.csr_array, rows: np.ndarray, cols: np.ndarray, indptr: np.ndarray, colors: np.ndarray
) -> Decompression:
    m, n = S.shape
    k = _ncolors(colors)
    entry_colors = colors[rows]
    _require_unique_reading(cols, entry_colors, "row", "rows", "column", rows, cols)
    return Decompression(
        kind="row",
        shape=(m, n),
        indptr=indptr,
        indices=cols,
        seeds=seed_matrix(colors, k),
        reverse_seeds=None,
        compressed_shapes=((k, n),),
        source=entry_colors * n + cols,
    )


def _require_unique_reading(
    owner: np.ndarray,
    entry_colors: np.ndarray,
    kind: str,
    things: str,
    line: str,
    rows: np.ndarray,
    cols: np.ndarray,
) -> None:
    """Raise unless every nonzero has a color and is alone with it in its row (or column)."""
    neutral = np.flatnonzero(entry_colors < 0)
    if neutral.size:
        p = neutral[0]
        raise ValueError(
            f"make_decompression: `colors` is not a valid {kind} coloring of `pattern`: the "
            f"nonzero ({rows[p]}, {cols[p]}) lies in a {kind} with the neutral color -1. "
            f"Fix: compute `colors` with `coloring(pattern, kind={kind!r})`."
        )
    clash = np.flatnonzero(pair_counts(owner, entry_colors) > 1)
    if clash.size:
        p = clash[0]
        other = clash[(owner[clash] == owner[p]) & (entry_colors[clash] == entry_colors[p])][1]
        a, b = (cols[p], cols[other]) if kind == "column" else (rows[p], rows[other])
        raise ValueError(
            f"make_decompression: `colors` is not a valid {kind} coloring of `pattern`: "
            f"{things} {a} and {b} share {line} {owner[p]} and both have color "
            f"{entry_colors[p]}. Fix: compute `colors` with `coloring(pattern, kind={kind!r})`."
        )


def _bidirectional_decompression(
    S: sp.csr_array, rows: np.ndarray, cols: np.ndarray, indptr: np.ndarray, colors: np.ndarray
) -> Decompression:
    m, n = S.shape
    column_colors, row_colors = colors[:n], colors[n:]
    kf = _ncolors(column_colors)
    used_rows = row_colors[row_colors >= 0]
    if used_rows.size and used_rows.min() < kf:
        raise ValueError(
            "make_decompression: bidirectional `colors` must number the row (reverse) colors "
            f"after the column (forward) ones, i.e. from {kf}; received a row color "
            f"{int(used_rows.min())}. Fix: pass the result of "
            "`coloring(pattern, 'bidirectional')`."
        )
    kr = _ncolors(used_rows - kf)
    forward_colors = column_colors[cols]
    reverse_colors = row_colors[rows] - kf
    # A nonzero is read from the forward product if its column is the only one of its color
    # among the colored columns of its row; otherwise from the reverse product, which needs
    # the mirror condition on rows.
    forward_ok = forward_colors >= 0
    forward_ok[forward_ok] = pair_counts(rows[forward_ok], forward_colors[forward_ok]) == 1
    reverse_ok = reverse_colors >= 0
    reverse_ok[reverse_ok] = pair_counts(cols[reverse_ok], reverse_colors[reverse_ok]) == 1
    lost = np.flatnonzero(~forward_ok & ~reverse_ok)
    if lost.size:
        p = lost[0]
        raise ValueError(
            "make_decompression: `colors` is not a valid bicoloring of `pattern`: the nonzero "
            f"({rows[p]}, {cols[p]}) can be read neither from the forward products (its "
            "column's color is neutral or shared in its row) nor from the reverse ones. Fix: "
            "compute `colors` with `coloring(pattern, kind='bidirectional')`."
        )
    source = np.where(forward_ok, rows * kf + forward_colors, m * kf + reverse_colors * n + cols)
    return Decompression(
        kind="bidirectional",
        shape=(m, n),
        indptr=indptr,
        indices=cols,
        seeds=seed_matrix(column_colors, kf),
        reverse_seeds=seed_matrix(np.where(row_colors >= 0, row_colors - kf, -1), kr),
        compressed_shapes=((m, kf), (kr, n)),
        source=source,
    )


def _check_proper(rows: np.ndarray, cols: np.ndarray, colors: np.ndarray, what: str) -> None:
    """Raise unless neighbours (off-diagonal nonzeros) have different, non-neutral colors."""
    off = rows != cols
    clash = np.flatnonzero(off & (colors[rows] == colors[cols]) & (colors[rows] >= 0))
    if clash.size:
        p = clash[0]
        raise ValueError(
            f"make_decompression: `colors` is not a valid {what} coloring of `pattern`: "
            f"neighbours {rows[p]} and {cols[p]} both have color {colors[rows[p]]}. Fix: "
            "compute `colors` with `coloring(pattern, kind='symmetric')`."
        )


def star_readings(rows: np.ndarray, cols: np.ndarray, colors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`star_readings(rows, cols, colors)` -> masks: can entry (i, j) be read at (i, color j)? at (j, color i)?

    For a symmetric pattern given by its nonzeros (both triangles, diagonal included), the
    entry (i, j), i != j, of `H @ seeds` at row i and color c(j) is H[i, j] exactly when j
    is the only colored neighbour of i with color c(j); by symmetry the entry is also
    readable at row j and color c(i) under the mirror condition. A coloring is a star
    coloring exactly when it is proper and every off-diagonal entry is readable one way.

    Args:
        rows, cols: coordinates of the nonzeros.
        colors: vertex colors, `-1` for neutral.

    Returns:
        `(here, mirror)`, boolean arrays aligned with the nonzeros (False on the diagonal).
    """
    off = rows != cols
    neighbour_colors = colors[cols]
    here = off & (neighbour_colors >= 0)
    here[here] = pair_counts(rows[here], neighbour_colors[here]) == 1
    # Reading (i, j) at row j is reading its mirror (j, i) "here".
    mirror = here[_mirror_positions(rows, cols)]
    return here, mirror


def _star_decompression(
    S: sp.csr_array, rows: np.ndarray, cols: np.ndarray, indptr: np.ndarray, colors: np.ndarray
) -> Decompression:
    n = S.shape[0]
    k = _ncolors(colors)
    _check_proper(rows, cols, colors, "star")
    diagonal = rows == cols
    bad_diagonal = np.flatnonzero(diagonal & (colors[rows] < 0))
    if bad_diagonal.size:
        i = rows[bad_diagonal[0]]
        raise ValueError(
            f"make_decompression: `colors` gives the neutral color -1 to vertex {i}, whose "
            f"diagonal entry ({i}, {i}) is a structural nonzero. Fix: compute `colors` with "
            "`coloring(pattern, kind='symmetric')`."
        )
    here, mirror = star_readings(rows, cols, colors)
    lost = np.flatnonzero(~diagonal & ~here & ~mirror)
    if lost.size:
        p = lost[0]
        raise ValueError(
            "make_decompression: `colors` is not a star coloring of `pattern`: the entry "
            f"({rows[p]}, {cols[p]}) lies on a path of four vertices with only two colors, so "
            "it cannot be read directly. Fix: compute `colors` with `coloring(pattern, "
            "kind='symmetric')`, or pass `substitution=True` for an acyclic coloring."
        )
    read_row = np.where(here | diagonal, rows, cols)
    read_color = np.where(here | diagonal, colors[cols], colors[rows])
    return Decompression(
        kind="symmetric",
        shape=(n, n),
        indptr=indptr,
        indices=cols,
        seeds=seed_matrix(colors, k),
        reverse_seeds=None,
        compressed_shapes=((n, k),),
        source=read_row * k + read_color,
    )


def _substitution_decompression(
    S: sp.csr_array, rows: np.ndarray, cols: np.ndarray, indptr: np.ndarray, colors: np.ndarray
) -> Decompression:
    """Plan substitution along the two-colored trees of an acyclic coloring.

    Each edge {u, v} lies in one tree of the forest induced by colors {c(u), c(v)}. A tree
    node is a pair (vertex u, other color b); its compressed value C[u, b] is the sum of
    H[u, w] over its tree neighbours w. Rooting every tree, the value on the edge from a
    node d to its parent is the alternating sum of C over the subtree of d, signs flipping
    with depth. In depth-first preorder subtrees are contiguous, so these sums are
    differences of one prefix sum. Each root contributes its own C value, which cancels the
    tree's total, so the prefix sum returns to (nearly) zero after every tree and rounding
    does not build up across trees. Each diagonal entry is a one-node block followed by its
    negation.
    """
    n = S.shape[0]
    if np.any(colors < 0):
        raise ValueError(
            "make_decompression: substitution needs every vertex colored; received neutral "
            "colors (-1). Fix: compute `colors` with `coloring(pattern, kind='symmetric', "
            "algorithm=GreedyColoring(decompression='substitution'))`."
        )
    k = _ncolors(colors)
    _check_proper(rows, cols, colors, "acyclic")
    nnz = rows.size
    off = np.flatnonzero(rows != cols)
    # Tree nodes: (vertex, color of the other end), one per direction of each edge.
    node_keys = rows[off] * k + colors[cols[off]]
    keys, node_of_entry = np.unique(node_keys, return_inverse=True)
    nnodes = keys.size
    upper = off[rows[off] < cols[off]]
    # Position of the mirror entry (j, i) for each upper entry (i, j), to link both nodes.
    mirror_of = _mirror_positions(rows, cols)
    local = np.full(nnz, -1, dtype=np.int64)
    local[off] = node_of_entry
    a, b = local[upper], local[mirror_of[upper]]
    graph = sp.csr_array((np.ones(upper.size, dtype=np.int8), (a, b)), shape=(nnodes, nnodes))
    ntrees, tree = connected_components(graph, directed=False)
    if upper.size != nnodes - ntrees:
        raise ValueError(
            "make_decompression: `colors` is not an acyclic coloring of `pattern`: some "
            "cycle uses only two colors, so substitution cannot recover its entries. Fix: "
            "compute `colors` with `coloring(pattern, kind='symmetric', "
            "algorithm=GreedyColoring(decompression='substitution'))`."
        )
    # One depth-first search from a virtual super-root linked to the first node of each tree
    # gives a preorder of the whole forest and every node's parent.
    roots = np.unique(tree, return_index=True)[1]
    super_root = nnodes
    forest = sp.csr_array(
        (
            np.ones(2 * upper.size + roots.size, dtype=np.int8),
            (
                np.concatenate([a, b, np.full(roots.size, super_root)]),
                np.concatenate([b, a, roots]),
            ),
        ),
        shape=(nnodes + 1, nnodes + 1),
    )
    preorder, parent = depth_first_order(forest, super_root, directed=True)
    preorder = preorder[1:]  # drop the super-root
    position = np.empty(nnodes, dtype=np.int64)
    position[preorder] = np.arange(nnodes)
    parent = parent[:nnodes]
    is_root = parent == super_root
    # Subtree sizes, indexed by preorder position, solve size = 1 + sum(children sizes):
    # a unit upper-triangular system in preorder.
    child = np.flatnonzero(~is_root)
    links = sp.csr_array(
        (np.ones(child.size), (position[parent[child]], position[child])),
        shape=(nnodes, nnodes),
    )
    size = np.rint(
        spsolve_triangular(
            (identity(nnodes, np.float64) - links).tocsr(),
            np.ones(nnodes),
            lower=False,
            unit_diagonal=True,
        )
    ).astype(np.int64)
    vertex = keys // k
    other_color = keys % k
    root_color = colors[vertex[roots]][tree]
    node_sign = np.where(colors[vertex] == root_color, 1.0, -1.0)

    ndiag = nnz - off.size
    # Layout of g: the tree nodes in preorder, then a (value, -value) pair per diagonal entry.
    source = np.empty(nnodes + 2 * ndiag, dtype=np.int64)
    sign = np.empty(nnodes + 2 * ndiag)
    source[position] = vertex * k + other_color
    sign[position] = node_sign
    diagonal = np.flatnonzero(rows == cols)
    diagonal_slot = nnodes + 2 * np.arange(ndiag)
    source[diagonal_slot] = source[diagonal_slot + 1] = rows[diagonal] * k + colors[rows[diagonal]]
    sign[diagonal_slot], sign[diagonal_slot + 1] = 1.0, -1.0

    start = np.empty(nnz, dtype=np.int64)
    stop = np.empty(nnz, dtype=np.int64)
    start[diagonal], stop[diagonal] = diagonal_slot, diagonal_slot + 1
    # For each off-diagonal entry, the child node of its edge carries the value.
    node_here = local[off]
    node_there = local[mirror_of[off]]
    child_node = np.where(parent[node_here] == node_there, node_here, node_there)
    first = position[child_node]
    last = first + size[first]
    # The value is sign(child) * (prefix[last] - prefix[first]); a negative sign swaps ends.
    positive = node_sign[child_node] > 0
    start[off] = np.where(positive, first, last)
    stop[off] = np.where(positive, last, first)
    return Decompression(
        kind="symmetric",
        shape=(n, n),
        indptr=indptr,
        indices=cols,
        seeds=seed_matrix(colors, k),
        reverse_seeds=None,
        compressed_shapes=((n, k),),
        source=source,
        sign=sign,
        start=start,
        stop=stop,
    )


def _mirror_positions(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For the nonzeros of a symmetric pattern in CSR order, the position of each one's mirror.

    The entry of rank r in (column, row) order is the mirror of the entry of rank r in
    (row, column) order, which is the one at position r.
    """
    return np.lexsort((rows, cols))
