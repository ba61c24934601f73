"""Black-box simulations: functions no AD library can trace, to differentiate by finite differences.

They live in an importable module so that process pools and Dask workers can unpickle them by
reference (a function defined in `__main__` or a test file is not importable in a worker).
"""

from __future__ import annotations

import numpy as np

__all__ = ["heat_rod", "sleepy_square"]


def heat_rod(conductivity: np.ndarray, steps: int = 2_000, cells: int = 64) -> np.ndarray:
    """`heat_rod(conductivity, steps=2000, cells=64) -> temperatures`: an explicit heat-equation solve.

    A rod of `cells` cells, initially hot in the middle, with one conductivity parameter per
    segment (the rod is split into `conductivity.size` equal segments), integrated for `steps`
    explicit Euler steps in a Python loop over NumPy, as a legacy code would be. Returns the
    temperature at the segments' midpoints. Its cost grows linearly with `steps`, which makes it
    a stand-in for an expensive simulation (about 50 ms at 10 000 steps here).

    Example:
        >>> heat_rod(np.ones(4), steps=10).shape
        (4,)
    """
    k = np.repeat(np.asarray(conductivity, dtype=float), -(-cells // conductivity.size))[:cells]
    u = np.exp(-(((np.arange(cells) + 0.5) / cells - 0.5) ** 2) * 50.0)
    dt = 0.2 / (cells**2 * max(float(np.max(np.abs(k))), 1e-12))
    for _ in range(steps):
        flux = k[1:] * np.diff(u) * cells**2
        u = u + dt * (np.concatenate((flux, [0.0])) - np.concatenate(([0.0], flux)))
    segment = -(-cells // conductivity.size)
    return u[segment // 2 :: segment][: conductivity.size]


def sleepy_square(x: np.ndarray, fail_above: float = np.inf) -> np.ndarray:
    """`sleepy_square(x, fail_above=inf) -> x**2`, raising `ValueError` when any |x| > fail_above.

    Used to test how failures of one evaluation among many are reported.

    Example:
        >>> sleepy_square(np.array([1.0, 2.0]))
        array([1., 4.])
    """
    if np.max(np.abs(x)) > fail_above:
        raise ValueError(f"simulation diverged at x = {x}")
    return x**2
