"""Tests of graph coloring and decompression (anydiff.sparse.coloring / .decompression).

Colorings are checked against reference color counts for structured patterns, against
independent brute-force definitions of each coloring on small random patterns, and by
decompression round trips: a random matrix with the pattern is compressed with dense NumPy
products and must come back (to 1e-12). The compiled (numba) and pure-Python kernels are
both checked against the definitions, and against each other: they must give identical
colorings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import itertools
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import anydiff as ad
from anydiff.sparse.coloring import ORDERS, GreedyColoring, coloring
from anydiff.sparse.decompression import make_decompression, seed_matrix

FAST = settings(max_examples=40, derandomize=True, deadline=None)

# The module, not the function that `anydiff.sparse` re-exports under the same name.
coloring_module = importlib.import_module("anydiff.sparse.coloring")
HAVE_NUMBA = importlib.util.find_spec("numba") is not None
KERNELS = ["python", pytest.param("numba", marks=pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed"))]


@contextlib.contextmanager
def kernel_set(name: str) -> Iterator[None]:
    """Color with the pure-Python (`"python"`) or the numba-compiled (`"numba"`) kernels."""
    saved = coloring_module._use_numba
    coloring_module._use_numba = name == "numba"
    try:
        yield
    finally:
        coloring_module._use_numba = saved


# ---------------------------------------------------------------------------------------
# Patterns


def banded(n: int, k: int) -> sp.csr_array:
    """2k + 1 diagonals (half-bandwidth k)."""
    offsets = list(range(-k, k + 1))
    diagonals = [np.ones(n - abs(d)) for d in offsets]
    return sp.csr_array(sp.diags_array(diagonals, offsets=offsets) != 0)


def stencil_5(rows: int, cols: int | None = None) -> sp.csr_array:
    """2-D 5-point Laplacian pattern on a rows × cols grid, C order."""
    cols = rows if cols is None else cols
    path = lambda size: sp.diags_array(  # noqa: E731
        [np.ones(size - 1), np.ones(size - 1)], offsets=[-1, 1], shape=(size, size)
    )
    eye = lambda size: sp.eye_array(size)  # noqa: E731
    grid = sp.kron(eye(rows), path(cols)) + sp.kron(path(rows), eye(cols)) + eye(rows * cols)
    return sp.csr_array(grid != 0)


def stencil_9(side: int) -> sp.csr_array:
    """2-D 9-point pattern (neighbours including diagonals)."""
    tri = sp.diags_array([np.ones(side - 1), np.ones(side), np.ones(side - 1)], offsets=[-1, 0, 1])
    return sp.csr_array(sp.kron(tri, tri) != 0)


def arrowhead(n: int) -> np.ndarray:
    """Dense first row and column plus the diagonal."""
    pattern = np.eye(n, dtype=bool)
    pattern[0, :] = pattern[:, 0] = True
    return pattern


def random_pattern(rng: np.random.Generator, m: int, n: int, density: float) -> np.ndarray:
    return rng.random((m, n)) < density


def random_symmetric(rng: np.random.Generator, n: int, density: float, diagonal: bool = True) -> np.ndarray:
    upper = np.triu(rng.random((n, n)) < density, 1)
    pattern = upper | upper.T
    if diagonal:
        pattern |= np.eye(n, dtype=bool)
    return pattern


def ncolors(colors: np.ndarray) -> int:
    return int(colors.max(initial=-1)) + 1


def dense(pattern) -> np.ndarray:
    return pattern.toarray() if sp.issparse(pattern) else np.asarray(pattern) != 0


# ---------------------------------------------------------------------------------------
# Independent brute-force definitions


def is_column_coloring(pattern, colors) -> bool:
    """Every nonzero's column is colored and alone with its color in its row."""
    P = dense(pattern)
    for row in P:
        used = colors[np.flatnonzero(row)]
        if (used < 0).any() or len(set(used.tolist())) != used.size:
            return False
    return True


def neighbours(P: np.ndarray) -> list[list[int]]:
    return [[j for j in np.flatnonzero(P[i]) if j != i] for i in range(P.shape[0])]


def is_star_coloring(pattern, colors) -> bool:
    """Proper, and no path on four vertices uses only two colors."""
    P = dense(pattern)
    adj = neighbours(P)
    if any(colors[i] == colors[j] for i in range(len(adj)) for j in adj[i]):
        return False
    for a in range(len(adj)):
        for b in adj[a]:
            for c in adj[b]:
                if c == a or colors[c] != colors[a]:
                    continue
                for d in adj[c]:
                    if d not in (a, b) and colors[d] == colors[b]:
                        return False
    return True


def is_acyclic_coloring(pattern, colors) -> bool:
    """Proper, and every two color classes induce a forest."""
    P = dense(pattern)
    n = P.shape[0]
    adj = neighbours(P)
    if any(colors[i] == colors[j] for i in range(n) for j in adj[i]):
        return False

    def root(parent: list[int], x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in itertools.combinations(range(ncolors(colors)), 2):
        parent = list(range(n))
        for u in range(n):
            for v in adj[u]:
                if u < v and {colors[u], colors[v]} == {a, b}:
                    ru, rv = root(parent, u), root(parent, v)
                    if ru == rv:
                        return False
                    parent[ru] = rv
    return True


def is_star_coloring_by_edges(pattern, colors) -> bool:
    """`is_star_coloring`, checked edge by edge: fast enough for many colors.

    A two-colored path x-u-v-y on four vertices exists exactly when some edge u-v has u with
    two neighbours of v's color (v and x) and v with two of u's color (u and y); x != y as
    their colors differ.
    """
    P = dense(pattern)
    adjacent = P & ~np.eye(P.shape[0], dtype=bool)
    if (colors < 0).any() or (colors[:, None] == colors[None, :])[adjacent].any():
        return False
    for u, v in zip(*np.nonzero(adjacent), strict=True):
        if (
            np.count_nonzero(colors[adjacent[u]] == colors[v]) > 1
            and np.count_nonzero(colors[adjacent[v]] == colors[u]) > 1
        ):
            return False
    return True


def is_acyclic_coloring_by_pairs(pattern, colors) -> bool:
    """`is_acyclic_coloring` with the edges grouped by their two colors: fast enough for many colors."""
    P = dense(pattern)
    adjacent = P & ~np.eye(P.shape[0], dtype=bool)
    if (colors < 0).any() or (colors[:, None] == colors[None, :])[adjacent].any():
        return False
    by_pair: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for u, v in zip(*np.nonzero(np.triu(adjacent)), strict=True):
        by_pair.setdefault((min(colors[u], colors[v]), max(colors[u], colors[v])), []).append((u, v))

    def root(parent: dict[int, int], x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for edges in by_pair.values():
        parent: dict[int, int] = {}
        for u, v in edges:
            ru, rv = root(parent, u), root(parent, v)
            if ru == rv:
                return False  # the edge closes a two-colored cycle
            parent[ru] = rv
    return True


def is_bicoloring(pattern, colors) -> bool:
    """Each nonzero is alone with its column's color in its row, or with its row's in its column."""
    P = dense(pattern)
    m, n = P.shape
    column, row = colors[:n], colors[n:]
    forward = set(column[column >= 0].tolist())
    reverse = set(row[row >= 0].tolist())
    if forward & reverse:
        return False
    for i, j in zip(*np.nonzero(P), strict=True):
        in_row = column[np.flatnonzero(P[i])]
        in_column = row[np.flatnonzero(P[:, j])]
        by_forward = column[j] >= 0 and np.count_nonzero(in_row == column[j]) == 1
        by_reverse = row[i] >= 0 and np.count_nonzero(in_column == row[i]) == 1
        if not (by_forward or by_reverse):
            return False
    return True


# ---------------------------------------------------------------------------------------
# Reference color counts


@pytest.mark.parametrize("k", [0, 1, 2, 5])
def test_banded_column_and_row_coloring_needs_exactly_2k_plus_1(k):
    pattern = banded(120, k)
    for order in ("natural", "largest_first", "smallest_last", "incidence_degree", "dsatur", "best"):
        algorithm = GreedyColoring(order)
        assert ncolors(coloring(pattern, "column", algorithm)) == 2 * k + 1, order
        assert ncolors(coloring(pattern, "row", algorithm)) == 2 * k + 1, order
    for order in ORDERS:  # a row holds 2k + 1 nonzeros: no order can do better
        assert ncolors(coloring(pattern, "column", GreedyColoring(order))) >= 2 * k + 1


def test_stencil_5_column_coloring_natural_is_scipy_greedy_and_best_is_optimal():
    group_columns = pytest.importorskip("scipy.optimize._numdiff").group_columns  # private SciPy
    pattern = stencil_5(100)  # n = 10^4
    natural = coloring(pattern, "column", GreedyColoring("natural"))
    # Greedy first-fit in natural order is one well-defined coloring: SciPy's CPR grouping.
    np.testing.assert_array_equal(natural, group_columns(pattern, order=np.arange(10_000)))
    assert ncolors(natural) == 7
    assert ncolors(coloring(pattern, "column")) <= 7
    small = stencil_5(30)
    for order in ("smallest_last", "dsatur", "best"):
        assert ncolors(coloring(small, "column", GreedyColoring(order))) == 5, order


def test_stencil_5_star_coloring_is_5_and_acyclic_is_3():
    pattern = stencil_5(30)
    assert ncolors(coloring(pattern, "symmetric")) == 5
    for order in ("dsatur", "best"):
        acyclic = GreedyColoring(order, decompression="substitution")
        assert ncolors(coloring(pattern, "symmetric", acyclic)) == 3, order
    rectangular_grid = stencil_5(17, 23)
    acyclic = coloring(rectangular_grid, "symmetric", GreedyColoring("best", decompression="substitution"))
    assert ncolors(acyclic) == 3
    assert is_acyclic_coloring(rectangular_grid, acyclic)


def test_arrowhead_needs_n_column_and_row_colors_but_2_star_colors_and_3_products():
    n = 40
    pattern = arrowhead(n)
    for order in ("largest_first", "best"):
        algorithm = GreedyColoring(order)
        assert ncolors(coloring(pattern, "column", algorithm)) == n
        assert ncolors(coloring(pattern, "row", algorithm)) == n
        assert ncolors(coloring(pattern, "symmetric", algorithm)) == 2
        acyclic = dataclasses.replace(algorithm, decompression="substitution")
        assert ncolors(coloring(pattern, "symmetric", acyclic)) == 2
        bicolors = coloring(pattern, "bidirectional", algorithm)
        assert ncolors(bicolors) == 3
        assert is_bicoloring(pattern, bicolors)


def test_rectangle_with_dense_border_bicoloring_uses_4_products():
    pattern = np.zeros((10, 20), dtype=bool)
    pattern[[0, -1], :] = pattern[:, [0, -1]] = True
    colors = coloring(pattern, "bidirectional")
    assert ncolors(colors) == 4
    assert is_bicoloring(pattern, colors)


@pytest.mark.parametrize("rho", [2, 4, 10, 20])
def test_symmetric_banded_star_and_acyclic_counts(rho):
    pattern = banded(200, rho // 2)
    for order in ("natural", "largest_first"):
        star = coloring(pattern, "symmetric", GreedyColoring(order))
        acyclic = coloring(pattern, "symmetric", GreedyColoring(order, decompression="substitution"))
        assert ncolors(star) == 2 * (rho // 2) + 1
        assert ncolors(acyclic) == rho // 2 + 1


def test_star_coloring_never_exceeds_distance2_coloring():
    # On the 9-point stencil greedy star colorings reach 11-12 colors, distance-2 only 9.
    pattern = stencil_9(20)
    for order in ("natural", "largest_first", "smallest_last"):
        algorithm = GreedyColoring(order)
        star = coloring(pattern, "symmetric", algorithm)
        assert ncolors(star) <= ncolors(coloring(pattern, "column", algorithm))
        assert is_star_coloring(stencil_9(6), coloring(stencil_9(6), "symmetric", algorithm))


# ---------------------------------------------------------------------------------------
# Validity on random patterns (brute-force checkers)

shapes = st.tuples(st.integers(1, 12), st.integers(1, 12), st.floats(0.0, 0.6))


@pytest.mark.parametrize("kernels", KERNELS)
@FAST
@given(shapes, st.integers(0, 2**16))
def test_column_row_and_bidirectional_colorings_are_valid(kernels, shape, seed):
    with kernel_set(kernels):
        check_column_row_and_bidirectional_colorings(shape, seed)


def check_column_row_and_bidirectional_colorings(shape, seed):
    m, n, density = shape
    pattern = random_pattern(np.random.default_rng(seed), m, n, density)
    for order in ORDERS:
        algorithm = GreedyColoring(order, seed=seed)
        columns = coloring(pattern, "column", algorithm)
        rows = coloring(pattern, "row", algorithm)
        assert columns.shape == (n,) and rows.shape == (m,)
        assert is_column_coloring(pattern, columns)
        assert is_column_coloring(pattern.T, rows)
        assert ncolors(columns) >= pattern.sum(axis=1).max(initial=0)
    for postprocessing in (False, True):
        algorithm = GreedyColoring("best", postprocessing=postprocessing)
        bicolors = coloring(pattern, "bidirectional", algorithm)
        assert bicolors.shape == (n + m,)
        assert is_bicoloring(pattern, bicolors)
        # The pure column and row colorings are candidates of the split.
        best_one_sided = min(ncolors(coloring(pattern, kind, GreedyColoring("best"))) for kind in ("column", "row"))
        assert ncolors(bicolors) <= best_one_sided


@pytest.mark.parametrize("kernels", KERNELS)
@FAST
@given(st.integers(1, 12), st.floats(0.0, 0.7), st.booleans(), st.integers(0, 2**16))
def test_star_and_acyclic_colorings_are_valid(kernels, n, density, diagonal, seed):
    with kernel_set(kernels):
        check_star_and_acyclic_colorings(n, density, diagonal, seed)


def check_star_and_acyclic_colorings(n, density, diagonal, seed):
    pattern = random_symmetric(np.random.default_rng(seed), n, density, diagonal)
    for order in ORDERS:
        star = coloring(pattern, "symmetric", GreedyColoring(order, seed=seed))
        acyclic = coloring(pattern, "symmetric", GreedyColoring(order, seed=seed, decompression="substitution"))
        assert is_star_coloring(pattern, star), order
        assert is_acyclic_coloring(pattern, acyclic), order
        assert ncolors(acyclic) <= ncolors(
            coloring(pattern + np.eye(n, dtype=bool), "column", GreedyColoring(order, seed=seed))
        )


@FAST
@given(st.integers(2, 9), st.floats(0.2, 0.8), st.integers(0, 2**16))
def test_fast_checkers_agree_with_the_brute_force_definitions(n, density, seed):
    rng = np.random.default_rng(seed)
    pattern = random_symmetric(rng, n, density)
    for colors in (rng.integers(0, 3, n), rng.integers(0, 5, n), np.arange(n)):
        assert is_star_coloring_by_edges(pattern, colors) == is_star_coloring(pattern, colors)
        assert is_acyclic_coloring_by_pairs(pattern, colors) == is_acyclic_coloring(pattern, colors)


def dense_rows(rng: np.random.Generator, m: int, n: int, dense: int) -> np.ndarray:
    """A sparse random pattern whose first `dense` rows are half full: more than 64 colors."""
    pattern = random_pattern(rng, m, n, 0.02)
    pattern[:dense] |= rng.random((dense, n)) < 0.5
    return pattern


def complete_with_tail(k: int, tail: int) -> np.ndarray:
    """The complete graph on k vertices, one of them also starting a path of `tail` vertices."""
    n = k + tail
    pattern = np.zeros((n, n), dtype=bool)
    pattern[:k, :k] = True
    for i in range(k - 1, n - 1):
        pattern[i, i + 1] = pattern[i + 1, i] = True
    return pattern | np.eye(n, dtype=bool)


def kernel_patterns() -> dict[str, np.ndarray]:
    """Patterns where the kernels' code paths differ: more than 64 colors, dense nets, empty lines."""
    rng = np.random.default_rng(11)
    patterns = {
        "banded": dense(banded(60, 2)),
        "stencil_5": dense(stencil_5(9, 12)),
        "stencil_9": dense(stencil_9(8)),
        "arrowhead": arrowhead(90),
        "dense_rows": dense_rows(rng, 120, 200, 3),
        "empty_lines": np.pad(random_pattern(rng, 30, 25, 0.1), ((0, 4), (3, 0))),
        "complete_with_tail": complete_with_tail(70, 6),
    }
    for i in range(4):
        patterns[f"random_{i}"] = random_pattern(rng, int(rng.integers(20, 70)), int(rng.integers(20, 70)), 0.08)
    return patterns


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("name", list(kernel_patterns()))
def test_compiled_and_pure_kernels_give_identical_valid_colorings(name):
    pattern = kernel_patterns()[name]
    square = pattern.shape[0] == pattern.shape[1]
    symmetric = pattern | pattern.T if square else None
    for order in (*ORDERS, "best"):
        for postprocessing in (False, True):
            algorithm = GreedyColoring(order, postprocessing=postprocessing, seed=5)
            for kind in ("column", "row", "bidirectional"):
                with kernel_set("python"):
                    expected = coloring(pattern, kind, algorithm)
                with kernel_set("numba"):
                    colors = coloring(pattern, kind, algorithm)
                np.testing.assert_array_equal(colors, expected, err_msg=f"{kind}, {algorithm}")
                if kind == "bidirectional":
                    assert is_bicoloring(pattern, colors)
                else:
                    assert is_column_coloring(pattern if kind == "column" else pattern.T, colors)
            if symmetric is None:
                continue
            for decompression in ("direct", "substitution"):
                algorithm = GreedyColoring(order, postprocessing=postprocessing, seed=5, decompression=decompression)
                with kernel_set("python"):
                    expected = coloring(symmetric, "symmetric", algorithm)
                with kernel_set("numba"):
                    colors = coloring(symmetric, "symmetric", algorithm)
                np.testing.assert_array_equal(colors, expected, err_msg=f"symmetric, {algorithm}")
                if decompression == "substitution":
                    assert is_acyclic_coloring_by_pairs(symmetric, colors)
                elif not postprocessing:
                    assert is_star_coloring_by_edges(symmetric, colors)


@pytest.mark.parametrize("kernels", KERNELS)
def test_colorings_with_more_than_64_colors_are_valid(kernels):
    rng = np.random.default_rng(12)
    with kernel_set(kernels):
        for order in ("natural", "largest_first", "dsatur"):
            algorithm = GreedyColoring(order)
            arrow = coloring(arrowhead(150), "column", algorithm)
            assert ncolors(arrow) == 150 and is_column_coloring(arrowhead(150), arrow)
            pattern = dense_rows(rng, 100, 300, 4)
            columns = coloring(pattern, "column", algorithm)
            assert ncolors(columns) > 64 and is_column_coloring(pattern, columns)
            clique = complete_with_tail(80, 5)
            star = coloring(clique, "symmetric", algorithm)
            acyclic = coloring(clique, "symmetric", dataclasses.replace(algorithm, decompression="substitution"))
            assert ncolors(star) == ncolors(acyclic) == 80
            assert is_star_coloring_by_edges(clique, star)
            assert is_acyclic_coloring_by_pairs(clique, acyclic)


@pytest.mark.parametrize("kernels", KERNELS)
def test_sparse_formats_give_the_colorings_of_the_dense_pattern(kernels):
    pattern = random_pattern(np.random.default_rng(13), 40, 30, 0.1)
    symmetric = random_symmetric(np.random.default_rng(14), 30, 0.1)
    unsorted = sp.csr_array(pattern)
    unsorted.indices = unsorted.indices.copy()
    for start, stop in itertools.pairwise(unsorted.indptr):
        unsorted.indices[start:stop] = unsorted.indices[start:stop][::-1]
    unsorted.has_sorted_indices = False
    with kernel_set(kernels):
        for algorithm in (GreedyColoring("natural"), GreedyColoring(), GreedyColoring("best")):
            for kind in ("column", "row"):
                expected = coloring(pattern, kind, algorithm)
                for form in (sp.csr_array(pattern), sp.csc_array(pattern), sp.csc_matrix(pattern), unsorted):
                    np.testing.assert_array_equal(coloring(form, kind, algorithm), expected)
            expected = coloring(symmetric, "symmetric", algorithm)
            for form in (sp.csr_array(symmetric), sp.csc_array(symmetric), sp.coo_array(symmetric)):
                np.testing.assert_array_equal(coloring(form, "symmetric", algorithm), expected)


def test_random_order_is_seeded():
    pattern = random_pattern(np.random.default_rng(0), 30, 30, 0.2)
    first = coloring(pattern, "column", GreedyColoring("random", seed=3))
    np.testing.assert_array_equal(first, coloring(pattern, "column", GreedyColoring("random", seed=3)))


# ---------------------------------------------------------------------------------------
# Decompression round trips


def random_values(rng: np.random.Generator, pattern) -> np.ndarray:
    return np.where(dense(pattern), rng.standard_normal(dense(pattern).shape), 0.0)


def random_symmetric_values(rng: np.random.Generator, pattern) -> np.ndarray:
    values = np.triu(random_values(rng, pattern))
    return values + np.triu(values, 1).T


def assert_same_sparse(result, expected: np.ndarray, pattern) -> None:
    assert isinstance(result, sp.csr_array)
    assert result.has_sorted_indices
    canonical = sp.csr_array(dense(pattern))
    np.testing.assert_array_equal(result.indptr, canonical.indptr)
    np.testing.assert_array_equal(result.indices, canonical.indices)
    np.testing.assert_allclose(result.toarray(), expected, rtol=1e-12, atol=1e-12)


JACOBIAN_PATTERNS = {
    "banded": banded(30, 2),
    "stencil_5": stencil_5(7),
    "arrowhead": arrowhead(15),
    "rectangle": np.pad(np.ones((2, 9), dtype=bool), ((0, 5), (0, 0))) | np.eye(7, 9, dtype=bool),
    "random": random_pattern(np.random.default_rng(1), 25, 18, 0.15),
    "empty": np.zeros((4, 3)),
}


@pytest.mark.parametrize("name", JACOBIAN_PATTERNS)
@pytest.mark.parametrize("postprocessing", [False, True])
def test_jacobian_decompression_round_trip(name, postprocessing):
    pattern = JACOBIAN_PATTERNS[name]
    J = random_values(np.random.default_rng(2), pattern)
    algorithm = GreedyColoring("best", postprocessing=postprocessing)
    for kind in ("column", "row", "bidirectional"):
        plan = make_decompression(pattern, coloring(pattern, kind, algorithm), kind)
        if kind == "column":
            compressed = J @ plan.seeds
            # The documented recipe: one gather of the flattened (C order) product.
            np.testing.assert_array_equal(compressed.reshape(-1)[plan.source], sp.csr_array(J).data)
        elif kind == "row":
            compressed = plan.seeds.T @ J
        else:
            compressed = (J @ plan.seeds, plan.reverse_seeds.T @ J)
        assert_same_sparse(plan(compressed), J, pattern)
        np.testing.assert_array_equal(plan.values(compressed, np), plan(compressed).data)
        assert_stacked_read(plan, compressed)


SYMMETRIC_PATTERNS = {
    "banded": banded(30, 3),
    "stencil_5": stencil_5(9, 11),
    "stencil_9": stencil_9(6),
    "arrowhead": arrowhead(20),
    "random": random_symmetric(np.random.default_rng(3), 40, 0.1),
    "random_zero_diagonal": random_symmetric(np.random.default_rng(4), 30, 0.15, diagonal=False),
    "empty": np.zeros((3, 3)),
}


@pytest.mark.parametrize("name", SYMMETRIC_PATTERNS)
@pytest.mark.parametrize(
    "algorithm",
    [
        GreedyColoring(),
        GreedyColoring("best", postprocessing=True),
        GreedyColoring("largest_first", decompression="substitution"),
        GreedyColoring("best", decompression="substitution"),
    ],
    ids=repr,
)
def test_hessian_decompression_round_trip(name, algorithm):
    pattern = SYMMETRIC_PATTERNS[name]
    H = random_symmetric_values(np.random.default_rng(5), pattern)
    colors = coloring(pattern, "symmetric", algorithm)
    substitution = algorithm.decompression == "substitution"
    plan = make_decompression(pattern, colors, "symmetric", substitution=substitution)
    assert plan.substitution is substitution
    assert plan.ncolors == ncolors(colors)
    assert_same_sparse(plan(H @ plan.seeds), H, pattern)
    assert_stacked_read(plan, H @ plan.seeds)


def assert_stacked_read(plan, compressed) -> None:
    """`read` at `stacked_source` from the products stacked one per row (as AD backends batch
    them: the compressed matrix transposed where its products are columns) gives `values`."""
    parts = compressed if plan.kind == "bidirectional" else (compressed,)
    stacked = [part if plan.kind == "row" or index else part.T for index, part in enumerate(parts)]
    flat = np.concatenate([np.ascontiguousarray(part).reshape(-1) for part in stacked])
    np.testing.assert_array_equal(plan.read(flat, plan.stacked_source(), np), plan.values(compressed, np))


def test_substitution_on_a_large_grid_is_accurate():
    pattern = stencil_5(100)  # n = 10^4; its two-colored trees are long staircases
    upper = sp.triu(pattern, format="csr").astype(np.float64)
    upper.data = np.random.default_rng(6).standard_normal(upper.nnz)
    H = sp.csr_array(upper + sp.triu(upper, 1).T)
    algorithm = GreedyColoring("dsatur", decompression="substitution")
    colors = coloring(pattern, "symmetric", algorithm)
    plan = make_decompression(pattern, colors, "symmetric", substitution=True)
    assert plan.ncolors == 3
    result = plan(H @ plan.seeds)
    np.testing.assert_array_equal(result.indices, pattern.indices)
    np.testing.assert_allclose(result.data, H.data, rtol=1e-12, atol=1e-12)


def test_decompression_recipe_runs_on_jax_arrays():
    jnp = pytest.importorskip("jax.numpy")
    pattern = stencil_5(5)
    H = random_symmetric_values(np.random.default_rng(8), pattern).astype(np.float32)
    for decompression in ("direct", "substitution"):
        algorithm = GreedyColoring("best", decompression=decompression)
        plan = make_decompression(
            pattern,
            coloring(pattern, "symmetric", algorithm),
            "symmetric",
            substitution=decompression == "substitution",
        )
        data = plan.values(jnp.asarray(H @ plan.seeds.astype(np.float32)))
        assert type(data).__module__.startswith("jax")
        np.testing.assert_allclose(np.asarray(data), sp.csr_array(H).data, rtol=1e-5, atol=1e-5)
    J = random_values(np.random.default_rng(9), arrowhead(6)).astype(np.float32)
    plan = make_decompression(arrowhead(6), coloring(arrowhead(6), "bidirectional"), "bidirectional")
    forward, reverse = J @ plan.seeds.astype(np.float32), plan.reverse_seeds.T.astype(np.float32) @ J
    data = plan.values((jnp.asarray(forward), jnp.asarray(reverse)))
    np.testing.assert_allclose(np.asarray(data), sp.csr_array(J).data, rtol=1e-6)


def test_postprocessing_neutralizes_unneeded_colors():
    # A star graph without diagonal: only the hub's color is read.
    pattern = arrowhead(6) & ~np.eye(6, dtype=bool)
    colors = coloring(pattern, "symmetric", GreedyColoring(postprocessing=True))
    assert ncolors(colors) == 1 and (colors == -1).sum() == 5
    H = random_symmetric_values(np.random.default_rng(7), pattern)
    plan = make_decompression(pattern, colors, "symmetric")
    assert_same_sparse(plan(H @ plan.seeds), H, pattern)
    empty_columns = np.array([[1, 0, 1], [0, 0, 1]])
    assert coloring(empty_columns, "column", GreedyColoring(postprocessing=True)).tolist() == [0, -1, 1]


def test_seed_matrix():
    seeds = seed_matrix(np.array([1, 0, -1, 1]))
    np.testing.assert_array_equal(seeds, [[0, 1], [1, 0], [0, 0], [0, 1]])
    assert seed_matrix(np.array([0]), 3).shape == (1, 3)
    assert seed_matrix(np.array([], dtype=int)).shape == (0, 0)


def test_pattern_forms_and_explicit_zeros():
    dense_pattern = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    stored_zero = sp.csr_matrix(dense_pattern)
    stored_zero.data[0] = 0.0  # a stored zero is not a structural nonzero
    before = (stored_zero.data.copy(), stored_zero.indices.copy())
    colors = coloring(stored_zero, "column", GreedyColoring("natural"))
    assert colors.tolist() == [0, 0, 0]
    np.testing.assert_array_equal(stored_zero.data, before[0])  # input untouched
    np.testing.assert_array_equal(stored_zero.indices, before[1])
    for form in (dense_pattern, dense_pattern != 0, sp.coo_array(dense_pattern), dense_pattern.tolist()):
        assert coloring(form, "column", GreedyColoring("natural")).tolist() == [0, 0, 1]


# ---------------------------------------------------------------------------------------
# GreedyColoring and errors


def test_greedy_coloring_is_a_frozen_hashable_config():
    algorithm = GreedyColoring(["natural", "dsatur"], postprocessing=True)
    assert algorithm.order == ("natural", "dsatur")
    assert hash(algorithm) == hash(GreedyColoring(("natural", "dsatur"), postprocessing=True))
    assert repr(GreedyColoring()) == "GreedyColoring()"
    assert repr(algorithm) == "GreedyColoring(order=('natural', 'dsatur'), postprocessing=True)"
    assert GreedyColoring("best").orders == ORDERS[:-1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        algorithm.seed = 1
    with pytest.raises(TypeError):
        GreedyColoring("natural", True)  # everything after `order` is keyword-only


def test_bad_order_lists_the_valid_names():
    with pytest.raises(
        ValueError,
        match=r"GreedyColoring: `order` must be one of 'natural', 'largest_first', .*'random', 'best', "
        r"or a tuple of them; received 'largest'. Fix:",
    ):
        GreedyColoring("largest")
    with pytest.raises(ValueError, match="received \\(\\)"):
        GreedyColoring(())
    with pytest.raises(ValueError, match="`decompression` must be 'direct' or 'substitution'; received 'star'"):
        GreedyColoring(decompression="star")
    with pytest.raises(TypeError, match="`seed` must be an integer; received 1.5"):
        GreedyColoring("random", seed=1.5)


def test_coloring_errors_name_the_argument_and_the_fix():
    with pytest.raises(
        ValueError,
        match="coloring: `kind` must be one of 'column', 'row', 'symmetric', 'bidirectional'; received 'columns'. Fix:",
    ):
        coloring(np.eye(2), "columns")
    with pytest.raises(
        ValueError,
        match=r"coloring: kind='symmetric' needs a square `pattern` \(a Hessian's\); received shape \(2, 3\). "
        r"Fix: use kind='column'",
    ):
        coloring(np.ones((2, 3)), "symmetric")
    with pytest.raises(
        ValueError,
        match=r"coloring: kind='symmetric' needs a structurally symmetric `pattern`; received one where "
        r"\(0, 1\) is stored but \(1, 0\) is not \(entries without mirror: 1\). "
        r"Fix: symmetrize it with `pattern \+ pattern.T`",
    ):
        coloring(np.array([[1, 1], [0, 1]]), "symmetric")
    with pytest.raises(ValueError, match=r"coloring: `pattern` must be 2-D; received an array of shape \(3,\)"):
        coloring(np.ones(3))
    with pytest.raises(TypeError, match="coloring: `pattern` must have a boolean or numeric dtype; received dtype <U1"):
        coloring(np.array([["a"]]))
    with pytest.raises(TypeError, match="coloring: `algorithm` must be a GreedyColoring; received str"):
        coloring(np.eye(2), "column", "natural")
    with pytest.raises(ValueError, match="kind='bidirectional' supports only direct decompression"):
        coloring(np.eye(2), "bidirectional", GreedyColoring(decompression="substitution"))


def test_decompression_errors():
    pattern = np.array([[1, 1, 0], [0, 1, 1]])
    with pytest.raises(ValueError, match="columns 0 and 1 share row 0 and both have color 0"):
        make_decompression(pattern, np.array([0, 0, 1]), "column")
    with pytest.raises(
        ValueError, match="must be a 1-D integer array of length 2; received int64 array of shape \\(3,\\)"
    ):
        make_decompression(pattern, np.array([0, 1, 2]), "row")
    with pytest.raises(ValueError, match="`substitution=True` needs kind='symmetric'"):
        make_decompression(pattern, np.array([0, 1, 0]), "column", substitution=True)
    path = banded(4, 1)
    with pytest.raises(
        ValueError,
        match=r"not a star coloring of `pattern`: the entry \(1, 2\) lies on a path of four vertices "
        r"with only two colors",
    ):
        make_decompression(path, np.array([0, 1, 0, 1]), "symmetric")
    cycle = np.eye(4, dtype=bool) | np.roll(np.eye(4, dtype=bool), 1, axis=1)
    cycle |= cycle.T
    with pytest.raises(ValueError, match="not an acyclic coloring of `pattern`: some cycle uses only two colors"):
        make_decompression(cycle, np.array([0, 1, 0, 1]), "symmetric", substitution=True)
    plan = make_decompression(pattern, np.array([0, 1, 0]), "column")
    with pytest.raises(
        ValueError,
        match=r"decompress: the compressed product must have shape \(2, 2\) for this column coloring; "
        r"received shape \(2, 3\)",
    ):
        plan(np.ones((2, 3)))


# ---------------------------------------------------------------------------------------
# OptimalColoring (OR-Tools' CP-SAT)


def crown_pattern() -> np.ndarray:
    """Rows joining column pairs (a_i, b_j), i != j, columns a1 b1 a2 b2 a3 b3: a bipartite
    conflict graph (2 colors) on which natural-order greedy needs 3."""
    a, b = [0, 2, 4], [1, 3, 5]
    pairs = [(a[i], b[j]) for i in range(3) for j in range(3) if i != j]
    P = np.zeros((len(pairs), 6), dtype=bool)
    for row, pair in enumerate(pairs):
        P[row, list(pair)] = True
    return P


def test_optimal_coloring_finds_fewer_colors_than_greedy():
    pytest.importorskip("ortools")
    crown = crown_pattern()
    assert ncolors(coloring(crown, "column", GreedyColoring("natural"))) == 3
    for kind, pattern in (("column", crown), ("row", crown.T)):
        colors = coloring(pattern, kind, ad.OptimalColoring("natural"))
        assert ncolors(colors) == 2
        assert is_column_coloring(pattern if kind == "column" else pattern.T, colors)
    # the 5-point stencil: 7 colors greedy (largest first), 5 proven (a row holds 5 columns)
    stencil = stencil_5(12)
    assert ncolors(coloring(stencil, "column")) == 7
    colors = coloring(stencil, "column", ad.OptimalColoring(time_limit=30))
    assert ncolors(colors) == 5 and is_column_coloring(stencil, colors)
    # a random pattern: never more colors than the greedy start, and a valid coloring
    pattern = random_pattern(np.random.default_rng(3), 60, 40, 0.08)
    colors = coloring(pattern, "column", ad.OptimalColoring(time_limit=5))
    assert is_column_coloring(pattern, colors)
    assert ncolors(colors) <= ncolors(coloring(pattern, "column"))


def test_optimal_coloring_with_postprocessing_and_in_autosparse():
    pytest.importorskip("ortools")
    crown = np.hstack([crown_pattern(), np.zeros((6, 1), dtype=bool)])  # an empty last column
    colors = coloring(crown, "column", ad.OptimalColoring("natural", postprocessing=True))
    assert colors[-1] == -1 and ncolors(colors) == 2 and is_column_coloring(crown, colors)

    def f(x):  # its Jacobian's pattern is the crown's
        return x[[0, 0, 2, 2, 4, 4]] * x[[3, 5, 1, 5, 1, 3]]

    x = np.linspace(0.5, 1.5, 6)
    backend = ad.AutoSparse(ad.AutoFiniteDiff(), coloring_algorithm=ad.OptimalColoring("natural"))
    prep = ad.prepare_jacobian(f, backend, x)
    assert prep.ncolors == 2
    want = np.zeros((6, 6))  # row i: x[j] x[k]
    for i, (j, k) in enumerate(zip([0, 0, 2, 2, 4, 4], [3, 5, 1, 5, 1, 3], strict=True)):
        want[i, j], want[i, k] = x[k], x[j]
    np.testing.assert_allclose(ad.jacobian(f, backend, x, prep=prep).toarray(), want, rtol=1e-6)


def test_optimal_coloring_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"`time_limit` must be a positive number of seconds; received 0"):
        ad.OptimalColoring(time_limit=0)
    with pytest.raises(ValueError, match=r"`time_limit` must be a positive number of seconds; received '5'"):
        ad.OptimalColoring(time_limit="5")
    with pytest.raises(ValueError, match=r"OptimalColoring colors the columns or rows.*kind='symmetric'"):
        coloring(np.eye(3), "symmetric", ad.OptimalColoring())
    for name in ("ortools", "ortools.sat.python"):  # as if not installed
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"needs OR-Tools' CP-SAT solver.*pip install ortools"):
        coloring(crown_pattern(), "column", ad.OptimalColoring("natural"))
    # a greedy coloring at the lower bound needs no solver
    assert ncolors(coloring(np.eye(3), "column", ad.OptimalColoring())) == 1
