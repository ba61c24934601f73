"""Functions written as users write them, run on every backend (issue 17, "Real user code").

Each backend must give the right derivative or, at once, a typed error that names the cause in
the user's code and the fix; never a wrong number and never a raw library error. The cases:

- Jacobians agree with the stacked pullbacks and pushforwards they are made of, and with a
  reference computed without any backend (the complex step on NumPy, or a closed form), over a
  grammar of functions that move, pick and reduce elements (`flip`, `roll`, slices, indexing,
  `concat`, reductions along axes).
- Python numbers as tangents and cotangents of 0-d `x` and `f(x)`, in the dtype of `x` / `f(x)`.
- Shapes are Python ints inside `f`, also where the library's own are symbolic (PyTensor).
- Negative-step slices (`x[::-1]`) differentiate, or say to use `xp.flip` (torch).
- Closures over NumPy data (`x - data`) differentiate where the library mixes NumPy arrays with
  its own; elsewhere the error shows `ad.Constant(data)` and `xp.asarray(data)`.

References never come from the backend under test.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import anydiff as ad

_API_BACKENDS = (
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoTorch",
    "AutoTensorFlow",
    "AutoAutograd",
    "AutoMLX",
    "AutoTinygrad",
    "AutoSymPy",
    "AutoCasADi",
    "AutoPyTensor",
)
_AVAILABLE = {type(b) for b in ad.available_backends()}
BACKENDS = [
    pytest.param(
        getattr(ad, name)(),
        id=f"{name}()",
        marks=pytest.mark.skipif(
            not ad.check_available(getattr(ad, name)()), reason=f"{name}() is not installed or has no device"
        )
        if getattr(ad, name) in _AVAILABLE
        else pytest.mark.skip(reason=f"{name}() is not installed"),
    )
    for name in _API_BACKENDS
]


def tolerance(backend: Any) -> dict[str, float]:
    """Finite differences are accurate to about 1e-7, MLX's float64 `sin` and `cos` to about 1e-7
    (tests/test_backend_mlx.py); every other backend to rounding."""
    if isinstance(backend, (ad.AutoFiniteDiff, ad.AutoMLX)):
        return {"rtol": 1e-6, "atol": 1e-6}
    return {"rtol": 1e-10, "atol": 1e-12}


def quiet(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)` with the libraries' own warnings silenced (TensorFlow's retracing notes, ...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args)


# -- Jacobians agree with the products they are made of ------------------------------------------


def complex_step_jacobian(f: Callable[[Any], Any], x: np.ndarray, h: float = 1e-30) -> np.ndarray:
    """The Jacobian of `f` at `x` by the complex step on NumPy: exact to rounding, no backend."""
    columns = []
    for j in range(x.size):
        step = np.zeros(x.size, dtype=complex)
        step[j] = 1j * h
        columns.append(np.imag(np.asarray(f(x + step.reshape(x.shape)))) / h)
    y_shape = np.shape(f(x))
    return np.stack(columns, axis=-1).reshape(y_shape + x.shape)


def max_axis0_jacobian(x: np.ndarray) -> np.ndarray:
    """`max(x, axis=0)` picks one element per column (the values are distinct)."""
    jac = np.zeros(x.shape[1:] + x.shape)
    for j in range(x.shape[1]):
        jac[j, np.argmax(x[:, j]), j] = 1.0
    return jac


@dataclass(frozen=True)
class Rearranging:
    """A function that moves, picks or reduces elements, with its reference Jacobian."""

    name: str
    f: Callable[[Any], Any]
    x: np.ndarray
    reference: Callable[[np.ndarray], np.ndarray] | None = None  # the complex step when None


def _xp(x: Any) -> Any:
    return ad.namespace(x)


VECTOR = np.array([0.3, -1.2, 0.7, 2.1, -0.4])
MATRIX = np.array([[0.5, -1.1, 0.9, 1.7], [2.2, 0.1, -0.6, 1.3], [-0.8, 1.9, 0.4, -1.5]])
INDICES = np.array([4, 0, 2, 2])

GRAMMAR = [
    # the case that was wrong: a linear function whose Jacobian tinygrad gave as zeros
    Rearranging("x + flip(x)", lambda x: x + _xp(x).flip(x, axis=0), VECTOR),
    Rearranging("sin(x) * flip(x)", lambda x: _xp(x).sin(x) * _xp(x).flip(x, axis=0), VECTOR),
    Rearranging("roll(x, 2) - x", lambda x: _xp(x).roll(x, 2) - x, VECTOR),
    Rearranging("roll(x, -1) * x", lambda x: _xp(x).roll(x, -1) * x, VECTOR),
    Rearranging("x[1:4]", lambda x: x[1:4] * 1.0, VECTOR),
    Rearranging("x[1:] * x[:-1]", lambda x: x[1:] * x[:-1], VECTOR),
    Rearranging("x[::2] ** 2", lambda x: x[::2] ** 2, VECTOR),
    Rearranging("x[i] for ints", lambda x: _xp(x).stack([x[0] * x[3], x[-1], 2.0 * x[2]]), VECTOR),
    Rearranging("take(x, indices)", lambda x: _xp(x).take(x, _xp(x).asarray(INDICES), axis=0) * 3.0, VECTOR),
    Rearranging("take(x, indices) ** 2", lambda x: _xp(x).take(x, _xp(x).asarray(INDICES), axis=0) ** 2, VECTOR),
    Rearranging("concat([x, sin(x[:2])])", lambda x: _xp(x).concat([x, _xp(x).sin(x[:2])]), VECTOR),
    Rearranging("concat([x[3:], x[:3]])", lambda x: _xp(x).concat([x[3:], x[:3]]), VECTOR),
    Rearranging("cumulative_sum(x)", lambda x: _xp(x).cumulative_sum(x), VECTOR),
    Rearranging("sum(x ** 2, axis=0)", lambda x: _xp(x).sum(x**2, axis=0), MATRIX),
    Rearranging("sum(x, axis=1)", lambda x: _xp(x).sum(x, axis=1), MATRIX),
    Rearranging("prod(x, axis=1)", lambda x: _xp(x).prod(x, axis=1), MATRIX),
    Rearranging("max(x, axis=0)", lambda x: _xp(x).max(x, axis=0), MATRIX, max_axis0_jacobian),
    Rearranging("mean(x, axis=1, keepdims) * x", lambda x: _xp(x).mean(x, axis=1, keepdims=True) * x, MATRIX),
    Rearranging("flip(x, axis=1) * x", lambda x: _xp(x).flip(x, axis=1) * x, MATRIX),
    Rearranging("roll(x, 1, axis=0) + x", lambda x: _xp(x).roll(x, 1, axis=0) + x, MATRIX),
    Rearranging("x[1:, ::2]", lambda x: x[1:, ::2] + 0.0, MATRIX),
    Rearranging("x[:, 2]", lambda x: x[:, 2] * x[:, 0], MATRIX),
    Rearranging("reshape(x, (4, 3))", lambda x: _xp(x).reshape(x, (4, 3)) * 2.0, MATRIX),
    Rearranging("matrix_transpose(x) @ x", lambda x: _xp(x).matrix_transpose(x) @ x, MATRIX),
    Rearranging("concat([x, x[:, :1] ** 2], axis=1)", lambda x: _xp(x).concat([x, x[:, :1] ** 2], axis=1), MATRIX),
    Rearranging("stack([x[0], x[2]], axis=1)", lambda x: _xp(x).stack([x[0], x[2]], axis=1), MATRIX),
]


def _stacked_pullbacks(f: Callable[[Any], Any], backend: Any, x: np.ndarray, y_shape: tuple) -> np.ndarray:
    m = int(np.prod(y_shape))
    seeds = tuple(np.eye(m).reshape((m, *y_shape)))
    rows = ad.pullback(f, backend, x, seeds)
    return np.stack([np.asarray(r) for r in rows]).reshape(y_shape + x.shape)


def _stacked_pushforwards(f: Callable[[Any], Any], backend: Any, x: np.ndarray, y_shape: tuple) -> np.ndarray:
    seeds = tuple(np.eye(x.size).reshape((x.size, *x.shape)))
    columns = ad.pushforward(f, backend, x, seeds)
    return np.stack([np.asarray(c) for c in columns], axis=-1).reshape(y_shape + x.shape)


@pytest.mark.parametrize("backend", BACKENDS)
def test_jacobian_agrees_with_pullbacks_pushforwards_and_reference(backend):
    """The class of bug behind tinygrad's zero Jacobian of `x + flip(x)`: an operator's result
    that disagrees with the products it is built from. Every row is checked on every backend."""
    wrong = []
    for case in GRAMMAR:
        reference = case.reference(case.x) if case.reference else complex_step_jacobian(case.f, case.x)
        y_shape = reference.shape[: reference.ndim - case.x.ndim]
        results = {
            "jacobian": lambda f, x, _: ad.jacobian(f, backend, x),
            "stacked pullbacks": lambda f, x, y_shape: _stacked_pullbacks(f, backend, x, y_shape),
            "stacked pushforwards": lambda f, x, y_shape: _stacked_pushforwards(f, backend, x, y_shape),
        }
        for how, compute in results.items():
            got = np.asarray(quiet(compute, case.f, case.x, y_shape))
            if got.shape != reference.shape or not np.allclose(got, reference, **tolerance(backend)):
                wrong.append(f"{case.name}: {how} gives\n{got}\nexpected\n{reference}")
    assert not wrong, "\n\n".join(wrong)


# -- Python numbers as tangents -----------------------------------------------------------------


def cubes(x: Any) -> Any:
    """`sum(x**3) / 3`: gradient `x**2`, Hessian `diag(2 x)`."""
    return _xp(x).sum(x**3) / 3.0


def cube(s: Any) -> Any:
    """`s**3`: derivative `3 s**2`, second derivative `6 s`."""
    return s**3


def exact(backend: Any, dtype: Any) -> dict[str, float]:
    """Tolerances for polynomials: finite differences in float32 are good to about 1e-2."""
    if isinstance(backend, ad.AutoFiniteDiff):
        return {"rtol": 1e-2 if dtype == np.float32 else 1e-6, "atol": 1e-6}
    return {"rtol": 1e-6 if dtype == np.float32 else 1e-12, "atol": 0.0}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_python_numbers_as_cotangents(backend, dtype):
    """`ad.pullback(f, b, x, 1.0)` for a scalar `f`: the number takes the dtype of `f(x)`."""
    x = VECTOR.astype(dtype)
    for u, scales in ((1.0, (1.0,)), (2, (2.0,)), ((1.0, -3), (1.0, -3.0))):
        result = quiet(lambda u=u: ad.pullback(cubes, backend, x, u))
        for r, scale in zip(result if isinstance(u, tuple) else (result,), scales, strict=True):
            assert isinstance(r, np.ndarray) and r.dtype == dtype, (u, type(r), getattr(r, "dtype", None))
            np.testing.assert_allclose(r, scale * x.astype(np.float64) ** 2, **exact(backend, dtype))
    y, g = quiet(lambda: ad.value_and_pullback(cubes, backend, x, 1.0))
    np.testing.assert_allclose(g, x.astype(np.float64) ** 2, **exact(backend, dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_numbers_as_tangents_of_a_scalar_input(backend):
    """`ad.pushforward(f, b, 2.0, 1.0)`, ints too, and a 0-d float32 `x`: the dtype of `x`."""
    for x, dtype in ((2.0, np.float64), (np.asarray(2.0, dtype=np.float32), np.float32)):
        for t in (1.0, 1, 2):
            r = quiet(lambda x=x, t=t: ad.pushforward(cube, backend, x, t))
            assert np.asarray(r).dtype == dtype, (x, t, np.asarray(r).dtype)
            np.testing.assert_allclose(r, 12.0 * t, **exact(backend, dtype))
        g, h = quiet(lambda x=x: ad.gradient_and_hvp(lambda s: s**3 / 3.0, backend, x, 1))
        np.testing.assert_allclose(h, 4.0, **exact(backend, dtype))


@pytest.mark.parametrize("backend", BACKENDS)
def test_python_number_cotangents_with_a_prep(backend):
    """A prep serves a number after an array and an array after a number."""
    prep = quiet(lambda: ad.prepare_pullback(cubes, backend, VECTOR, 1.0))
    for u in (np.asarray(2.0), 3.0, 4):
        r = quiet(lambda u=u: ad.pullback(cubes, backend, VECTOR, u, prep=prep))
        np.testing.assert_allclose(r, float(u) * VECTOR**2, **exact(backend, np.float64))


def test_python_number_tangents_take_the_kind_and_dtype_of_x():
    torch = pytest.importorskip("torch")
    x = torch.tensor(VECTOR, dtype=torch.float32)
    for backend in (ad.AutoTorch(), ad.AutoFiniteDiff()):
        r = ad.pullback(cubes, backend, x, 1.0)
        assert isinstance(r, torch.Tensor) and r.dtype == torch.float32
        np.testing.assert_allclose(r.numpy(), VECTOR**2, rtol=1e-2 if isinstance(backend, ad.AutoFiniteDiff) else 1e-6)


def test_booleans_and_wrong_shapes_are_not_number_tangents():
    with pytest.raises(TypeError, match="the tangent must be the same kind of array as `x` \\(numpy\\); got bool"):
        ad.pullback(cubes, ad.AutoFiniteDiff(), VECTOR, True)
    with pytest.raises(ValueError, match=r"the tangent must have the shape of `x`, \(5,\); got \(\)"):
        ad.pushforward(cubes, ad.AutoFiniteDiff(), VECTOR, 1.0)


# -- Shapes are Python ints ---------------------------------------------------------------------


def grid_roughness(x: Any, seen: list) -> Any:
    """A flat vector read as a square grid, its side computed from the shape, as NumPy code does."""
    xp = _xp(x)
    n = int(round(x.shape[0] ** 0.5))
    grid = xp.reshape(x, (n, n))
    steps = grid[1:, :] - grid[:-1, :]
    seen.append((*x.shape, *grid.shape, *steps.shape, grid.shape[-1], steps.shape[0]))
    total = xp.sum(grid[:, 0] ** 2)
    for i in range(steps.shape[0]):  # a loop over a dimension
        total = total + xp.sum(steps[i] ** 3)
    return total


@pytest.mark.parametrize("backend", BACKENDS)
def test_shapes_are_python_ints(backend):
    """anydiff prepares for one shape, so `f` sees it as Python ints on every backend, also
    under symbolic tracing (PyTensor's own shapes are symbolic variables)."""
    seen: list = []
    x = np.linspace(-1.0, 1.0, 9) ** 2
    g = quiet(lambda: ad.gradient(lambda x: grid_roughness(x, seen), backend, x))
    reference = complex_step_jacobian(lambda x: grid_roughness(x, []), x)
    np.testing.assert_allclose(g, reference, **tolerance(backend))
    expected = (9, 3, 3, 2, 3, 3, 2)
    assert seen and all(dims == expected and all(type(d) is int for d in dims) for dims in seen), seen


# -- Negative-step slices -----------------------------------------------------------------------

NEGATIVE_STEPS = [
    Rearranging("x[::-1] * x", lambda x: x[::-1] * x, VECTOR),
    Rearranging("x[::-2] ** 2", lambda x: x[::-2] ** 2, VECTOR),
    Rearranging("x[3:0:-1]", lambda x: x[3:0:-1] + 0.0, VECTOR),
    Rearranging("x[:, ::-1] * x", lambda x: x[:, ::-1] * x, MATRIX),
]


def test_flip_then_slice_is_a_negative_step():
    """The rewrite the torch error teaches: `x[::-k]` is `flip(x)[::k]`."""
    for k in (1, 2, 3):
        for n in (4, 5, 6):
            x = np.arange(float(n))
            np.testing.assert_array_equal(x[::-k], np.flip(x, axis=0)[::k])


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_step_slices(backend):
    """`x[::-1]` is array-API indexing: it differentiates, or (torch tensors have no negative
    steps) the error says to use `xp.flip`."""
    for case in NEGATIVE_STEPS:
        reference = complex_step_jacobian(case.f, case.x)
        if isinstance(backend, ad.AutoTorch):
            with pytest.raises(ad.UnsupportedError, match=r"negative step.*xp\.flip\(x, axis=0\)\[::2\]"):
                ad.jacobian(case.f, backend, case.x)
            continue
        for how, compute in (("jacobian", ad.jacobian), ("pullbacks", _stacked_pullbacks)):
            args = (case.f, backend, case.x) + (() if how == "jacobian" else (reference.shape[: -case.x.ndim],))
            np.testing.assert_allclose(
                quiet(compute, *args), reference, err_msg=f"{case.name}: {how}", **tolerance(backend)
            )


# -- Closures over NumPy data -------------------------------------------------------------------

DATA = np.linspace(0.0, 1.0, 5)


@dataclass(frozen=True)
class Closure:
    """An `f` that captures the NumPy array `DATA`, with its gradient (or derivative) in closed form."""

    name: str
    f: Callable[[Any], Any]
    derivative: Callable[[np.ndarray], np.ndarray]
    x: Any = None  # `VECTOR` when None


CLOSURES = [
    Closure("x - data", lambda x: _xp(x).sum((x - DATA) ** 2), lambda x: 2 * (x - DATA)),
    Closure("data - x", lambda x: _xp(x).sum((DATA - x) ** 2), lambda x: 2 * (x - DATA)),
    Closure("x * data", lambda x: _xp(x).sum(x * DATA * x), lambda x: 2 * DATA * x),
    Closure("data * x", lambda x: _xp(x).sum(DATA * x * x), lambda x: 2 * DATA * x),
    Closure("x * (data - x)", lambda x: _xp(x).sum(x * (DATA - x)), lambda x: DATA - 2 * x),
    Closure("xp.multiply(x, data)", lambda x: _xp(x).sum(_xp(x).multiply(x * x, DATA)), lambda x: 2 * DATA * x),
    Closure("xp.multiply(data, x)", lambda x: _xp(x).sum(_xp(x).multiply(DATA, x * x)), lambda x: 2 * DATA * x),
    Closure(
        "xp.where(data > 0.3, ...)",
        lambda x: _xp(x).sum(_xp(x).where(DATA > 0.3, x * x, x)),
        lambda x: np.where(DATA > 0.3, 2 * x, 1.0),
    ),
    Closure("s - data, scalar s", lambda s: s - DATA, lambda s: np.ones_like(DATA), 0.5),
]

# What each library cannot do with a NumPy operand, so that anydiff must refuse it: torch tensors
# never mix with NumPy arrays; tinygrad's operators do not take them (its namespace does); a
# NumPy array on the left of an operator makes NumPy compute it, taking MLX and tinygrad arrays
# apart.
CLOSURE_REFUSALS = {
    "AutoTorch": {c.name for c in CLOSURES},
    "AutoTinygrad": {"x - data", "data - x", "x * data", "data * x", "x * (data - x)", "s - data, scalar s"},
    "AutoMLX": {"data - x", "data * x", "x * (data - x)"},
}


def _closure_results(case: Closure, backend: Any) -> dict[str, Any]:
    if case.x is not None:
        return {"derivative": ad.derivative(case.f, backend, case.x)}
    return {
        "gradient": ad.gradient(case.f, backend, VECTOR),
        "pushforward": ad.pushforward(case.f, backend, VECTOR, np.ones_like(VECTOR)),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_closures_over_numpy_data(backend):
    """`f` capturing a NumPy array works where the library mixes it with its arrays; elsewhere a
    `FunctionNotDifferentiableError` names the cause and both fixes. Never a wrong number."""
    refused = CLOSURE_REFUSALS.get(type(backend).__name__, set())
    library = {"AutoTorch": "torch", "AutoTinygrad": "tinygrad", "AutoMLX": "MLX"}.get(type(backend).__name__)
    for case in CLOSURES:
        expected = case.derivative(VECTOR if case.x is None else case.x)
        if case.name in refused:
            message = rf"a NumPy array meets the {library} arrays .*ad\.Constant\(data\).*xp\.asarray\(data\)"
            with pytest.raises(ad.FunctionNotDifferentiableError, match=message):
                quiet(_closure_results, case, backend)
            continue
        results = quiet(_closure_results, case, backend)
        for operator, got in results.items():
            want = np.sum(expected) if operator == "pushforward" else expected
            np.testing.assert_allclose(got, want, err_msg=f"{case.name}: {operator}", **tolerance(backend))


def distance(x: Any, data: Any) -> Any:
    return _xp(x).sum((data - x) ** 2)


def distance_converted(x: Any) -> Any:
    xp = _xp(x)
    return xp.sum((xp.asarray(DATA) - x) ** 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_two_fixes_of_a_closure_work_everywhere(backend):
    """What the error teaches: `ad.Constant(data)`, or `xp.asarray(data)` inside `f`."""
    expected = 2 * (VECTOR - DATA)
    for how, call in (
        ("Constant", lambda: ad.gradient(distance, backend, VECTOR, ad.Constant(DATA))),
        ("xp.asarray", lambda: ad.gradient(distance_converted, backend, VECTOR)),
        ("xp.asarray, pushforward", lambda: ad.pushforward(distance_converted, backend, VECTOR, np.ones(5))),
    ):
        want = np.sum(expected) if "pushforward" in how else expected
        np.testing.assert_allclose(quiet(call), want, err_msg=how, **tolerance(backend))


def test_numpy_calls_on_torch_tensors_fail_in_every_mode():
    """Forward mode's dual numbers let NumPy read them, losing the tangent: a `numpy.` call on `x`
    gave zero derivatives. Preparation now runs `f` on a tensor that requires grad, where it
    fails with the message about NumPy calls (not the one about captured NumPy arrays)."""
    pytest.importorskip("torch")
    torch = ad.AutoTorch()

    def numpy_inside(x: Any) -> Any:
        return _xp(x).asarray(np.sin(x))

    message = r"took a value out of a torch tensor.*instead of `numpy.` calls"
    for call in (
        lambda: ad.pushforward(numpy_inside, torch, VECTOR, np.ones(5)),
        lambda: ad.derivative(numpy_inside, torch, 0.5),
        lambda: ad.jacobian(numpy_inside, ad.AutoTorch(mode="forward"), VECTOR),
        lambda: ad.pullback(numpy_inside, torch, VECTOR, np.ones(5)),
    ):
        with pytest.raises(ad.FunctionNotDifferentiableError, match=message):
            quiet(call)
