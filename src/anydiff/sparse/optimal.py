"""Distance-2 colorings with the fewest colors, by constraint programming (OR-Tools' CP-SAT).

The columns of a Jacobian that share a row need different colors (the rows that share a column,
for a row coloring). As a constraint program: one color variable per vertex, all different
within each net (`AddAllDifferent`), and the largest color minimised. Three things make small
problems quick to prove:

- the greedy coloring is the first solution (a hint) and bounds the colors from above;
- the vertices of the largest net pairwise conflict, so at least that many colors are needed
  (the search stops there), and fixing them to colors 0, 1, ... removes the permutations of
  colors that would otherwise multiply every solution;
- one search worker with a fixed seed: the same pattern gives the same coloring, unless the
  time limit stops the search.

`pip install ortools` (or `anydiff[optimal]`); imported on first use.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fewest_colors"]


def fewest_colors(
    members: tuple[np.ndarray, np.ndarray], nvertices: int, colors: np.ndarray, time_limit: float, seed: int
) -> np.ndarray:
    """A coloring of `nvertices` vertices in which the vertices of each net differ, with the fewest
    colors CP-SAT finds within `time_limit` seconds, starting from `colors` (a greedy coloring).

    `members` is `(indptr, indices)` of each net's vertices. Returns `colors` itself unless a
    coloring with fewer colors is found (then renumbered 0, 1, ...).
    """
    indptr, indices = members
    sizes = np.diff(indptr)
    lower = max(int(sizes.max(initial=0)), min(nvertices, 1))
    ncolors = int(colors.max(initial=-1)) + 1
    if ncolors <= lower:  # the greedy coloring is optimal
        return colors
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        raise ImportError(
            "OptimalColoring needs OR-Tools' CP-SAT solver, which is not installed. Fix: "
            'pip install ortools (or "anydiff[optimal]"), or use GreedyColoring.'
        ) from None

    model = cp_model.CpModel()
    color = [model.new_int_var(0, ncolors - 1, f"c{v}") for v in range(nvertices)]
    for start, stop in zip(indptr[:-1].tolist(), indptr[1:].tolist(), strict=True):
        if stop - start > 1:
            model.add_all_different([color[v] for v in indices[start:stop].tolist()])
    largest = int(np.argmax(sizes))
    clique = indices[indptr[largest] : indptr[largest + 1]].tolist()
    for c, v in enumerate(clique):
        model.add(color[v] == c)
    top = model.new_int_var(lower - 1, ncolors - 1, "top")
    model.add_max_equality(top, color)
    model.minimize(top)
    # the greedy colors, renamed so that the clique's are 0, 1, ...: a hint that satisfies the model
    rename = np.full(ncolors, -1, dtype=np.int64)
    rename[colors[clique]] = np.arange(len(clique))
    unnamed = rename < 0
    rename[unnamed] = np.arange(len(clique), ncolors)
    for v, c in enumerate(rename[colors].tolist()):
        model.add_hint(color[v], c)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or solver.value(top) >= ncolors - 1:
        return colors
    found = np.array([solver.value(c) for c in color], dtype=np.int64)
    _, renumbered = np.unique(found, return_inverse=True)  # colors a solution leaves unused
    return renumbered.astype(colors.dtype)
