"""Backends of backends: `SecondOrder`, `AutoSparse` and `MixedMode`, and their registration.

Each is a backend object whose implementation combines the implementations of its parts:
`second_order.py` (a pair for second-order operators, bridged across two AD libraries),
`sparse.py` (sparse Jacobians and Hessians from compressed products) and `mixed_mode.py`
(pushforwards from one backend, pullbacks from another). They override `BackendImpl.kernels`
only; importing this package imports neither SciPy nor an AD library.
"""

from __future__ import annotations

from typing import Any, ClassVar

from anydiff.extend import AbstractBackend, backend_dataclass, register_backend

__all__ = ["AutoSparse", "MixedMode", "SecondOrder"]


@backend_dataclass(kw_only=False)
class SecondOrder(AbstractBackend):
    """`SecondOrder(outer, inner)`: `inner` differentiates `f`, `outer` differentiates that.

    Used by the second-order operators (`hvp`, `hessian`, `second_derivative`). A plain backend
    is its own pair.
    """

    outer: AbstractBackend
    inner: AbstractBackend
    combinator: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for name in ("outer", "inner"):
            if not isinstance(getattr(self, name), AbstractBackend):
                raise TypeError(
                    f"SecondOrder: `{name}` must be a backend object such as `ad.AutoJAX()`; "
                    f"got {type(getattr(self, name)).__name__}."
                )


@backend_dataclass(kw_only=False)
class AutoSparse(AbstractBackend):
    """`AutoSparse(dense, sparsity_detector=None, coloring_algorithm=None)`: sparse Jacobians/Hessians.

    `jacobian` and `hessian` (and their value forms) detect the sparsity pattern and color it
    once at prepare time, then compute one compressed product per color with `dense` and
    return a sparse matrix (API.md section 2). Every other operator is `dense`'s.

    Args:
        dense: the backend computing the products; `ad.MixedMode(forward, reverse)` for
            Jacobians with both dense rows and dense columns.
        sparsity_detector: `ad.TracerSparsityDetector()` by default (CasADi's own patterns
            for `ad.AutoCasADi()`).
        coloring_algorithm: `ad.GreedyColoring()` by default.

    The prep shows the pattern and its coloring (`prep.sparsity`, `prep.colors`, `prep.ncolors`).

    Example:
        >>> import numpy as np, anydiff as ad
        >>> backend = ad.AutoSparse(ad.AutoFiniteDiff())
        >>> f = lambda x: x[1:] * x[:-1]  # y_i = x_i+1 x_i: two diagonals
        >>> prep = ad.prepare_jacobian(f, backend, np.zeros(5))
        >>> prep.ncolors
        2
        >>> ad.jacobian(f, backend, np.arange(5.0), prep=prep).toarray().round(6)
        array([[1., 0., 0., 0., 0.],
               [0., 2., 1., 0., 0.],
               [0., 0., 3., 2., 0.],
               [0., 0., 0., 4., 3.]])
    """

    dense: AbstractBackend
    sparsity_detector: Any = None
    coloring_algorithm: Any = None
    combinator: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not isinstance(self.dense, AbstractBackend) or isinstance(self.dense, AutoSparse):
            got = "another AutoSparse" if isinstance(self.dense, AutoSparse) else type(self.dense).__name__
            raise TypeError(
                "AutoSparse: `dense` must be a dense backend object such as `ad.AutoJAX()`, "
                f"`ad.SecondOrder(...)` or `ad.MixedMode(...)`; got {got}."
            )
        detector = self.sparsity_detector
        methods = ("jacobian_sparsity", "hessian_sparsity")
        if detector is not None and not all(callable(getattr(detector, m, None)) for m in methods):
            raise TypeError(
                "AutoSparse: `sparsity_detector` must be a detector such as "
                "`ad.TracerSparsityDetector()`, `ad.DenseSparsityDetector(backend)` or "
                "`ad.KnownSparsity(pattern)` (an object with `jacobian_sparsity` and "
                f"`hessian_sparsity` methods); got {type(detector).__name__}."
            )
        from anydiff.sparse.coloring import GreedyColoring  # imports SciPy, which `import anydiff` does not

        if self.coloring_algorithm is not None and not isinstance(self.coloring_algorithm, GreedyColoring):
            raise TypeError(
                "AutoSparse: `coloring_algorithm` must be an `ad.GreedyColoring(...)`; got "
                f"{type(self.coloring_algorithm).__name__}."
            )


@backend_dataclass(kw_only=False)
class MixedMode(AbstractBackend):
    """`MixedMode(forward, reverse)`: pushforwards by `forward`, pullbacks by `reverse`.

    Inside `AutoSparse`, Jacobians are colored on both sides (bidirectional coloring): some
    columns come from pushforwards, some rows from pullbacks, so a Jacobian with dense rows and
    dense columns (an arrowhead) needs a few products where either side alone needs `n`. Used
    alone, it is a backend whose forward and reverse modes are those of its two parts, which
    must compute on the same kind of arrays (or be finite differences).
    """

    forward: AbstractBackend
    reverse: AbstractBackend
    combinator: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for name in ("forward", "reverse"):
            part = getattr(self, name)
            if not isinstance(part, AbstractBackend) or part.combinator:
                raise TypeError(
                    f"MixedMode: `{name}` must be a first-order backend object such as "
                    f"`ad.AutoJAX()`; got {type(part).__name__}."
                )


register_backend(SecondOrder, "anydiff.combinators.second_order:SecondOrderImpl")
register_backend(AutoSparse, "anydiff.combinators.sparse:SparseImpl")
register_backend(MixedMode, "anydiff.combinators.mixed_mode:MixedModeImpl")
