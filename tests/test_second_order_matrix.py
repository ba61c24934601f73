"""Every `SecondOrder(outer, inner)` pair: the right result, or `ad.UnsupportedError` at preparation.

The matrix is generated: every installed built-in backend as the outer part and as the inner part,
plus `AutoSparse` of the pairs and pairs with `MixedMode` parts, on
`second_derivative`, `hvp`, `hessian` and their value forms, for three functions with closed-form
Hessians (a dense one, a tridiagonal one, one of a matrix with an `ad.Constant`) and a curve for
`second_derivative`; each unprepared, prepared, and prepared then reused at a second point. Every
result is checked against its closed form; every dense Hessian must be symmetric and every
Hessian-vector product agree with the Hessian the same pair computed. A refused pair must refuse
when it is prepared, and every pair its message proposes must give the right Hessian.

    pytest tests/test_second_order_matrix.py                          # a fixed slice, under a minute
    ANYDIFF_FULL_MATRIX=1 pytest tests/test_second_order_matrix.py    # every pair (about ten minutes)
    ANYDIFF_FULL_MATRIX=1 ANYDIFF_WRITE_MATRIX=1 pytest tests/test_second_order_matrix.py

The last form rewrites the generated table of docs/second-order.md from the run; the full run
without it fails when that table is out of date.

Tolerances follow the scheme, not the pair's name. Exact derivatives agree to rounding (1e-9).
Differences (finite differences, numdifftools) add their truncation and rounding error: one level
of differences over exact derivatives (either way round) 1e-6, two levels 1e-5. MyGrad has no
higher-order derivatives: whatever differentiates its gradient (itself too) takes differences of
it, one level.
MLX computes `sin`, `cos` and `exp` of float64 arrays in float32 arithmetic (relative error about
1e-7, see `_libraries/mlx/impl.py`), so its exact derivatives get 1e-6, and finite differences
over MLX (or MLX over finite differences) divide that error by the step (about 1e-5): 2e-2.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import anydiff as ad
from anydiff.extend import implementation
from closed_forms import coupled, coupled_gradient, coupled_hessian, scaled_curve, scaled_curve_derivatives
from generated import FULL, check_or_write, section

FD = ad.AutoFiniteDiff
SO = ad.SecondOrder

#: what the test expects of the pairs of the backends it knows
SYMBOLIC = {"AutoSymPy", "AutoCasADi", "AutoPyTensor"}  # trace and compile: no outer part of others
#: cannot call a DifferentiateWith (MLX's caller serves no `mx.compile`d program, which its operators are)
NO_BRIDGE_CALLER = {"AutoMLX", "AutoTinygrad", "AutoNumdifftools"}
FIRST_ORDER_ONLY = {"AutoMyGrad", "AutoMindSpore"}  # calls one, but cannot differentiate the derivatives it computes
BRIDGE_CALLERS = {"AutoJAX", "AutoTorch", "AutoTensorFlow", "AutoAutograd", "AutoPaddle"}
NUMERICAL = {"AutoFiniteDiff", "AutoNumdifftools"}  # differentiate by differences, either part
#: JAX runs a DifferentiateWith's computations on XLA's callback threads, where MLX's arrays abort the process
CALLBACK_THREADS, THREAD_BOUND = {"AutoJAX"}, {"AutoMLX"}
KNOWN = SYMBOLIC | NO_BRIDGE_CALLER | FIRST_ORDER_ONLY | BRIDGE_CALLERS | NUMERICAL

#: The built-in backends installed here, in `available_backends` order. A backend added to
#: anydiff joins the matrix by joining the sets above, with what its pairs should do; backends
#: that outside packages register are not anydiff's to check.
BACKENDS = [
    b for b in ad.available_backends() if type(b).__module__.startswith("anydiff.") and type(b).__name__ in KNOWN
]
BACKENDS = [b for b in BACKENDS if ad.check_available(b)]
INSTALLED = {type(b).__name__ for b in BACKENDS}


# -- functions with closed-form derivatives ------------------------------------------------------


def dense(x):
    """Σ xᵢ sin xᵢ + |x|⁴ / 4: every pair of coordinates coupled."""
    xp = ad.namespace(x)
    return xp.sum(x * xp.sin(x)) + xp.sum(x * x) ** 2 / 4


def dense_gradient(x):
    return np.sin(x) + x * np.cos(x) + (x @ x) * x


def dense_hessian(x):
    return np.diag(2 * np.cos(x) - x * np.sin(x)) + (x @ x) * np.eye(x.size) + 2 * np.outer(x, x)


def chain(x):
    """Σ xᵢ x²ᵢ₊₁ + Σ cos xᵢ: a tridiagonal Hessian."""
    xp = ad.namespace(x)
    return xp.sum(x[:-1] * x[1:] ** 2) + xp.sum(xp.cos(x))


def chain_gradient(x):
    g = -np.sin(x)
    g[:-1] += x[1:] ** 2
    g[1:] += 2 * x[:-1] * x[1:]
    return g


def chain_hessian(x):
    h = np.diag(-np.cos(x))
    h[1:, 1:] += np.diag(2 * x[:-1])
    off = 2 * x[1:]
    h[np.arange(x.size - 1), np.arange(1, x.size)] += off
    h[np.arange(1, x.size), np.arange(x.size - 1)] += off
    return h


B = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 1.2]])
#: name -> (f, value, gradient, hessian of (x, *constants), constants, two points, two tangents)
FUNCTIONS = {
    "dense": (
        dense,
        lambda x: np.sum(x * np.sin(x)) + (x @ x) ** 2 / 4,
        dense_gradient,
        dense_hessian,
        (),
        (np.array([0.3, -0.7, 1.1, 0.5]), np.array([-0.2, 0.4, 0.9, -1.0])),
        (np.array([1.0, -2.0, 0.5, 0.25]), np.array([0.0, 1.0, 1.0, -1.0])),
    ),
    "tridiagonal": (
        chain,
        lambda x: np.sum(x[:-1] * x[1:] ** 2) + np.sum(np.cos(x)),
        chain_gradient,
        chain_hessian,
        (),
        (np.array([0.5, -0.3, 0.8, 0.1, -0.6]), np.array([-0.4, 0.2, 0.6, -0.9, 0.3])),
        (np.array([1.0, 0.5, -1.0, 2.0, 0.0]), np.array([0.0, -1.0, 0.5, 0.5, 1.0])),
    ),
    "matrix+constant": (
        coupled,
        lambda x, b: np.sum(b * np.exp(x)) + np.sum(x[0] * x[1]),
        coupled_gradient,
        coupled_hessian,
        (B,),
        (np.array([[0.1, -0.4, 0.7], [0.2, 0.5, -0.3]]), np.array([[-0.3, 0.6, 0.2], [0.4, -0.1, 0.8]])),
        (np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.25]]), np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])),
    ),
}
T1, T2, C = 0.3, -0.6, 2.0


# -- the pairs -------------------------------------------------------------------------------------


def name(backend):
    return type(backend).__name__


def expected_refusal(backend):
    """True (refused), False (works) or None (a backend this test does not know: either)."""
    if isinstance(backend, ad.AutoSparse):
        return expected_refusal(backend.dense)
    outer, inner = backend.outer, backend.inner
    if outer == inner:
        return False
    if isinstance(inner, ad.MixedMode):  # across two libraries the inner part is DifferentiateWith's substitute
        return library(outer) != library(inner)
    if isinstance(outer, ad.MixedMode):
        return library(outer) not in BRIDGE_CALLERS and library(outer) != library(inner)
    if name(outer) not in KNOWN or name(inner) not in KNOWN:
        return None
    if name(outer) in SYMBOLIC or (name(outer) in CALLBACK_THREADS and name(inner) in THREAD_BOUND):
        return True
    alone = NO_BRIDGE_CALLER | FIRST_ORDER_ONLY  # over finite differences and themselves only
    return name(outer) in alone and name(inner) not in ("AutoFiniteDiff", name(outer))


def library(backend):
    if isinstance(backend, ad.MixedMode):
        return library(backend.reverse if name(backend.reverse) != "AutoFiniteDiff" else backend.forward)
    return name(backend)


def approximate(backend):
    """Whether a part differentiates numerically (or it is a backend this test does not know,
    whose accuracy it does not presume)."""
    if isinstance(backend, ad.MixedMode):
        return approximate(backend.forward) or approximate(backend.reverse)
    return name(backend) in NUMERICAL or name(backend) not in KNOWN


def tolerance(backend):
    """`rtol = atol` for a pair, by its scheme (module docstring)."""
    if isinstance(backend, ad.AutoSparse):
        return tolerance(backend.dense)
    parts = (backend.outer, backend.inner)
    levels = sum(map(approximate, parts))
    if name(backend.inner) == "AutoMyGrad":  # its derivatives of its gradient are differences
        levels = max(levels, 1)
    mlx = any("AutoMLX" in repr(p) for p in parts)
    if levels and mlx:
        return 2e-2
    if mlx:
        return 1e-6
    return (1e-9, 1e-6, 1e-5)[levels]


def matrix_pairs():
    return [SO(outer, inner) for outer in BACKENDS for inner in BACKENDS]


def mixed_pairs():
    """Pairs with a `MixedMode` part, where its libraries are installed."""
    found = []
    if {"AutoTorch", "AutoJAX"} <= INSTALLED:
        found += [
            SO(ad.MixedMode(FD(), ad.AutoTorch()), ad.AutoTorch()),
            SO(ad.AutoJAX(), ad.MixedMode(ad.AutoJAX(mode="forward"), ad.AutoJAX(mode="reverse"))),
            SO(ad.MixedMode(FD(), ad.AutoTorch()), ad.AutoJAX()),  # bridged, torch outer
            SO(ad.AutoJAX(), ad.MixedMode(FD(), ad.AutoTorch())),  # refused: a combinator substitute
        ]
    return found


def sparse_pairs():
    if FULL:
        found = matrix_pairs()
    else:
        found = [SO(_backend(o), _backend(i)) for o, i in SPARSE_SLICE if _backend(o) and _backend(i)]
    return [ad.AutoSparse(p) for p in found if expected_refusal(p) is False]


def _backend(label):
    return next((b for b in BACKENDS if name(b) == label), None)


#: The default slice: each kind of pair once, each former failure (wrong numbers and raw errors
#: before issue 18) and each refusal; `(outer, inner, functions, operators)`, where the pairs that
#: compile for long (tinygrad's kernels, JAX tracing finite differences) check less than the full run.
ALL_FUNCTIONS, ALL_OPERATORS = tuple(FUNCTIONS), ("hessian", "hvp", "second_derivative")
SLICE = [
    ("AutoJAX", "AutoJAX", ALL_FUNCTIONS, ALL_OPERATORS),
    ("AutoFiniteDiff", "AutoTorch", ALL_FUNCTIONS, ALL_OPERATORS),
    ("AutoJAX", "AutoFiniteDiff", ("dense",), ALL_OPERATORS),
    # was wrong: forward mode through the TensorFlow op in a graph
    ("AutoTensorFlow", "AutoJAX", ALL_FUNCTIONS, ALL_OPERATORS),
    # was wrong: autograd's boxes turned into object arrays
    ("AutoAutograd", "AutoTorch", ALL_FUNCTIONS, ALL_OPERATORS),
    # was refused at call time: two libraries that both compute on NumPy arrays
    ("AutoAutograd", "AutoSymPy", ALL_FUNCTIONS, ALL_OPERATORS),
    # second_derivative was refused at call time
    ("AutoTorch", "AutoCasADi", ALL_FUNCTIONS, ALL_OPERATORS),
    # was a raw error: iterating over a graph tensor
    ("AutoTensorFlow", "AutoFiniteDiff", ("dense",), ALL_OPERATORS),
    # was a raw error: TinyJit inside TinyJit
    ("AutoFiniteDiff", "AutoTinygrad", ("dense",), ("hvp", "second_derivative")),
    # MLX's float32-accurate functions
    ("AutoFiniteDiff", "AutoMLX", ALL_FUNCTIONS, ALL_OPERATORS),
    # refused: symbolic outer parts (the last two were raw errors)
    ("AutoSymPy", "AutoJAX", (), ()),
    ("AutoCasADi", "AutoFiniteDiff", (), ()),
    ("AutoPyTensor", "AutoFiniteDiff", (), ()),
    # numdifftools' differences and MyGrad's differences of its gradient, as the inner part
    ("AutoAutograd", "AutoNumdifftools", ("dense",), ("hvp",)),
    ("AutoJAX", "AutoMyGrad", ("dense",), ALL_OPERATORS),
    # refused: no bridge caller
    ("AutoMLX", "AutoTorch", (), ()),
    ("AutoTinygrad", "AutoAutograd", (), ()),
    ("AutoNumdifftools", "AutoJAX", (), ()),
    # refused: no derivatives of its own derivatives (was a zero Hessian, then an error at the call)
    ("AutoMyGrad", "AutoTorch", (), ()),
    # through Paddle's PyLayer (was a raw error: Paddle's unhashable Size)
    ("AutoTorch", "AutoPaddle", ("dense",), ("hvp",)),
]
SPARSE_SLICE = [("AutoFiniteDiff", "AutoTorch"), ("AutoJAX", "AutoTorch")]
#: `pair_id -> (functions, operators)` of the slice
PLAN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def pairs():
    if FULL:
        return matrix_pairs() + mixed_pairs()
    found = []
    for outer, inner, functions, operators in SLICE:
        if _backend(outer) is not None and _backend(inner) is not None:
            pair = SO(_backend(outer), _backend(inner))
            PLAN[pair_id(pair)] = (functions, operators)
            found.append(pair)
    return found + mixed_pairs()[2:]


def pair_id(backend):
    if isinstance(backend, ad.AutoSparse):
        return "AutoSparse-" + pair_id(backend.dense)
    return f"{backend.outer!r}-over-{backend.inner!r}"


# -- checks --------------------------------------------------------------------------------------


def dense_array(a):
    """A NumPy result as it is, a sparse one (`AutoSparse`) densified; float64 kept either way.

    (TensorFlow returns a 0-d value as a NumPy scalar, which is taken as it is.)
    """
    a = a.toarray() if hasattr(a, "toarray") else a
    assert isinstance(a, (np.ndarray, np.float64)) and a.dtype == np.float64, (type(a), getattr(a, "dtype", None))
    return np.asarray(a)


def close(actual, expected, tol, what):
    np.testing.assert_allclose(dense_array(actual), expected, rtol=tol, atol=tol, err_msg=what)


#: `repr(pair) -> {operator: (status, strategy, route)}`, for the generated table
RECORDED: dict[str, dict[str, tuple[str, str, str]]] = {}


def record(backend, operator, prep=None):
    info = {} if prep is None else prep.info
    status = "refused" if prep is None else "works"
    strategy = info.get("strategy") or ("native: " + str(info.get("route") or info.get("mode", "")))
    RECORDED.setdefault(repr(backend), {})[operator] = (status, str(strategy), str(info.get("route", "")))


def check_info(backend, prep):
    """The strategy and the route of every pair: through `DifferentiateWith` for two AD
    libraries, directly otherwise (a backend paired with itself is that backend)."""
    if backend.outer == backend.inner:
        return
    assert prep.info["strategy"] in (
        "forward-over-reverse",
        "reverse-over-forward",
        "reverse-over-reverse",
        "forward-over-forward",
    ), prep.info
    kinds = [implementation(part).kind for part in (backend.outer, backend.inner)]
    if None not in kinds and library(backend.outer) != library(backend.inner):  # two AD libraries
        assert prep.info["route"] == f"{backend.outer!r} over DifferentiateWith(f, {backend.inner!r})"
    else:
        assert prep.info["route"] == f"{backend.outer!r} directly over {backend.inner!r}", prep.info


def check_hessian(backend, function):
    f, value, gradient, hessian, constants, (x1, x2), (v, w) = FUNCTIONS[function]
    tol = tolerance(backend)
    contexts = tuple(map(ad.Constant, constants))
    n = x1.size
    prep = ad.prepare_hessian(f, backend, x1, *contexts)
    if not isinstance(backend, ad.AutoSparse):
        check_info(backend, prep)
    h1 = dense_array(ad.hessian(f, backend, x1, *contexts, prep=prep))
    shape = (n, n) if isinstance(backend, ad.AutoSparse) else x1.shape + x1.shape
    assert h1.shape == shape
    close(h1, hessian(x1, *constants).reshape(shape), tol, "hessian, prepared")
    flat = h1.reshape(n, n)
    # Symmetric to rounding: for exact derivatives, to a few units of the last place.
    symmetry = max(tol, 1e-12) if tol > 1e-9 else 1e-12
    np.testing.assert_allclose(flat, flat.T, rtol=0, atol=symmetry * max(1.0, np.abs(flat).max()))
    y, g, h2 = ad.value_gradient_and_hessian(f, backend, x2, *contexts, prep=prep)  # reused elsewhere
    close(y, value(x2, *constants), tol, "value, reused")
    close(g, gradient(x2, *constants), tol, "gradient, reused")
    close(h2, hessian(x2, *constants).reshape(shape), tol, "hessian, reused")
    close(ad.hessian(f, backend, x2, *contexts), hessian(x2, *constants).reshape(shape), tol, "hessian, unprepared")
    return prep, flat


def check_hvp(backend, function, flat_hessian):
    f, value, gradient, hessian, constants, (x1, x2), (v, w) = FUNCTIONS[function]
    tol = tolerance(backend)
    contexts = tuple(map(ad.Constant, constants))
    n = x1.size

    def product(x, t):
        return (hessian(x, *constants).reshape(n, n) @ t.reshape(n)).reshape(x.shape)

    prep = ad.prepare_hvp(f, backend, x1, v, *contexts)
    check_info(backend, prep)
    hv = ad.hvp(f, backend, x1, v, *contexts, prep=prep)
    close(hv, product(x1, v), tol, "hvp, prepared")
    if flat_hessian is not None:
        close(hv, (flat_hessian @ v.reshape(n)).reshape(x1.shape), tol, "hvp against the pair's own hessian @ v")
    g, hv2 = ad.gradient_and_hvp(f, backend, x2, v, *contexts, prep=prep)  # reused elsewhere
    close(g, gradient(x2, *constants), tol, "gradient, reused")
    close(hv2, product(x2, v), tol, "hvp, reused")
    both = ad.hvp(f, backend, x2, (v, w), *contexts)  # unprepared, a batch of two
    assert isinstance(both, tuple) and len(both) == 2
    close(both[0], product(x2, v), tol, "hvp, unprepared batch")
    close(both[1], product(x2, w), tol, "hvp, unprepared batch")
    return prep


def check_second_derivative(backend):
    tol = tolerance(backend)
    prep = ad.prepare_second_derivative(scaled_curve, backend, T1, ad.Constant(C))
    check_info(backend, prep)
    close(
        ad.second_derivative(scaled_curve, backend, T1, ad.Constant(C), prep=prep),
        scaled_curve_derivatives(T1, C)[2],
        tol,
        "d2",
    )
    for got, want in zip(
        ad.value_derivative_and_second_derivative(scaled_curve, backend, T2, ad.Constant(C), prep=prep),
        scaled_curve_derivatives(T2, C),
        strict=True,
    ):
        close(got, want, tol, "value form, reused")
    close(
        ad.second_derivative(scaled_curve, backend, T2, ad.Constant(C)),
        scaled_curve_derivatives(T2, C)[2],
        tol,
        "unprepared",
    )
    return prep


def check_refusal(backend):
    """Refused when prepared (and unprepared), naming pairs that work."""
    x, v = FUNCTIONS["dense"][5][0], FUNCTIONS["dense"][6][0]
    attempts = {
        "hessian": lambda: ad.prepare_hessian(dense, backend, x),
        "hvp": lambda: ad.prepare_hvp(dense, backend, x, v),
        "second_derivative": lambda: ad.prepare_second_derivative(scaled_curve, backend, T1, ad.Constant(C)),
        "unprepared hessian": lambda: ad.hessian(dense, backend, x),
    }
    messages = []
    for operator, attempt in attempts.items():
        with pytest.raises(ad.UnsupportedError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(operator.split()[-1] + ": ") and repr(backend) in message, message
        messages.append(message)
    proposed = re.findall(r"`(ad\.[^`]+)`", messages[0].split(" Use ")[-1])
    assert proposed, messages[0]
    for text in proposed:  # every proposal works
        alternative = eval(text, {"ad": ad})
        tol = tolerance(alternative) if isinstance(alternative, SO) else 1e-5
        close(ad.hessian(dense, alternative, x), dense_hessian(x), tol, f"{text}, proposed by the refusal")


# -- the tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", pairs(), ids=pair_id)
def test_pair(backend):
    refused = expected_refusal(backend)
    try:
        ad.prepare_hvp(dense, backend, FUNCTIONS["dense"][5][0], FUNCTIONS["dense"][6][0])
    except ad.UnsupportedError:
        assert refused is not False, f"{backend!r} should work"
        check_refusal(backend)
        for operator in ("hessian", "hvp", "second_derivative"):
            record(backend, operator)
        return
    assert refused is not True, f"{backend!r} should be refused"
    functions, operators = PLAN.get(pair_id(backend), (ALL_FUNCTIONS, ALL_OPERATORS))
    for function in functions:
        flat = None
        if "hessian" in operators:
            hessian_prep, flat = check_hessian(backend, function)
            if function == "dense":
                record(backend, "hessian", hessian_prep)
        hvp_prep = check_hvp(backend, function, flat)
        if function == "dense":
            record(backend, "hvp", hvp_prep)
    if "second_derivative" in operators:
        record(backend, "second_derivative", check_second_derivative(backend))


@pytest.mark.parametrize("backend", sparse_pairs(), ids=pair_id)
def test_sparse_pair(backend):
    f, value, gradient, hessian, constants, (x1, x2), _ = FUNCTIONS["tridiagonal"]
    prep, _ = check_hessian(backend, "tridiagonal")
    assert prep.ncolors == 3  # a tridiagonal Hessian: three colors, whatever n
    assert prep.info.get("strategy") == ad.prepare_hvp(f, backend.dense, x1, x1).info.get("strategy")


def test_refusals_are_typed_and_teach():
    """The messages of the three kinds of refusal, word for word where it matters."""
    needed = {"AutoSymPy", "AutoJAX", "AutoMLX", "AutoTorch"}
    if not needed <= INSTALLED:
        pytest.skip(f"needs {sorted(needed - INSTALLED)}")
    x = FUNCTIONS["dense"][5][0]
    with pytest.raises(ad.UnsupportedError) as caught:
        ad.prepare_hessian(dense, SO(ad.AutoSymPy(), ad.AutoJAX()), x)
    assert str(caught.value) == (
        "hessian: AutoSymPy() cannot be the outer part of SecondOrder(outer=AutoSymPy(), inner=AutoJAX()): it "
        "differentiates by tracing `f` into symbolic expressions and compiling them, which another backend "
        "cannot trace in turn; as an outer part it would have to trace AutoJAX()'s derivatives into its "
        "expressions, and compile them again at every call. Use `ad.SecondOrder(ad.AutoJAX(), ad.AutoSymPy())`, "
        "`ad.SecondOrder(ad.AutoFiniteDiff(), ad.AutoJAX())` or `ad.AutoSymPy()` alone."
    )
    with pytest.raises(ad.UnsupportedError) as caught:
        ad.prepare_hvp(dense, SO(ad.AutoMLX(), ad.AutoTorch()), x, x)
    assert str(caught.value) == (
        "hvp: SecondOrder(outer=AutoMLX(), inner=AutoTorch()) pairs two AD libraries, so its outer part would "
        "differentiate `ad.DifferentiateWith(f, AutoTorch())`, but AutoMLX()'s transforms cannot call a "
        "`DifferentiateWith` (no bridge caller of mlx serves its compiled programs). Use "
        "`ad.SecondOrder(ad.AutoTorch(), ad.AutoMLX())`, "
        "`ad.SecondOrder(ad.AutoFiniteDiff(), ad.AutoTorch())` or `ad.AutoMLX()` alone."
    )
    with pytest.raises(ad.UnsupportedError, match=r"whose backend must be a first-order one, not a combinator"):
        ad.prepare_second_derivative(
            scaled_curve, SO(ad.AutoJAX(), ad.MixedMode(FD(), ad.AutoTorch())), T1, ad.Constant(C)
        )


# -- the generated table in docs/second-order.md ---------------------------------------------------


def render(recorded):
    """The markdown table: one row per outer part, one column per inner part."""
    names = [name(b) for b in BACKENDS]
    lines = [
        "| outer \\ inner | " + " | ".join(n.removeprefix("Auto") for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    legend = {
        "forward-over-reverse": "FoR",
        "reverse-over-forward": "RoF",
        "reverse-over-reverse": "RoR",
        "forward-over-forward": "FoF",
    }
    for outer in BACKENDS:
        cells = []
        for inner in BACKENDS:
            entry = recorded[repr(SO(outer, inner))]
            status, strategy, route = entry["hvp"]
            if status == "refused":
                cells.append("refused")
                continue
            cell = legend.get(strategy, strategy if not strategy.startswith("native") else "native")
            cells.append(cell + (" (bridge)" if "DifferentiateWith" in route else ""))
        lines.append(f"| **{name(outer).removeprefix('Auto')}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_generated_table_matches_the_run():
    """After the full matrix: the committed table is this run's (or is rewritten with ANYDIFF_WRITE_MATRIX=1)."""
    if not FULL:
        pytest.skip("the table is generated by the full matrix: ANYDIFF_FULL_MATRIX=1")
    missing = [repr(SO(o, i)) for o in BACKENDS for i in BACKENDS if repr(SO(o, i)) not in RECORDED]
    if missing:
        pytest.skip(f"{len(missing)} pairs were not run in this session (e.g. {missing[0]})")
    check_or_write("second-order.md", "second-order matrix", render(RECORDED))


def test_committed_table_agrees_with_the_rules():
    """Without running the matrix: each committed cell says works or refused as the rules say."""
    rows = section("second-order.md", "second-order matrix").splitlines()
    inner_names = ["Auto" + c.strip() for c in rows[0].split("|")[2:-1]]
    for row in rows[2:]:
        cells = [c.strip() for c in row.split("|")[1:-1]]
        outer = "Auto" + cells[0].strip("*")
        for inner, cell in zip(inner_names, cells[1:], strict=True):
            if outer not in KNOWN or inner not in KNOWN:
                continue
            pair = SO(*(getattr(ad, n)() for n in (outer, inner)))
            assert (cell == "refused") == expected_refusal(pair), f"{outer} over {inner}: {cell}"
