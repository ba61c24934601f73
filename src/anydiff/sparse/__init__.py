"""Sparse Jacobians and Hessians: sparsity detection, coloring, compressed differentiation.

- `detection.py`, `tracer.py`: `jacobian_sparsity`, `hessian_sparsity` and the detectors (the
  jaxpr detector, which needs JAX, is JAX's: `anydiff/_libraries/jax/sparsity.py`).
- `coloring.py`: `GreedyColoring`, `OptimalColoring` and `coloring`; `optimal.py`: the
  constraint program behind `OptimalColoring` (OR-Tools, optional).
- `decompression.py`: the seeds, and the index arrays that recover a matrix from its products.
(The implementations of `ad.AutoSparse` and `ad.MixedMode` are in `anydiff/combinators/`.)

`anydiff` re-exports the public names on first use (they import SciPy).
"""

from .coloring import GreedyColoring as GreedyColoring
from .coloring import OptimalColoring as OptimalColoring
from .coloring import coloring as coloring
from .detection import DenseSparsityDetector as DenseSparsityDetector
from .detection import KnownSparsity as KnownSparsity
from .detection import TracerSparsityDetector as TracerSparsityDetector
from .detection import hessian_sparsity as hessian_sparsity
from .detection import jacobian_sparsity as jacobian_sparsity

__all__ = [
    "DenseSparsityDetector",
    "GreedyColoring",
    "KnownSparsity",
    "OptimalColoring",
    "TracerSparsityDetector",
    "coloring",
    "hessian_sparsity",
    "jacobian_sparsity",
]
