"""`AutoSparse`: sparse Jacobians and Hessians from a few compressed products.

At prepare time `SparseImpl` finds the sparsity pattern (the detector), colors it (`coloring`),
builds the seeds and the decompression index arrays (`make_decompression`), and has the dense
backend prepare its batched products over those seeds: pushforwards of the column seeds,
pullbacks of the row seeds, or Hessian-vector products of the star (or acyclic) coloring's
seeds. A call is then one kernel, compiled by the dense backend as a whole (`jax.jit` traces the
products and the decompression gather together):

    k products over the seeds  ->  compressed matrix  ->  gather  ->  CSR data

and the prep turns the data into the sparse matrix of the user's array kind (`Kernels.sparse`).
Every other operator of `AutoSparse(dense)` is `dense`'s, so it can stand wherever `dense` can.

Jacobians use pushforwards (column coloring) when the dense backend has a cheap forward mode,
pullbacks (row coloring) when it has a cheap reverse mode, and the side with fewer colors when it
has both (forward on ties, reverse for a backend with `tape_pullbacks`, whose prepared pullbacks
then replace the inlined primitives: torch's tape); `MixedMode(forward, reverse)` uses both, with a
bidirectional coloring.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from anydiff.extend import (
    GRADIENT,
    HESSIAN,
    HVP,
    JACOBIAN,
    PULLBACK,
    PUSHFORWARD,
    BackendImpl,
    Constant,
    Kernels,
    Operator,
    OutputSpec,
    SparseLayout,
    array_kind,
    device,
    flat_size,
    hvp_products,
    implementation,
    namespace,
    unstack,
)
from anydiff.sparse.coloring import GreedyColoring, coloring
from anydiff.sparse.decompression import Decompression, as_pattern, make_decompression
from anydiff.sparse.detection import TracerSparsityDetector, hessian_sparsity, jacobian_sparsity

from . import AutoSparse, MixedMode

__all__ = ["SparseImpl"]

# How a Jacobian is colored: its columns, its rows, or both (`MixedMode`).
_JacobianColoring = Literal["column", "row", "bidirectional"]
# The Jacobian mode reported on the prep, by coloring.
_MODES = {"column": "forward", "row": "reverse", "bidirectional": "mixed"}


def _to_dense(name: str) -> Callable[..., Any]:
    """A method of `SparseImpl` that hands the call to the dense backend's implementation."""

    def method(self: SparseImpl, *args: Any) -> Any:
        return getattr(self.dense, name)(*args)

    method.__name__, method.__qualname__ = name, f"SparseImpl.{name}"
    method.__doc__ = f"The dense backend's `{name}`."
    return method


class SparseImpl(BackendImpl):
    """The implementation of `AutoSparse`: sparse `jacobian` and `hessian`, the rest from `dense`."""

    def __init__(self, backend: AutoSparse) -> None:
        # A combinator has no primitives of its own, which `BackendImpl.__init__` would demand.
        self.backend: AutoSparse = backend
        self.dense = dense = implementation(backend.dense)
        self.kind = dense.kind  # type: ignore[misc]
        self.accepts = dense.accepts  # type: ignore[misc]
        self.mutation = dense.mutation  # type: ignore[misc]
        # A `SecondOrder` pair has no first-order modes (it is for Hessians).
        self.forward = getattr(dense, "forward", False)
        self.reverse = getattr(dense, "reverse", False)
        self.prepares_per_call = dense.prepares_per_call  # type: ignore[misc]
        self.tape_pullbacks = dense.tape_pullbacks  # type: ignore[misc]
        self.algorithm = backend.coloring_algorithm or GreedyColoring()

    available = _to_dense("available")
    jvp = _to_dense("jvp")
    vjp = _to_dense("vjp")
    gradient_function = _to_dense("gradient_function")
    compile = _to_dense("compile")
    output_spec = _to_dense("output_spec")
    translate_error = _to_dense("translate_error")
    one_argument = _to_dense("one_argument")

    def kernels(
        self, operator: Operator, f: Any, x: Any, tangents: tuple | None, contexts: tuple, spec: OutputSpec
    ) -> Kernels:
        """Sparse `jacobian` and `hessian`; every other operator is the dense backend's."""
        if operator is JACOBIAN:
            return self.sparse_jacobian(f, x, contexts, spec)
        if operator is HESSIAN:
            return self.sparse_hessian(f, x, contexts, spec)
        return self.dense.kernels(operator, f, x, tangents, contexts, spec)

    def pattern(
        self, operator: str, f: Any, x: Any, contexts: tuple, shape: tuple[int, int]
    ) -> tuple[sp.csr_array, str]:
        """`(pattern, what found it)` for `operator` (`"jacobian"` or `"hessian"`), of shape `shape`."""
        detector = self.backend.sparsity_detector
        # CasADi reads patterns off its own expression graph: the default for `AutoCasADi()`.
        own = self.dense.sparsity_detector() if detector is None else None
        try:
            if own is not None:
                find_own = own.jacobian_sparsity if operator == "jacobian" else own.hessian_sparsity
                pattern, source = as_pattern(find_own(f, x, contexts)), repr(self.backend.dense)
            else:
                detector = TracerSparsityDetector() if detector is None else detector
                if isinstance(detector, TracerSparsityDetector):  # it traces NumPy-like arrays
                    x = array_kind(x).to_numpy(x)  # type: ignore[union-attr]
                find = jacobian_sparsity if operator == "jacobian" else hessian_sparsity
                pattern, source = find(f, x, *map(Constant, contexts), detector=detector), repr(detector)
        except Exception as exc:
            exc.add_note(
                f"anydiff: raised while finding the sparsity pattern for `{operator}` with "
                f"{self.backend!r}; pass another `sparsity_detector=` to `ad.AutoSparse` (e.g. "
                "`ad.DenseSparsityDetector(backend)` or `ad.KnownSparsity(pattern)`) if it cannot handle `f`."
            )
            raise
        if pattern.shape != shape:
            raise ValueError(
                f"{operator}: the sparsity detector {source} returned a pattern of shape "
                f"{pattern.shape}; {self.backend!r} needs {shape} "
                f"({'(y.size, x.size)' if operator == 'jacobian' else '(x.size, x.size)'})."
            )
        return pattern, source

    def sparse_jacobian(self, f: Any, x: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
        n, m = flat_size(tuple(x.shape)), flat_size(spec.shape)
        pattern, source = self.pattern("jacobian", f, x, contexts, (m, n))
        kind, colors = self.jacobian_coloring(pattern)
        decompression = make_decompression(pattern, colors, kind)
        dense = self.dense
        inline = _inlines_primitives(dense)

        def pushforwards(x: Any, seeds: Any, contexts: tuple) -> tuple[Any, Any]:
            return dense.jvp(f, x, seeds, contexts)

        def pullbacks(x: Any, seeds: Any, contexts: tuple) -> tuple[Any, Any]:
            y, pullback = dense.vjp(f, x, contexts)
            return y, pullback(seeds)

        sides: list[_Products] = []
        if kind != "row":  # pushforwards of the column seeds: the columns of `J @ seeds`
            sides.append(
                _Products(
                    decompression.seeds,
                    tuple(x.shape),
                    x.dtype,
                    x,
                    m,
                    primitive=pushforwards if inline else None,
                    prepare=lambda seeds: dense.kernels(PUSHFORWARD, f, x, seeds, contexts, spec),
                )
            )
        if kind != "column":  # pullbacks of the row seeds: the rows of `seeds.T @ J`
            sides.append(
                _Products(
                    decompression.seeds
                    if kind == "row" or decompression.reverse_seeds is None
                    else decompression.reverse_seeds,
                    spec.shape,
                    spec.dtype,
                    x,
                    n,
                    primitive=pullbacks if inline and not dense.tape_pullbacks else None,
                    prepare=lambda seeds: dense.kernels(PULLBACK, f, x, seeds, contexts, spec),
                )
            )
        read = _reader(decompression)

        # The kernels take the namespace of the `x` they see (at prepare, `x` may be a NumPy
        # array that JAX's compiled functions accept; inside them, a tracer).
        def jacobian(x: Any, *contexts: Any) -> Any:
            xp = namespace(x)
            return read(xp, [side(xp, x, contexts) for side in sides])

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            xp = namespace(x)
            y, first = sides[0].with_value(xp, x, contexts)
            stacked = [first, *(side(xp, x, contexts) for side in sides[1:])]
            if y is None:  # no products: `f` depends on no input
                y = f(x, *contexts)
            return y, read(xp, stacked)

        info = _info(sides, decompression, colors, pattern, source, mode=_MODES[kind], coloring=kind)
        return self._kernels(jacobian, value_and_jacobian, x, info, decompression)

    def jacobian_coloring(self, pattern: sp.csr_array) -> tuple[_JacobianColoring, np.ndarray]:
        """`(kind, colors)`: the coloring of the side(s) the dense backend computes cheaply."""
        if isinstance(self.backend.dense, MixedMode):
            return "bidirectional", coloring(pattern, "bidirectional", self.algorithm)
        candidates: list[tuple[_JacobianColoring, np.ndarray]] = []
        if self.forward or not self.reverse:
            candidates.append(("column", coloring(pattern, "column", self.algorithm)))
        if self.reverse:
            candidates.append(("row", coloring(pattern, "row", self.algorithm)))
        if self.tape_pullbacks:
            candidates.reverse()
        # the fewest products; `min` keeps the first on ties: forward mode, or the tape's pullbacks
        return min(candidates, key=lambda candidate: int(candidate[1].max(initial=-1)))

    def sparse_hessian(self, f: Any, x: Any, contexts: tuple, spec: OutputSpec) -> Kernels:
        n = flat_size(tuple(x.shape))
        pattern, source = self.pattern("hessian", f, x, contexts, (n, n))
        substitution = self.algorithm.decompression == "substitution"
        colors = coloring(pattern, "symmetric", self.algorithm)
        decompression = make_decompression(pattern, colors, "symmetric", substitution=substitution)
        dense = self.dense
        primitive = plain_primitive = None
        info: dict[str, Any] = {}
        if _generic_route(dense, HVP):  # the strategy of the generic `hvp` route
            strategy, hvps, gradient_and_hvps = hvp_products(dense, dense, f, x, contexts, spec)
            info["strategy"] = strategy

            def primitive(x: Any, seeds: Any, contexts: tuple) -> tuple[Any, Any]:
                return gradient_and_hvps(x, seeds, *contexts)

            def plain_primitive(x: Any, seeds: Any, contexts: tuple) -> Any:
                return hvps(x, seeds, *contexts)

        products = _Products(
            decompression.seeds,
            tuple(x.shape),
            x.dtype,
            x,
            n,
            primitive=primitive,
            plain_primitive=plain_primitive,
            prepare=lambda seeds: dense.kernels(HVP, f, x, seeds, contexts, spec),
        )
        # Without products (no second derivatives at all) the gradient needs a kernel of its own.
        gradient = dense.kernels(GRADIENT, f, x, None, contexts, spec).plain if products.k == 0 else None

        read = _reader(decompression)

        def hessian(x: Any, *contexts: Any) -> Any:
            xp = namespace(x)
            return read(xp, [products(xp, x, contexts)])

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            xp = namespace(x)
            g, stacked = products.with_value(xp, x, contexts)
            if g is None:
                g = gradient(x, *contexts)  # type: ignore[misc]
            return f(x, *contexts), g, read(xp, [stacked])

        kind = "acyclic" if substitution else "star"
        info.update(_info([products], decompression, colors, pattern, source, coloring=kind))
        return self._kernels(hessian, value_gradient_and_hessian, x, info, decompression)

    def _kernels(
        self,
        plain: Callable[..., Any],
        with_value: Callable[..., Any],
        x: Any,
        info: dict,
        decompression: Decompression,
    ) -> Kernels:
        compile = self.dense.compile
        layout = SparseLayout(decompression.indptr, decompression.indices, decompression.shape)
        return Kernels(compile(plain, x), compile(with_value, x), info, layout)


def _inlines_primitives(impl: BackendImpl) -> bool:
    """Whether `impl`'s batched `jvp` and `vjp` go into the kernel: it has them (a `SecondOrder`
    pair has none), and they do not trace and compile `f` at each call (symbolic backends)."""
    own = type(impl).jvp is not BackendImpl.jvp or type(impl).vjp is not BackendImpl.vjp
    return own and not impl.prepares_per_call


def _reader(decompression: Decompression) -> Callable[[Any, list], Any]:
    """`read(xp, stacked) -> CSR data`, from the products of each side stacked one per row.

    The gather reads the stacked products where they are (`Decompression.stacked_source`,
    computed once here): no transpose into the compressed matrix's layout in the kernel.
    """
    source = decompression.stacked_source()

    def read(xp: Any, stacked: list) -> Any:
        flats = [xp.reshape(products, (-1,)) for products in stacked]
        return decompression.read(flats[0] if len(flats) == 1 else xp.concat(flats), source, xp)

    return read


def _generic_route(impl: BackendImpl, operator: Operator) -> bool:
    """Whether `impl` prepares `operator` by the generic route on its own primitives."""
    return type(impl).kernels is BackendImpl.kernels and operator not in impl.native


class _Products:
    """The dense backend's batched products over the seeds of one side of a coloring.

    `products(xp, x, contexts)` is the products stacked one per row (`xp` the namespace of `x`),
    `(k, size)`: the compressed matrix for row products (pullbacks), its transpose for column
    products (pushforwards, Hessian-vector products); `Decompression.stacked_source` reads
    either as it is. `products.with_value(xp, x, contexts)` is `(first, matrix)`, `first` being what
    the dense backend returns with the products (`f(x)`, or the gradient with Hessian-vector
    products), or `None` when there are no seeds.

    Two routes. Inlined: the backend's batched primitive over the stacked seeds (`jvp`, `vjp`,
    or the Hessian-vector products of the generic `hvp` route) is traced into the one kernel
    that the backend then compiles with the decompression (`jax.jit`, `tf.function`, ...).
    Prepared: the backend's own prepared kernel runs over the seeds as a tuple, for backends
    without composable primitives (symbolic backends, `SecondOrder` pairs) and for
    Hessian-vector products that a backend computes its own way (torch's double backward on the
    tape, finite differences' second differences, MLX, TensorFlow).

    Args:
        seeds: the seed matrix (NumPy, one column per product).
        shape, dtype: of one seed (a tangent shaped like `x`, or a cotangent shaped like `f(x)`).
        x: the input, whose library and device the seeds take.
        size: length of one product, flattened.
        primitive: `(x, stacked seeds, contexts) -> (first, stacked products)`, for the traced
            route; `None` for the other.
        plain_primitive: the same without `first`, when that saves work.
        prepare: `seeds -> Kernels`, the dense backend's prepared product for a tuple of seeds.
    """

    def __init__(
        self,
        seeds: np.ndarray,
        shape: tuple[int, ...],
        dtype: Any,
        x: Any,
        size: int,
        *,
        primitive: Callable[[Any, Any, tuple], tuple[Any, Any]] | None,
        prepare: Callable[[tuple], Kernels],
        plain_primitive: Callable[[Any, Any, tuple], Any] | None = None,
    ) -> None:
        xp, k = namespace(x), seeds.shape[1]
        self.k, self.size, self.info = k, size, {}
        self.empty = xp.zeros((0, size), dtype=dtype, device=device(x))
        stacked = xp.asarray(np.ascontiguousarray(seeds.T).reshape(k, *shape), dtype=dtype, device=device(x))
        if k == 0:
            return
        if primitive is not None:
            self.plain = (
                (lambda x, contexts: plain_primitive(x, stacked, contexts))
                if plain_primitive is not None
                else (lambda x, contexts: primitive(x, stacked, contexts)[1])
            )
            self.value = lambda x, contexts: primitive(x, stacked, contexts)
        else:
            tangents = unstack(stacked, k)
            kernels = prepare(tangents)
            self.info = dict(kernels.info)
            self.plain = lambda x, contexts: kernels.plain(x, tangents, *contexts)
            self.value = lambda x, contexts: kernels.with_value(x, tangents, *contexts)

    def __call__(self, xp: Any, x: Any, contexts: tuple) -> Any:
        if self.k == 0:
            return self.empty
        return self.matrix(xp, self.plain(x, contexts))

    def with_value(self, xp: Any, x: Any, contexts: tuple) -> tuple[Any, Any]:
        if self.k == 0:
            return None, self.empty
        first, products = self.value(x, contexts)
        return first, self.matrix(xp, products)

    def matrix(self, xp: Any, products: Any) -> Any:
        # prepared kernels return a tuple of products, primitives a stacked array
        stacked = xp.stack(products) if isinstance(products, tuple) else products
        return xp.reshape(stacked, (self.k, self.size))


def _info(
    sides: list[_Products],
    decompression: Decompression,
    colors: np.ndarray,
    pattern: sp.csr_array,
    source: str,
    **chosen: str,
) -> dict[str, Any]:
    """What the prep shows: the dense kernels' choices, then the pattern and its coloring."""
    info: dict[str, Any] = {}
    for side in sides:
        info.update(side.info)
    colors.setflags(write=False)
    return {
        **info,
        **chosen,
        "ncolors": decompression.ncolors,
        "colors": colors,
        "sparsity": pattern,
        "sparsity_detector": source,
    }
