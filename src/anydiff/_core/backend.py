"""Backend objects: immutable, hashable, keyword-only configuration (API.md section 1).

A backend object says *which* library differentiates and how; it holds no state and imports
nothing. The code that does the work lives in `anydiff._backends.<library>` and is found through
the registry in `anydiff._core.backend_impl`.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Executor
from typing import Any, ClassVar, Literal

__all__ = [
    "AbstractBackend",
    "AutoAutograd",
    "AutoCasADi",
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoMLX",
    "AutoPyTensor",
    "AutoSparse",
    "AutoSymPy",
    "AutoTensorFlow",
    "AutoTinygrad",
    "AutoTorch",
    "MixedMode",
    "Mode",
    "SecondOrder",
]

Mode = Literal["forward", "reverse"]
_MODES = (None, "forward", "reverse")


class AbstractBackend:
    """Base class of every backend object.

    Subclasses are frozen, slotted dataclasses named `Auto<Library>`; `repr` shows only the
    fields that differ from their defaults.
    """

    __slots__ = ()
    #: the `pip install anydiff[<extra>]` that provides the backend's library
    extra: ClassVar[str | None] = None
    #: whether the backend combines other backends (`SecondOrder`, `AutoSparse`, `MixedMode`)
    #: rather than differentiating with a library of its own
    combinator: ClassVar[bool] = False

    def __repr__(self) -> str:
        shown = []
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if field.default is dataclasses.MISSING or value != field.default:
                shown.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _check_mode(backend: AbstractBackend, mode: object) -> None:
    if mode not in _MODES:
        raise ValueError(
            f"{type(backend).__name__}: `mode` must be None (choose per operator), 'forward' or "
            f"'reverse'; got {mode!r}."
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoJAX(AbstractBackend):
    """`AutoJAX(mode=None, jit=True)`: differentiate with JAX.

    Args:
        mode: `None` chooses per operator (forward mode for Jacobians with fewer inputs than
            outputs, reverse otherwise); `"forward"` or `"reverse"` forces one.
        jit: compile the derivative with `jax.jit` at prepare time.

    float64 inputs stay float64: anydiff enables x64 around its own calls only, never globally.
    """

    mode: Mode | None = None
    jit: bool = True
    extra: ClassVar[str] = "jax"

    def __post_init__(self) -> None:
        _check_mode(self, self.mode)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTorch(AbstractBackend):
    """`AutoTorch(mode=None, compile=False)`: differentiate with PyTorch.

    Args:
        mode: `None` chooses per operator, `"forward"` or `"reverse"` forces one.
        compile: wrap `f` in `torch.compile` at prepare time.

    Each operator takes the fastest native route measured on CPU: the autograd tape
    (`torch.autograd.grad`) for gradients, pullbacks and HVPs, `torch.func` transforms for
    batched pushforwards and Jacobians.
    """

    mode: Mode | None = None
    compile: bool = False
    extra: ClassVar[str] = "torch"

    def __post_init__(self) -> None:
        _check_mode(self, self.mode)


_FD_METHODS = ("forward", "central", "complex")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoFiniteDiff(AbstractBackend):
    """`AutoFiniteDiff(method="central", step=None, executor=None)`: finite differences.

    Needs no AD library and runs `f` on the array kind it is given (NumPy, JAX, torch, ...).

    Args:
        method: `"forward"` (error O(h)), `"central"` (O(h²), twice the evaluations) or
            `"complex"` (complex step: exact to rounding, needs `f` to accept complex input).
        step: relative step; by default the one that balances truncation and rounding error for
            the input's dtype (eps^(1/2) forward, eps^(1/3) central, 1e-20 complex step).
            Second-order operators take second differences of `f`, whose balanced steps are
            eps^(1/3) forward and eps^(1/4) central; the complex method differences its
            complex-step derivatives along real central steps of eps^(1/3).
        executor: any `concurrent.futures.Executor`; the perturbed points of a Jacobian,
            gradient, batched pushforward, Hessian or HVP are then evaluated through it, in parallel.
    """

    method: Literal["forward", "central", "complex"] = "central"
    step: float | None = None
    executor: Executor | None = None

    def __post_init__(self) -> None:
        if self.method not in _FD_METHODS:
            raise ValueError(f"AutoFiniteDiff: `method` must be one of {_FD_METHODS}; got {self.method!r}.")
        if self.step is not None and not (isinstance(self.step, (int, float)) and self.step > 0):
            raise ValueError(f"AutoFiniteDiff: `step` must be a positive number; got {self.step!r}.")
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise TypeError(
                "AutoFiniteDiff: `executor` must be a `concurrent.futures.Executor` (e.g. a "
                f"ProcessPoolExecutor or a dask Client's executor); got {type(self.executor).__name__}."
            )


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
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


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTensorFlow(AbstractBackend):
    """`AutoTensorFlow(mode=None, function=True)`: differentiate with TensorFlow.

    Args:
        mode: `None` chooses per operator, `"forward"` (`tf.autodiff.ForwardAccumulator`) or
            `"reverse"` (`tf.GradientTape`) forces one.
        function: run every derivative as a TensorFlow graph (`tf.function`), traced on its
            first call for that call's input signature and then called through its concrete
            function; `False` runs eagerly (slower, but `f` may use Python branches on values).

    `ad.namespace(tensor)` gives `f` an array-API namespace over TensorFlow. Python numbers
    among the contexts are constants of the graph: a new value traces the graph again.
    """

    mode: Mode | None = None
    function: bool = True
    extra: ClassVar[str] = "tensorflow"

    def __post_init__(self) -> None:
        _check_mode(self, self.mode)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoAutograd(AbstractBackend):
    """`AutoAutograd()`: differentiate with HIPS autograd (`make_vjp`; `make_jvp` for forward mode).

    autograd computes on NumPy arrays; `ad.namespace(box)` gives `f` an array-API namespace over
    `autograd.numpy` in which every function has a derivative.
    """

    extra: ClassVar[str] = "autograd"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoMLX(AbstractBackend):
    """`AutoMLX(mode=None, compile=True)`: differentiate with MLX (`mx.jvp`, `mx.vjp`, `mx.vmap`).

    Args:
        mode: `None` chooses per operator, `"forward"` (`mx.jvp`) or `"reverse"` (`mx.vjp`)
            forces one. Jacobians and Hessians, which MLX lacks, are batched (`mx.vmap`)
            pushforwards or pullbacks.
        compile: compile every derivative with `mx.compile` at prepare time; `False` runs
            eagerly (slower, but `f` may branch on array values). Python numbers among the
            contexts are constants of the compiled function: a new value compiles it again.

    Precision on the CPU: float64 stays float64, but MLX computes `exp`, `sin`, `cos`, `erf` and
    `erfinv` of float64 arrays in float32 arithmetic (relative error ~1e-7, and `exp` overflows
    above 88.7); derivatives through them are as accurate. On Linux, install with
    `pip install 'anydiff[mlx]'` (MLX's CPU build, `mlx[cpu]`).
    """

    mode: Mode | None = None
    compile: bool = True
    extra: ClassVar[str] = "mlx"

    def __post_init__(self) -> None:
        _check_mode(self, self.mode)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoTinygrad(AbstractBackend):
    """`AutoTinygrad()`: differentiate with tinygrad (`Tensor.gradient`, reverse mode).

    Derivatives run under `TinyJit` from their first call (eagerly when a context is a Python
    value, which the jit would bake in). Pushforwards cost two reverse passes. tinygrad's CPU
    device needs a C compiler at run time (`clang`; `apt-get install clang` on Debian):
    without one, `ad.check_available(ad.AutoTinygrad())` is False.
    """

    extra: ClassVar[str] = "tinygrad"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoSymPy(AbstractBackend):
    """`AutoSymPy()`: trace `f` on SymPy symbols, differentiate symbolically, `lambdify` at prepare."""

    extra: ClassVar[str] = "sympy"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoCasADi(AbstractBackend):
    """`AutoCasADi()`: trace `f` onto CasADi expressions, compile `casadi.Function`s at prepare."""

    extra: ClassVar[str] = "casadi"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoPyTensor(AbstractBackend):
    """`AutoPyTensor()`: trace `f` onto PyTensor variables, compile derivative graphs at prepare."""

    extra: ClassVar[str] = "pytensor"


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
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
        from ..sparse.coloring import GreedyColoring  # imports SciPy, which `import anydiff` does not

        if self.coloring_algorithm is not None and not isinstance(self.coloring_algorithm, GreedyColoring):
            raise TypeError(
                "AutoSparse: `coloring_algorithm` must be an `ad.GreedyColoring(...)`; got "
                f"{type(self.coloring_algorithm).__name__}."
            )


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
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
