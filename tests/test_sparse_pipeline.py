"""`ad.AutoSparse` and `ad.MixedMode`: sparse Jacobians and Hessians on every installed backend.

The sparse scenarios (banded, block, arrowhead, 2-D stencil) are checked against their analytic
dense derivatives, prepared and reused at a second point, on finite differences, JAX and torch
with every sparse structure, and on the other installed backends with a few. Then: the result
types per array kind, the reference color counts, the choice of side, finite differences through
an executor (one evaluation per color and sign), delegation of the other operators, and errors.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import anydiff as ad
from anydiff.testing import sparse_scenarios, test_differentiation, with_constant, with_kind, with_output_buffer
from anydiff.testing.scenarios import Arrowhead, ArrowheadEnergy, Banded, BandedEnergy, Stencil, StencilEnergy

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

FD, JAX, TORCH = ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch()
BEST = ad.GreedyColoring("best")
ACYCLIC = ad.GreedyColoring("best", decompression="substitution")
RNG = np.random.default_rng(0)


def passes(backend: ad.AbstractBackend, scenarios: list) -> None:
    """Every scenario works: values, kinds, shapes, dtypes, prep reuse, inputs untouched."""
    outcomes = test_differentiation(backend, scenarios, allow_unsupported=False)
    assert {o.status for o in outcomes} == {"works"}


def dense(matrix: object) -> np.ndarray:
    if sp.issparse(matrix):
        return matrix.toarray()
    if isinstance(matrix, torch.Tensor):
        return matrix.to_dense().numpy()
    with jax.enable_x64(True):  # densifying a float64 BCOO outside x64 would truncate it
        return np.asarray(matrix.todense())


# -- the sparse scenarios ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", [FD, JAX, TORCH], ids=repr)
def test_sparse_scenarios_on_numpy_inputs(backend: ad.AbstractBackend) -> None:
    passes(ad.AutoSparse(backend), sparse_scenarios())


@pytest.mark.parametrize(("backend", "kind"), [(JAX, "jax"), (TORCH, "torch"), (FD, "torch")], ids=repr)
def test_sparse_scenarios_on_the_backends_own_arrays(backend: ad.AbstractBackend, kind: str) -> None:
    # The harness densifies JAX's BCOO results, which truncates float64 outside x64.
    with jax.enable_x64(True):
        passes(ad.AutoSparse(backend), [with_kind(s, kind) for s in sparse_scenarios()])


def test_contexts_and_float32() -> None:
    from anydiff.testing import with_dtype

    scenarios = sparse_scenarios(9)
    passes(ad.AutoSparse(TORCH), [with_constant(s) for s in scenarios])
    passes(ad.AutoSparse(FD), [with_dtype(s, "float32") for s in scenarios])


def test_acyclic_coloring_recovers_hessians_by_substitution() -> None:
    hessians = [s for s in sparse_scenarios(16) if s.operator == "hessian"]
    for backend in (FD, JAX, TORCH):
        passes(ad.AutoSparse(backend, coloring_algorithm=ACYCLIC), hessians)


def test_mixed_mode_and_second_order_pairs() -> None:
    jacobians = [s for s in sparse_scenarios() if s.operator == "jacobian"]
    passes(ad.AutoSparse(ad.MixedMode(JAX, JAX)), jacobians)
    passes(ad.AutoSparse(ad.MixedMode(FD, TORCH)), jacobians)
    passes(ad.MixedMode(FD, TORCH), jacobians[:1])  # alone: a dense backend with both modes
    hessians = [s for s in sparse_scenarios(9) if s.operator == "hessian"]
    passes(ad.AutoSparse(ad.SecondOrder(FD, TORCH)), hessians)


def _installed(library: str) -> bool:
    return importlib.util.find_spec(library) is not None


# The quick ones. AutoSparse of AutoTensorFlow, AutoTinygrad and AutoPyTensor passes the same
# scenarios, but their imports and compilations take 10-30 s each here: see the report of the
# sparse issue, and `anydiff compare` with `AutoSparse` backends.
OTHERS = [
    pytest.param(
        backend, id=library, marks=pytest.mark.skipif(not _installed(library), reason=f"{library} is not installed")
    )
    for backend, library in [
        (ad.AutoAutograd(), "autograd"),
        (ad.AutoSymPy(), "sympy"),
        (ad.AutoCasADi(), "casadi"),
        (ad.AutoMLX(), "mlx"),
    ]
]


@pytest.mark.parametrize("backend", OTHERS)
def test_other_backends(backend: ad.AbstractBackend) -> None:
    if not ad.check_available(backend):
        pytest.skip(f"{backend!r} cannot run here")
    # small sizes and two structures: these backends trace and compile at every prepare
    scenarios = sparse_scenarios(6)
    by_label = {s.label: s for s in scenarios}
    passes(ad.AutoSparse(backend), [by_label["jacobian-arrowhead"], by_label["hessian-stencil"]])


def test_casadi_finds_its_own_patterns() -> None:
    pytest.importorskip("casadi")
    x = RNG.random(8)
    prep = ad.prepare_jacobian(Banded(), ad.AutoSparse(ad.AutoCasADi()), x)
    assert prep.sparsity_detector == "AutoCasADi()"
    assert prep.sparsity.nnz == 3 * 8 - 2


# -- results -----------------------------------------------------------------------------------


def test_result_types_keep_the_input_kind_and_float64() -> None:
    x = RNG.random((3, 4))
    expected = Stencil().jacobian(x)  # (12, 12), C order of the flattened grid
    with jax.enable_x64(True):
        inputs = {"numpy": x, "jax": jax.numpy.asarray(x), "torch": torch.asarray(x)}
    pairs = [
        (JAX, "numpy"),
        (JAX, "jax"),
        (JAX, "torch"),
        (TORCH, "numpy"),
        (TORCH, "torch"),
        (FD, "jax"),
        (FD, "torch"),
    ]
    for backend, kind in pairs:
        xk = inputs[kind]
        J = ad.jacobian(Stencil(), ad.AutoSparse(backend), xk)
        if kind == "numpy":
            assert isinstance(J, sp.csr_array) and J.dtype == np.float64
        elif kind == "jax":
            assert type(J).__name__ == "BCOO" and J.data.dtype == np.float64
        else:
            assert J.layout is torch.sparse_csr and J.dtype is torch.float64
        assert tuple(J.shape) == (12, 12)
        np.testing.assert_allclose(dense(J), expected, rtol=1e-6, atol=1e-8)
    y, H = ad.value_and_jacobian(Stencil(), ad.AutoSparse(JAX), np.float32(x))
    assert y.dtype == np.float32 and H.dtype == np.float32
    y, g, H = ad.value_gradient_and_hessian(StencilEnergy(), ad.AutoSparse(TORCH), torch.asarray(x))
    assert isinstance(g, torch.Tensor) and H.layout is torch.sparse_csr
    np.testing.assert_allclose(dense(H), StencilEnergy().hessian(x), rtol=1e-10)


def test_results_do_not_share_index_arrays() -> None:
    x = RNG.random(10)
    prep = ad.prepare_jacobian(Banded(), ad.AutoSparse(FD), x)
    first = ad.jacobian(Banded(), ad.AutoSparse(FD), x, prep=prep)
    first.indices[:] = 0  # a caller editing one result
    second = ad.jacobian(Banded(), ad.AutoSparse(FD), x, prep=prep)
    np.testing.assert_allclose(second.toarray(), Banded().jacobian(x), rtol=1e-6, atol=1e-9)


def test_prep_exposes_sparsity_colors_and_ncolors() -> None:
    x = RNG.random(12)
    prep = ad.prepare_hessian(BandedEnergy(), ad.AutoSparse(JAX), x)
    assert isinstance(prep.sparsity, sp.csr_array) and prep.sparsity.dtype == bool
    assert (prep.sparsity.toarray() == (BandedEnergy().hessian(x) != 0)).all()
    assert prep.colors.shape == (12,) and prep.ncolors == int(prep.colors.max()) + 1 == 3
    assert prep.coloring == "star" and prep.strategy == "forward-over-reverse"
    assert "ncolors=3" in repr(prep)
    # reused at another point, and refused for another shape
    other = RNG.random(12)
    np.testing.assert_allclose(
        dense(ad.hessian(BandedEnergy(), ad.AutoSparse(JAX), other, prep=prep)),
        BandedEnergy().hessian(other),
        rtol=1e-10,
    )
    with pytest.raises(ad.PreparationMismatchError, match="shape"):
        ad.hessian(BandedEnergy(), ad.AutoSparse(JAX), RNG.random(13), prep=prep)


# -- colors ------------------------------------------------------------------------------------


def banded(k: int):  # noqa: ANN201
    """`y_i = Σ_{|d| <= k} (d + k + 1) x_{i+d}²`: a Jacobian with 2k + 1 diagonals."""

    def f(x):  # noqa: ANN001, ANN202
        xp = ad.namespace(x)
        n = x.shape[0]
        zeros = xp.zeros((k,), dtype=x.dtype)
        padded = xp.concat([zeros, x, zeros])
        return sum((d + 1.0) * padded[d : d + n] ** 2 for d in range(2 * k + 1))

    return f


def symmetric_banded(half: int):  # noqa: ANN201
    """`Σ_{d <= half} Σ (x_{i+d} - x_i)⁴ + Σ cos(x)`: a Hessian with ρ = 2·half off-diagonal bands."""

    def f(x):  # noqa: ANN001, ANN202
        xp = ad.namespace(x)
        return sum(xp.sum((x[d:] - x[:-d]) ** 4) for d in range(1, half + 1)) + xp.sum(xp.cos(x))

    return f


@pytest.mark.parametrize("k", [1, 2, 3])
def test_banded_jacobians_need_2k_plus_1_colors(k: int) -> None:
    for backend in (FD, JAX):
        assert ad.prepare_jacobian(banded(k), ad.AutoSparse(backend), RNG.random(30)).ncolors == 2 * k + 1


@pytest.mark.parametrize("half", [1, 2, 3])
def test_symmetric_banded_hessians_star_and_acyclic(half: int) -> None:
    x = RNG.random(30)
    assert ad.prepare_hessian(symmetric_banded(half), ad.AutoSparse(TORCH), x).ncolors == 2 * half + 1
    acyclic = ad.AutoSparse(TORCH, coloring_algorithm=ad.GreedyColoring(decompression="substitution"))
    prep = ad.prepare_hessian(symmetric_banded(half), acyclic, x)
    assert prep.ncolors == half + 1 and prep.coloring == "acyclic"


def test_stencil_colors() -> None:
    x = RNG.random((7, 7))
    natural = ad.AutoSparse(FD, coloring_algorithm=ad.GreedyColoring("natural"))
    assert ad.prepare_jacobian(Stencil(), natural, x).ncolors == 7
    assert ad.prepare_jacobian(Stencil(), ad.AutoSparse(FD, coloring_algorithm=BEST), x).ncolors == 5
    assert ad.prepare_hessian(StencilEnergy(), ad.AutoSparse(FD, coloring_algorithm=BEST), x).ncolors == 5
    assert ad.prepare_hessian(StencilEnergy(), ad.AutoSparse(FD, coloring_algorithm=ACYCLIC), x).ncolors == 3


def test_arrowhead_colors_and_bicoloring() -> None:
    x = RNG.random(20)
    assert ad.prepare_jacobian(Arrowhead(), ad.AutoSparse(JAX), x).ncolors == 20
    prep = ad.prepare_jacobian(Arrowhead(), ad.AutoSparse(ad.MixedMode(JAX, JAX)), x)
    assert prep.ncolors == 3 and prep.mode == "mixed" and prep.colors.shape == (40,)
    np.testing.assert_allclose(
        dense(ad.jacobian(Arrowhead(), ad.AutoSparse(ad.MixedMode(JAX, JAX)), x, prep=prep)),
        Arrowhead().jacobian(x),
        rtol=1e-12,
    )
    assert ad.prepare_hessian(ArrowheadEnergy(), ad.AutoSparse(JAX), x).ncolors == 2


def dense_head(x):  # noqa: ANN001, ANN201
    """`[Σ x², x_1 x_0, ..., x_{n-1} x_{n-2}]`: a dense first row, sparse columns."""
    xp = ad.namespace(x)
    return xp.concat([xp.reshape(xp.sum(x**2), (1,)), x[1:] * x[:-1]])


def test_the_side_with_fewer_colors_is_chosen() -> None:
    x = RNG.random(15)
    both = ad.prepare_jacobian(dense_head, ad.AutoSparse(JAX), x)
    assert both.mode == "reverse" and both.ncolors == 3  # rows: the dense one and two others
    forward_only = ad.prepare_jacobian(dense_head, ad.AutoSparse(ad.AutoJAX(mode="forward")), x)
    assert forward_only.mode == "forward" and forward_only.ncolors == 15
    np.testing.assert_allclose(
        dense(ad.jacobian(dense_head, ad.AutoSparse(JAX), x, prep=both)),
        dense(ad.jacobian(dense_head, ad.AutoSparse(FD), x)),
        rtol=1e-8,
    )


# `torch.compile` (AutoTorch(compile=True)) imports a module that warns on import (torch 2.13)
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_takes_ties_to_the_tapes_batched_pullbacks() -> None:
    # The stencil's rows and columns need as many colors: JAX pushes forward, torch pulls back
    # on its tape (one recorded pass, one batched backward pass), with the same values.
    x = RNG.random((6, 6))
    assert ad.prepare_jacobian(Stencil(), ad.AutoSparse(JAX), x).mode == "forward"
    prep = ad.prepare_jacobian(Stencil(), ad.AutoSparse(TORCH), torch.asarray(x))
    assert prep.mode == "reverse" and prep.route == "autograd tape"
    y, J = ad.value_and_jacobian(Stencil(), ad.AutoSparse(TORCH), torch.asarray(x), prep=prep)
    np.testing.assert_allclose(dense(J), Stencil().jacobian(x), rtol=1e-12)
    np.testing.assert_allclose(y.numpy(), Stencil().value(x), rtol=1e-12)
    # a `torch.compile`d `f`: its compiled backward does not run batched, one pass per row seed
    compiled = ad.jacobian(Stencil(), ad.AutoSparse(ad.AutoTorch(compile=True)), torch.asarray(x))
    np.testing.assert_allclose(dense(compiled), Stencil().jacobian(x), rtol=1e-12)
    # a dense first column: 2 column colors against 6 row colors, so torch pushes forward
    first_column = ad.prepare_jacobian(lambda x: x[0] * x + x**2, ad.AutoSparse(TORCH), torch.asarray(x[0]))
    assert first_column.mode == "forward" and first_column.ncolors == 2


# -- finite differences through an executor ----------------------------------------------------


def test_finite_differences_evaluate_once_per_color_and_sign_through_the_executor() -> None:
    seen: list[str] = []

    def f(x):  # noqa: ANN001, ANN202
        seen.append(threading.current_thread().name)
        return Banded()(x)

    x = RNG.random(60)
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pool") as pool:
        backend = ad.AutoSparse(ad.AutoFiniteDiff(executor=pool))
        prep = ad.prepare_jacobian(f, backend, x)
        seen.clear()
        J = ad.jacobian(f, backend, x, prep=prep)
    assert prep.ncolors == 3
    assert len(seen) == 2 * prep.ncolors + 1  # x, then +h and -h along each color's seed
    assert sum(name.startswith("pool") for name in seen) == len(seen)
    np.testing.assert_allclose(J.toarray(), Banded().jacobian(x), rtol=1e-6, atol=1e-9)


# -- every other operator is the dense backend's -----------------------------------------------


@pytest.mark.parametrize("backend", [FD, JAX, TORCH], ids=repr)
def test_other_operators_are_the_dense_backends(backend: ad.AbstractBackend) -> None:
    x, t = RNG.random(6), RNG.random(6)
    sparse = ad.AutoSparse(backend)
    f = BandedEnergy()
    np.testing.assert_allclose(ad.gradient(f, sparse, x), ad.gradient(f, backend, x), rtol=1e-12)
    np.testing.assert_allclose(ad.hvp(f, sparse, x, t), ad.hvp(f, backend, x, t), rtol=1e-12)
    np.testing.assert_allclose(
        ad.pushforward(Banded(), sparse, x, t), ad.pushforward(Banded(), backend, x, t), rtol=1e-12
    )
    np.testing.assert_allclose(ad.pullback(Banded(), sparse, x, t), ad.pullback(Banded(), backend, x, t), rtol=1e-12)


def test_two_argument_functions_with_a_dense_or_known_pattern() -> None:
    jacobians = [with_output_buffer(s) for s in sparse_scenarios(9) if s.operator == "jacobian"]
    passes(ad.AutoSparse(TORCH, sparsity_detector=ad.DenseSparsityDetector(FD)), jacobians)
    scenario = jacobians[0]
    known = ad.KnownSparsity(Banded().jacobian(RNG.random(9)) != 0)
    passes(ad.AutoSparse(FD, sparsity_detector=known), [scenario])


# -- errors ------------------------------------------------------------------------------------


def test_backend_objects_are_checked() -> None:
    with pytest.raises(TypeError, match=r"AutoSparse: `dense` must be a dense backend object .* got str"):
        ad.AutoSparse("jax")
    with pytest.raises(TypeError, match="got another AutoSparse"):
        ad.AutoSparse(ad.AutoSparse(JAX))
    with pytest.raises(TypeError, match=r"`sparsity_detector` must be a detector .* got ndarray"):
        ad.AutoSparse(JAX, sparsity_detector=np.eye(3))
    with pytest.raises(TypeError, match=r"`coloring_algorithm` must be an `ad.GreedyColoring\(...\)`; got str"):
        ad.AutoSparse(JAX, coloring_algorithm="natural")
    with pytest.raises(TypeError, match=r"MixedMode: `reverse` must be a first-order backend .* got SecondOrder"):
        ad.MixedMode(JAX, ad.SecondOrder(JAX, JAX))
    with pytest.raises(ad.UnsupportedError, match=r"different kinds of arrays \(jax and torch\)"):
        ad.jacobian(Banded(), ad.AutoSparse(ad.MixedMode(JAX, TORCH)), RNG.random(4))


def test_known_pattern_of_the_wrong_shape() -> None:
    x = RNG.random(5)
    wrong = ad.AutoSparse(FD, sparsity_detector=ad.KnownSparsity(np.eye(4)))
    before = x.copy()
    with pytest.raises(ValueError, match=r"`KnownSparsity\(pattern\)` must have shape \(y.size, x.size\) = \(5, 5\)"):
        ad.jacobian(Banded(), wrong, x)
    assert (x == before).all()


class _Transposed:
    """A detector returning the transpose of the pattern (wrong for a non-square Jacobian)."""

    def jacobian_sparsity(self, f, x, *contexts):  # noqa: ANN001, ANN201
        return ad.jacobian_sparsity(f, x, *contexts).T

    def hessian_sparsity(self, f, x, *contexts):  # noqa: ANN001, ANN201
        return ad.hessian_sparsity(f, x, *contexts)


def test_a_detector_returning_another_shape() -> None:
    def head(x):  # noqa: ANN001, ANN202
        return x[:3] ** 2

    with pytest.raises(ValueError, match=r"jacobian: the sparsity detector .* shape \(6, 3\); .* needs \(3, 6\)"):
        ad.jacobian(head, ad.AutoSparse(FD, sparsity_detector=_Transposed()), RNG.random(6))


def test_a_function_the_tracer_cannot_follow() -> None:
    def branchy(x):  # noqa: ANN001, ANN202
        return x**2 if x[0] > 0 else -x

    with pytest.raises(ad.FunctionNotDifferentiableError, match="jacobian_sparsity") as info:
        ad.jacobian(branchy, ad.AutoSparse(FD), np.ones(3))
    assert any("sparsity_detector=" in note for note in info.value.__notes__)
    J = ad.jacobian(branchy, ad.AutoSparse(FD, sparsity_detector=ad.DenseSparsityDetector(FD)), np.ones(3))
    np.testing.assert_allclose(J.toarray(), 2 * np.eye(3), rtol=1e-6)
