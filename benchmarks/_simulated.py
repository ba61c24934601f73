"""A simulation that waits instead of computing, for `parallel_fd.py`'s simulated larger cluster.

In a module of its own so that Dask workers can unpickle it by reference (they receive the
benchmark's `sys.path`).
"""

from __future__ import annotations

import time

import numpy as np


def waiting_simulation(x: np.ndarray, seconds: float) -> np.ndarray:
    """`x ** 2` after `seconds` of waiting without using the CPU, as if on a core of its own."""
    time.sleep(seconds)
    return x**2
