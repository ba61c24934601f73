"""A catalogue of bad inputs: each gets a typed error with a clear message, and nothing is mutated.

Every row of `CATALOGUE` is one mistake a user can make, run on each backend it applies to: the
test asserts the error's type and message, and that no array the user passed (`x`, tangents,
`Constant` contexts) changed. `EDGES` lists inputs that are unusual but valid (empty arrays, 0-d
against 1-element arrays, NaN and inf, mixed array kinds in contexts): they must give results,
following IEEE arithmetic, and raise nothing.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import anydiff as ad

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

FD, JAX, TORCH = ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch()
ALL = (FD, JAX, TORCH)


def square_sum(x: Any, *contexts: Any) -> Any:
    return ad.namespace(x).sum(x * x)


def double(x: Any, *contexts: Any) -> Any:
    return 2.0 * x


def scaled(x: Any, c: Any) -> Any:
    return x * c


class Boom(Exception):
    """An exception of the user's own."""


def boom(x: Any) -> Any:
    raise Boom("boom: f failed on purpose")


def inputs() -> dict[str, Any]:
    """Fresh arguments for one call; the test checks that none of them changed."""
    return {
        "x": np.linspace(0.1, 1.0, 3),
        "t": np.ones(3),
        "c": np.arange(1.0, 4.0),
        "x32": np.linspace(0.1, 1.0, 3, dtype=np.float32),
        "xt": torch.linspace(0.1, 1.0, 3, dtype=torch.float64),
    }


def snapshot(a: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v).copy() for k, v in a.items()}


@dataclass(frozen=True)
class Bad:
    """One mistake: `call(backend, inputs)` must raise `error` with a message matching `message`."""

    name: str
    call: Callable[[Any, dict[str, Any]], Any]
    error: type[BaseException]
    message: str
    backends: tuple[Any, ...] = ALL


def _uninstalled() -> Any:
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
    class AutoNowhere(ad.AbstractBackend):
        extra = "nowhere"

    ad.register_backend(AutoNowhere, "anydiff_tests_absent_library:Impl", "anydiff_tests_absent_library")
    return AutoNowhere()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AutoUnregistered(ad.AbstractBackend):
    """A backend type nobody registered."""


def _prepared(operator: str, f: Any, b: Any, x: Any, *args: Any) -> Any:
    return getattr(ad, f"prepare_{operator}")(f, b, x, *args)


def _branch(x: Any) -> Any:
    return x * 2.0 if x[0] > 0 else x


def _numpy_inside(x: Any) -> Any:
    return np.sum(np.sin(x))


def _numpy_result(x: Any) -> Any:
    return np.ones(3)


def _raises_later() -> Callable[[Any], Any]:
    """`f` that works when prepared and raises on a later call (a closure flag, not a branch)."""
    state = {"fail": False}

    def f(x: Any) -> Any:
        if state["fail"]:
            raise Boom("boom: f failed on a prepared call")
        return ad.namespace(x).sum(x * x)

    f.state = state  # type: ignore[attr-defined]
    return f


def _prepared_then_raises(b: Any, a: dict[str, Any]) -> Any:
    f = _raises_later()
    prep = ad.prepare_gradient(f, b, a["x"])
    f.state["fail"] = True  # type: ignore[attr-defined]
    return ad.gradient(f, b, a["x"], prep=prep)


NOT_FLOAT = r"gradient: `x` must have a real floating-point dtype \(float32 or float64\); got {}\."
MISMATCH = r"the `prep` passed was built for other arguments:(.|\n)*"
NOT_AN_ARRAY = r"`f` must return (one array of the kind it receives \(\w+\)|a JAX array); it returned {}\."

CATALOGUE = [
    # -- x of the wrong dtype or type ---------------------------------------------------------
    Bad("x int64", lambda b, a: ad.gradient(square_sum, b, np.arange(3)), TypeError, NOT_FLOAT.format("int64")),
    Bad("x bool", lambda b, a: ad.gradient(square_sum, b, np.ones(3, bool)), TypeError, NOT_FLOAT.format("bool")),
    Bad(
        "x complex128",
        lambda b, a: ad.gradient(square_sum, b, a["x"] + 0j),
        TypeError,
        NOT_FLOAT.format("complex128") + " complex inputs are not supported",
    ),
    Bad(
        "x float16",
        lambda b, a: ad.gradient(square_sum, b, a["x"].astype(np.float16)),
        TypeError,
        NOT_FLOAT.format("float16"),
    ),
    Bad(
        "x torch int32",
        lambda b, a: ad.gradient(square_sum, b, torch.ones(3, dtype=torch.int32)),
        TypeError,
        NOT_FLOAT.format("int32"),
    ),
    Bad(
        "x jax bool",
        lambda b, a: ad.gradient(square_sum, b, jnp.ones(3, dtype=bool)),
        TypeError,
        NOT_FLOAT.format("bool"),
    ),
    Bad(
        "x a list of ints",
        lambda b, a: ad.jacobian(double, b, [1, 2]),
        TypeError,
        r"jacobian: `x` has no differentiable leaf \(float32 or float64 arrays, or Python floats\); its leaves "
        r"are x\[0\]: 1, x\[1\]: 2\.",
    ),
    Bad("x int", lambda b, a: ad.gradient(square_sum, b, 3), TypeError, r"gradient: `x` must be an array .* got int\."),
    Bad(
        "x None",
        lambda b, a: ad.gradient(square_sum, b, None),
        TypeError,
        r"gradient: `x` has no differentiable leaf .* its leaves are none\.",
    ),
    Bad(
        "x str",
        lambda b, a: ad.pushforward(double, b, "1.0", a["t"]),
        TypeError,
        r"pushforward: `x` must be an array .* got str\.",
    ),
    # -- shapes: 0-d against 1-element, vectors where scalars are required -------------------
    Bad(
        "derivative of a vector x",
        lambda b, a: ad.derivative(double, b, a["x"]),
        ValueError,
        r"derivative: `x` must be a scalar \(a float or a 0-d array\); got shape \(3,\)\. Use `ad.jacobian`",
    ),
    Bad(
        "derivative of a 1-element x",
        lambda b, a: ad.derivative(double, b, np.ones(1)),
        ValueError,
        r"derivative: `x` must be a scalar .* got shape \(1,\)",
    ),
    Bad(
        "second_derivative of a vector x",
        lambda b, a: ad.second_derivative(double, b, a["x"]),
        ValueError,
        r"second_derivative: `x` must be a scalar .* got shape \(3,\)\. Use `ad.hessian`",
    ),
    Bad(
        "gradient of a vector f",
        lambda b, a: ad.gradient(double, b, a["x"]),
        ValueError,
        r"gradient: `f` must return a scalar \(shape \(\)\); it returned shape \(3,\)\. Use `ad.jacobian`",
    ),
    Bad(
        "gradient of a 1-element f",
        lambda b, a: ad.gradient(lambda x: x[:1], b, a["x"]),
        ValueError,
        r"gradient: `f` must return a scalar \(shape \(\)\); it returned shape \(1,\)",
    ),
    Bad(
        "hessian of a vector f",
        lambda b, a: ad.hessian(double, b, a["x"]),
        ValueError,
        r"hessian: `f` must return a scalar .* it returned shape \(3,\)",
    ),
    Bad(
        "hvp of a vector f",
        lambda b, a: ad.hvp(double, b, a["x"], a["t"]),
        ValueError,
        r"hvp: `f` must return a scalar .* it returned shape \(3,\)",
    ),
    # -- what f returns ------------------------------------------------------------------------
    Bad(
        "f returns None",
        lambda b, a: ad.gradient(lambda x: None, b, a["x"]),
        TypeError,
        r"gradient: `f` returned NoneType, a tree without any array; `f` must return an array or a tree of arrays\.",
    ),
    Bad(
        "f returns a list with a string",
        lambda b, a: ad.jacobian(lambda x: [x, "x"], b, a["x"]),
        TypeError,
        r"jacobian: the leaves of `f`'s output must be float32 or float64 arrays or Python floats; y\[1\] is 'x'\.",
    ),
    Bad(
        "gradient of a tuple-valued f",
        lambda b, a: ad.gradient(lambda x: (ad.namespace(x).sum(x), ad.namespace(x).sum(x)), b, a["x"]),
        ValueError,
        r"gradient: `f` must return one scalar; it returned a tuple tree with leaves y\[0\], y\[1\]\. Use "
        r"`ad.jacobian` or `ad.pullback` for tree outputs\.",
    ),
    Bad(
        "f returns integers",
        lambda b, a: ad.jacobian(lambda x: ad.namespace(x).astype(x, ad.namespace(x).int32), b, a["x"]),
        TypeError,
        r"jacobian: `f` must return a real floating-point array \(float32 or float64\); it returned dtype int32\.",
    ),
    Bad(
        "f returns complex",
        lambda b, a: ad.jacobian(lambda x: x * 1j, b, a["x"]),
        TypeError,
        r"jacobian: `f` must return a real floating-point array .* it returned dtype complex128\.",
    ),
    Bad(
        "f returns NumPy under torch",
        lambda b, a: ad.jacobian(_numpy_result, b, a["x"]),
        TypeError,
        r"AutoTorch\(\): `f` must return one array of the kind it receives \(torch\); it returned ndarray\. "
        r"Build the result with `xp = ad.namespace\(x\)`",
        (TORCH,),
    ),
    # -- f that the backend cannot trace, or that fails ---------------------------------------
    Bad(
        "numpy calls on a JAX tracer",
        lambda b, a: ad.gradient(_numpy_inside, b, a["x"]),
        ad.FunctionNotDifferentiableError,
        r"gradient: `f` turned a JAX tracer into a concrete value .* `xp = ad.namespace\(x\)`",
        (JAX,),
    ),
    Bad(
        "Python branch on a JAX tracer",
        lambda b, a: ad.jacobian(_branch, b, a["x"]),
        ad.FunctionNotDifferentiableError,
        r"jacobian: `f` turned a JAX tracer into a concrete value .* replace Python branches on array values "
        r"by `xp.where`",
        (JAX,),
    ),
    Bad(
        "numpy() on a torch tensor",
        lambda b, a: ad.gradient(lambda x: torch.tensor(np.sum(x.numpy())), b, a["x"]),
        ad.FunctionNotDifferentiableError,
        r"gradient: `f` took a value out of a torch tensor",
        (TORCH,),
    ),
    Bad("f raises its own exception", lambda b, a: ad.gradient(boom, b, a["x"]), Boom, r"^boom: f failed on purpose"),
    Bad("f raises KeyError", lambda b, a: ad.jacobian(lambda x: {}["missing"], b, a["x"]), KeyError, r"'missing'"),
    Bad("f raises on a prepared call", _prepared_then_raises, Boom, r"^boom: f failed on a prepared call"),
    Bad(
        "floating-point errors the user asked for",
        lambda b, a: _with_errstate(lambda: ad.gradient(lambda x: np.sum(np.log(x - 0.1)), b, a["x"])),
        FloatingPointError,
        r"divide by zero",
        (FD,),
    ),
    # -- tangents ------------------------------------------------------------------------------
    Bad(
        "tangent of another shape",
        lambda b, a: ad.pushforward(double, b, a["x"], np.ones(4)),
        ValueError,
        r"pushforward: the tangent must have the shape of `x`, \(3,\); got \(4,\)\.",
    ),
    Bad(
        "tangents of mixed shapes",
        lambda b, a: ad.pullback(double, b, a["x"], (a["t"], np.ones(2))),
        ValueError,
        r"pullback: tangent 1 must have the shape of `f\(x\)`, \(3,\); got \(2,\)\.",
    ),
    Bad(
        "0-d tangent for a 1-element x",
        lambda b, a: ad.hvp(square_sum, b, np.ones(1), np.ones(())),
        ValueError,
        r"hvp: the tangent must have the shape of `x`, \(1,\); got \(\)\.",
    ),
    Bad(
        "tangent of another kind",
        lambda b, a: ad.pushforward(double, b, a["x"], torch.ones(3, dtype=torch.float64)),
        TypeError,
        r"pushforward: the tangent must be the same kind of array as `x` \(numpy\); got torch\.",
    ),
    Bad(
        "tangent of another dtype",
        lambda b, a: ad.hvp(square_sum, b, a["x"], a["x32"]),
        TypeError,
        r"hvp: the tangent must have the dtype of `x`, float64; got float32\. Cast it first\.",
    ),
    Bad(
        "empty tuple of tangents",
        lambda b, a: ad.pushforward(double, b, a["x"], ()),
        ValueError,
        r"pushforward: the tuple of tangents is empty; pass at least one array\.",
    ),
    Bad(
        "list of tangents",
        lambda b, a: ad.pullback(double, b, a["x"], [a["t"], a["t"]]),
        TypeError,
        r"pullback: several tangents must be passed as a tuple of arrays; got a list\. Write `tuple\(tangents\)`\.",
    ),
    # -- contexts ------------------------------------------------------------------------------
    Bad(
        "context not wrapped",
        lambda b, a: ad.gradient(lambda x, c: square_sum(x * c), b, a["x"], a["c"]),
        TypeError,
        r"gradient: extra positional arguments after `x` must be wrapped as `ad.Constant\(value\)` .* bare ndarray",
    ),
    Bad(
        "prep passed by position",
        lambda b, a: ad.gradient(square_sum, b, a["x"], _prepared("gradient", square_sum, b, a["x"])),
        TypeError,
        r"gradient: a `Prep` was passed as a positional argument; pass it by keyword: `ad.gradient\(f, "
        r"backend, x, ..., prep=prep\)`\.",
    ),
    # -- a prep reused with other arguments ---------------------------------------------------
    Bad(
        "prep with another function",
        lambda b, a: ad.gradient(lambda x: square_sum(x), b, a["x"], prep=_prepared("gradient", square_sum, b, a["x"])),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ function    square_sum .*<lambda>",
    ),
    Bad(
        "prep with another shape",
        lambda b, a: ad.gradient(square_sum, b, np.ones(4), prep=_prepared("gradient", square_sum, b, a["x"])),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ shape       \(3,\)\s+\(4,\)",
    ),
    Bad(
        "prep with another dtype",
        lambda b, a: ad.gradient(square_sum, b, a["x32"], prep=_prepared("gradient", square_sum, b, a["x"])),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ dtype       float64\s+float32",
    ),
    Bad(
        "prep with another array kind",
        lambda b, a: ad.gradient(square_sum, b, a["xt"], prep=_prepared("gradient", square_sum, b, a["x"])),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ array kind  numpy\s+torch",
    ),
    Bad(
        "prep with another backend",
        lambda b, a: ad.gradient(
            square_sum, ad.AutoFiniteDiff(method="forward"), a["x"], prep=_prepared("gradient", square_sum, b, a["x"])
        ),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ backend ",
    ),
    Bad(
        "prep of another operator",
        lambda b, a: ad.jacobian(square_sum, b, a["x"], prep=_prepared("gradient", square_sum, b, a["x"])),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ operator    gradient\s+jacobian",
    ),
    Bad(
        # the public functions without `batch_size` call a given prep directly: its guard checks the operator
        "prep of another operator, called directly",
        lambda b, a: ad.hvp(square_sum, b, a["x"], a["x"], prep=_prepared("gradient", square_sum, b, a["x"])),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ operator    gradient\s+hvp",
    ),
    Bad(
        "prep with other contexts",
        lambda b, a: ad.gradient(
            square_sum, b, a["x"], ad.Constant(a["c"]), prep=_prepared("gradient", square_sum, b, a["x"])
        ),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ contexts    0\s+1",
    ),
    Bad(
        "prep for 0-d, called with 1 element",
        lambda b, a: ad.gradient(square_sum, b, np.ones(1), prep=_prepared("gradient", square_sum, b, np.ones(()))),
        ad.PreparationMismatchError,
        MISMATCH + r"✗ shape       \(\)\s+\(1,\)",
    ),
    Bad(
        "prep with another batch size",
        lambda b, a: ad.jacobian(
            double, b, a["x"], batch_size=2, prep=ad.prepare_jacobian(double, b, a["x"], batch_size=1)
        ),
        ad.PreparationMismatchError,
        r"jacobian: `batch_size=2` differs from the 1 the `prep` was built with\. Pass `batch_size` to "
        r"`ad.prepare_jacobian` only\.",
    ),
    Bad(
        "batch size of zero",
        lambda b, a: ad.hessian(square_sum, b, a["x"], batch_size=0),
        ValueError,
        r"hessian: `batch_size` must be a positive integer \(the most basis tangents pushed through `f` at "
        r"once\) or None for the default; got 0\.",
    ),
    Bad(
        "prep that is not a Prep",
        lambda b, a: ad.gradient(square_sum, b, a["x"], prep={}),
        TypeError,
        r"gradient: `prep` must come from `ad.prepare_gradient`; got dict\.",
    ),
    # -- f and backend arguments ---------------------------------------------------------------
    Bad(
        "non-callable f",
        lambda b, a: ad.gradient("sin", b, a["x"]),
        TypeError,
        r"gradient: `f` must be callable; got str\.",
    ),
    Bad(
        "f and backend swapped",
        lambda b, a: ad.gradient(b, square_sum, a["x"]),
        TypeError,
        r"gradient: `f` must be callable; got Auto\w+\.",
    ),
    Bad(
        "backend that is not a backend",
        lambda b, a: ad.gradient(square_sum, "jax", a["x"]),
        TypeError,
        r"gradient: `backend` must be a backend object such as `ad.AutoJAX\(\)` .* got str\. The argument "
        r"order is `ad.gradient\(f, backend, x, ...\)`",
        (FD,),
    ),
    Bad(
        "uninstalled backend",
        lambda b, a: ad.gradient(square_sum, _uninstalled(), a["x"]),
        ad.BackendNotInstalledError,
        r"AutoNowhere needs the `anydiff_tests_absent_library` package, which is not installed here\. Install "
        r"it with `pip install 'anydiff\[nowhere\]'`\.",
        (FD,),
    ),
    Bad(
        "unregistered backend type",
        lambda b, a: ad.gradient(square_sum, AutoUnregistered(), a["x"]),
        TypeError,
        r"AutoUnregistered\(\) is not a backend anydiff knows: .* register its type with `ad.register_backend`",
        (FD,),
    ),
    Bad(
        "second-order pair for a gradient",
        lambda b, a: ad.gradient(square_sum, ad.SecondOrder(b, b), a["x"]),
        ad.UnsupportedError,
        r"gradient: SecondOrder\(.*\) is a second-order pair, for `second_derivative`, `hvp` and `hessian`",
    ),
    # -- two-argument functions ----------------------------------------------------------------
    Bad(
        "two-argument f under JAX",
        lambda b, a: ad.jacobian(lambda y, x: None, b, a["x"], y=np.zeros(3)),
        ad.UnsupportedError,
        r"AutoJAX\(\) cannot differentiate a two-argument function `f\(y, x\)`: its arrays cannot be written in place",
        (JAX,),
    ),
    Bad(
        "two-argument f for a gradient",
        lambda b, a: ad.prepare_gradient(lambda y, x: None, b, a["x"], y=np.zeros(())),
        TypeError,
        r"gradient: two-argument functions `f\(y, x\)` \(passed with `y=`\) are supported by pushforward, "
        r"pullback, derivative and jacobian only\.",
    ),
    Bad(
        "y buffer that is not an array",
        lambda b, a: ad.jacobian(lambda y, x: None, b, a["x"], y=[0.0, 0.0, 0.0]),
        TypeError,
        r"jacobian: `y` must be an array buffer; got list\.",
    ),
    # -- backend options -----------------------------------------------------------------------
    Bad(
        "unknown finite-difference method",
        lambda b, a: ad.AutoFiniteDiff(method="backward"),
        ValueError,
        r"AutoFiniteDiff: `method` must be one of \('forward', 'central', 'complex'\); got 'backward'\.",
        (FD,),
    ),
    Bad(
        "negative step",
        lambda b, a: ad.AutoFiniteDiff(step=-1e-3),
        ValueError,
        r"AutoFiniteDiff: `step` must be a positive number; got -0\.001\.",
        (FD,),
    ),
    Bad(
        "unknown mode",
        lambda b, a: ad.AutoJAX(mode="sideways"),
        ValueError,
        r"AutoJAX: `mode` must be None \(choose per operator\), 'forward' or 'reverse'; got 'sideways'\.",
        (JAX,),
    ),
    Bad(
        "second-order part that is not a backend",
        lambda b, a: ad.SecondOrder(b, "torch"),
        TypeError,
        r"SecondOrder: `inner` must be a backend object such as `ad.AutoJAX\(\)`; got str\.",
    ),
]


def _with_errstate(call: Callable[[], Any]) -> Any:
    with np.errstate(all="raise"):
        return call()


def _rows(table: list[Any]) -> list[Any]:
    return [pytest.param(row, b, id=f"{row.name} [{b!r}]") for row in table for b in row.backends]


@pytest.mark.parametrize(("bad", "backend"), _rows(CATALOGUE))
def test_bad_input_raises_a_clear_error_and_mutates_nothing(bad: Bad, backend: Any) -> None:
    arguments = inputs()
    before = snapshot(arguments)
    with pytest.raises(bad.error, match=bad.message):
        bad.call(backend, arguments)
    for name, value in snapshot(arguments).items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"`{name}` was mutated")


@pytest.mark.parametrize("backend", ALL, ids=repr)
def test_an_exception_of_f_passes_through_as_the_same_object(backend: Any) -> None:
    # JAX may add a note about its filtered traceback; the type, message and object stay f's.
    raised = Boom("boom")

    def f(x: Any) -> Any:
        raise raised

    with pytest.raises(Boom) as info:
        ad.jacobian(f, backend, np.ones(2))
    assert info.value is raised and str(info.value) == "boom"


def test_the_catalogue_has_forty_mistakes_or_more() -> None:
    assert len(CATALOGUE) >= 40 and len({bad.name for bad in CATALOGUE}) == len(CATALOGUE)


# -- unusual but valid inputs -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ALL, ids=repr)
@pytest.mark.parametrize(
    ("operator", "f", "x", "expected"),
    [
        ("gradient", square_sum, np.ones(0), np.ones(0)),
        ("jacobian", double, np.ones(0), np.ones((0, 0))),
        ("jacobian", lambda x: x[:0], np.ones(3), np.ones((0, 3))),
        ("pushforward", double, np.ones(0), np.ones(0)),
        ("pullback", lambda x: x[:0], np.ones(3), np.zeros(3)),
        ("hessian", square_sum, np.ones(0), np.ones((0, 0))),
        ("jacobian", double, np.ones(()), np.array(2.0)),
        ("jacobian", double, np.ones(1), np.array([[2.0]])),
        ("gradient", square_sum, np.ones(()), np.array(2.0)),
        ("hessian", square_sum, np.ones(1), np.array([[2.0]])),
    ],
    ids=[
        "empty gradient",
        "empty jacobian",
        "empty output",
        "empty pushforward",
        "empty pullback",
        "empty hessian",
        "0-d jacobian",
        "1-element jacobian",
        "0-d gradient",
        "1-element hessian",
    ],
)
def test_empty_and_0d_arrays_give_results_of_the_right_shape(
    backend: Any, operator: str, f: Any, x: np.ndarray, expected: np.ndarray
) -> None:
    tangent = {"pushforward": (np.ones(x.shape),), "pullback": (np.ones(f(x).shape),)}.get(operator, ())
    result = getattr(ad, operator)(f, backend, x, *tangent)
    assert isinstance(result, (np.ndarray, np.generic)) and np.shape(result) == expected.shape
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, atol=1e-6)


NAN_INF = np.array([np.nan, np.inf, 1.0])


@pytest.mark.parametrize("backend", (JAX, TORCH), ids=repr)
def test_nan_and_inf_follow_ieee_arithmetic(backend: Any) -> None:
    x = NAN_INF.copy()
    np.testing.assert_array_equal(ad.gradient(square_sum, backend, x), [np.nan, np.inf, 2.0])
    jacobian = ad.jacobian(lambda x: x * x, backend, x)
    np.testing.assert_array_equal(np.diag(jacobian), [np.nan, np.inf, 2.0])
    np.testing.assert_array_equal(
        ad.pushforward(double, backend, np.ones(3), np.array([np.nan, 1.0, 1.0])), [np.nan, 2.0, 2.0]
    )
    np.testing.assert_array_equal(x, NAN_INF)


def test_nan_and_inf_under_finite_differences_give_nan_without_raising() -> None:
    # Every difference involves f(x) = nan: NaN everywhere, as IEEE arithmetic has it. NumPy warns
    # about `inf - inf` in the step (a RuntimeWarning, as for any NumPy code), and raises only
    # where the user asks with `np.errstate` (see the catalogue).
    x = NAN_INF.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gradient = ad.gradient(square_sum, FD, x)
        hessian = ad.hessian(square_sum, FD, x)
    assert np.isnan(gradient).all() and np.isnan(hessian).all()
    np.testing.assert_array_equal(x, NAN_INF)
    # NaN alone raises no warning at all.
    assert np.isnan(ad.gradient(square_sum, FD, np.array([np.nan, 1.0]))).all()


@pytest.mark.parametrize(
    ("x", "c", "kind"),
    [
        (torch.linspace(0.1, 1.0, 3, dtype=torch.float64), np.arange(1.0, 4.0), torch.Tensor),
        (np.linspace(0.1, 1.0, 3), torch.arange(1.0, 4.0, dtype=torch.float64), np.ndarray),
        (np.linspace(0.1, 1.0, 3), jnp.arange(1.0, 4.0, dtype=jnp.float32), np.ndarray),
    ],
    ids=["torch x, NumPy constant", "NumPy x, torch constant", "NumPy x, JAX float32 constant"],
)
@pytest.mark.parametrize("backend", ALL, ids=repr)
def test_contexts_of_another_array_kind_are_converted(backend: Any, x: Any, c: Any, kind: type) -> None:
    before = np.array(np.asarray(c), copy=True)
    jacobian = ad.jacobian(scaled, backend, x, ad.Constant(c))
    assert isinstance(jacobian, kind)
    np.testing.assert_allclose(np.asarray(jacobian), np.diag(np.asarray(c, dtype=np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(c), before)


def _writes_into_x(x: Any) -> Any:
    x[0] = 5.0
    return ad.namespace(x).sum(x * x)


def test_what_happens_when_f_writes_into_x() -> None:
    """anydiff copies nothing: `f` gets the caller's array (finite differences) or a view of its
    memory (torch, through DLPack). Whether `f`'s own writes reach the caller is up to the library:
    JAX arrays are immutable; finite differences and torch let them through (torch's tape then
    refuses to differentiate, but the preparation has already run `f` once, on the shared memory).
    anydiff itself never writes into `x`: every other test here checks that."""
    x = np.ones(3)
    ad.gradient(_writes_into_x, FD, x)
    assert x[0] == 5.0  # f's write, to the array f was given
    x = np.ones(3)
    with pytest.raises(TypeError, match="JAX arrays are immutable"):
        ad.gradient(_writes_into_x, JAX, x)
    np.testing.assert_array_equal(x, np.ones(3))
    with pytest.raises(
        ad.FunctionNotDifferentiableError,
        match=(
            r"gradient: `f` wrote in place into a torch tensor being differentiated \(.*in-place operation.*\)\. "
            r"Compute new arrays instead"
        ),
    ):
        ad.gradient(_writes_into_x, TORCH, x)
    assert x[0] == 5.0
    x = np.ones(3)
    ad.pushforward(lambda x: x.mul_(2.0), TORCH, x, np.ones(3))
    assert (x > 1.0).all()  # dual numbers share the caller's memory: f's in-place product reached it
