"""What every backend's own test file checks, written once: `BackendSuite`.

A backend's test file subclasses it, names the backend and says what is particular to it:

    class TestMyGrad(BackendSuite):
        backend = ad.AutoMyGrad()
        tensor_kind = "mygrad"
        namespace_cases = {...}

and gets, parametrised by `pytest_generate_tests`: the operators against closed forms at two
points with one prep, functions independent of `x`, a two-argument `f` refused (for a backend
without `mutation`), the missing-library message naming the extra, the array-API namespace's
cases against NumPy, and the suites every backend passes (the scenarios, JAX and torch inputs
among them, the sparse scenarios, the property tests against the JAX reference, and the
bad-input catalogue). `substitutes` and `wave` serve the tests of its `DifferentiateWith` host.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pytest

import anydiff as ad
from anydiff.extend import array_kinds, implementation, registered_backends
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation, with_kind
from closed_forms import curve, energy, energy_gradient, energy_hessian, stretch, stretch_jacobian

X = np.array([0.3, -0.7, 1.1, 0.4, -0.2])
X2 = np.array([-0.5, 0.8, 0.1, -1.3, 0.6])
T = np.array([0.5, -1.0, 2.0, 0.25, 1.5])
U = np.array([1.0, 0.5, -0.5, 2.0, -1.0])

#: operator -> (f, x, tangents, closed form at a point)
CLOSED_FORMS: dict[str, tuple[Callable[..., Any], Any, Any, Callable[[Any], Any]]] = {
    "gradient": (energy, X, None, energy_gradient),
    "jacobian": (stretch, X, None, stretch_jacobian),
    "pushforward": (stretch, X, T, lambda x: stretch_jacobian(x) @ T),
    "pullback": (stretch, X, U, lambda x: U @ stretch_jacobian(x)),
    "derivative": (curve, 0.7, None, lambda t: np.array([np.cos(t), 3 * t**2])),
    "second_derivative": (curve, 0.7, None, lambda t: np.array([-np.sin(t), 6 * t])),
    "hvp": (energy, X, T, lambda x: energy_hessian(x) @ T),
    "hessian": (energy, X, None, energy_hessian),
}


def close(got: Any, want: Any, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def _catalogue() -> Any:
    try:
        import test_bad_inputs
    except pytest.skip.Exception:  # it needs JAX and torch
        return None
    return test_bad_inputs


CATALOGUE = _catalogue()
GENERAL = [] if CATALOGUE is None else [bad for bad in CATALOGUE.CATALOGUE if bad.backends == CATALOGUE.ALL]


class BackendSuite:
    """The checks every backend passes; a subclass named `Test...` sets `backend` and the rest."""

    backend: ClassVar[Any]
    #: absolute error allowed against each operator's closed form (others: 1e-12)
    atol: ClassVar[Mapping[str, float]] = {}
    #: words of the scenario labels the backend may refuse (`ad.UnsupportedError`); none: all work
    unsupported: ClassVar[tuple[str, ...]] = ()
    #: random programs per dtype in the property tests
    property_examples: ClassVar[int] = 15
    #: the array kind `f` receives, and the namespace's cases: label -> `case(xp, v)`
    tensor_kind: ClassVar[str | None] = None
    namespace_cases: ClassVar[Mapping[str, Callable[[Any, Any], Any]]] = {}

    def known_bugs(self, properties: Any) -> list:
        """The backend's entries of `test_properties.KNOWN_BUGS` (failures of the library itself)."""
        return []

    def pytest_generate_tests(self, metafunc: Any) -> None:
        values = {"operator": list(CLOSED_FORMS), "label": list(self.namespace_cases), "bad": GENERAL}
        for name, found in values.items():
            if name in metafunc.fixturenames:
                ids = [bad.name for bad in found] if name == "bad" else None
                metafunc.parametrize(name, found, ids=ids)

    # -- the operators ------------------------------------------------------------------------

    def test_operator_matches_closed_form_at_two_points(self, operator: str) -> None:
        f, x, tangents, expected = CLOSED_FORMS[operator]
        args = (x,) if tangents is None else (x, tangents)
        prep = getattr(ad, f"prepare_{operator}")(f, self.backend, *args)
        for point in (x, X2 if isinstance(x, np.ndarray) else -1.3):
            args = (point,) if tangents is None else (point, tangents)
            result = getattr(ad, operator)(f, self.backend, *args, prep=prep)
            assert isinstance(result, np.ndarray) and result.dtype == np.float64
            close(result, expected(np.asarray(point)), rtol=0, atol=self.atol.get(operator, 1e-12))

    def test_function_independent_of_x_gives_zeros(self) -> None:
        close(ad.gradient(lambda x: ad.namespace(x).sum(x * 0.0) + 2.0, self.backend, X), np.zeros(5))
        close(ad.jacobian(lambda x: ad.namespace(x).ones((3,)), self.backend, X), np.zeros((3, 5)))
        close(ad.hessian(lambda x: ad.namespace(x).sum(x), self.backend, X), np.zeros((5, 5)))

    def test_two_argument_functions_are_unsupported(self) -> None:
        if implementation(self.backend).mutation:
            pytest.skip(f"{self.backend!r} differentiates two-argument functions")

        def writes(y: Any, x: Any) -> None:
            y[...] = x

        name = type(self.backend).__name__
        with pytest.raises(ad.UnsupportedError, match=rf"{name}\(\) cannot differentiate a two-argument"):
            ad.pushforward(writes, self.backend, X, T, y=np.zeros(5))

    def test_missing_library_names_the_extra(self, monkeypatch: Any) -> None:
        library = registered_backends()[type(self.backend)]
        monkeypatch.setitem(sys.modules, library, None)  # `import <library>` now fails
        monkeypatch.delitem(sys.modules, f"{type(self.backend).__module__}.impl", raising=False)
        implementation.cache_clear()
        try:
            with pytest.raises(ad.BackendNotInstalledError, match=rf"pip install 'anydiff\[{self.backend.extra}\]'"):
                ad.gradient(lambda x: energy(x), self.backend, X)  # a new `f`: no prep of it is remembered
        finally:
            implementation.cache_clear()

    # -- the array-API namespace ----------------------------------------------------------------

    def test_namespace_values_and_derivatives(self, label: str) -> None:
        import array_api_compat.numpy as npx

        case, kind = self.namespace_cases[label], array_kinds()[self.tensor_kind]  # type: ignore[index]
        v = np.array([0.3, -0.6, 0.9])
        tensor = kind.from_numpy(v)
        result = case(ad.namespace(tensor), tensor)
        assert kind.is_array(type(result))
        close(kind.to_numpy(result), case(npx, v))

        def f(v: Any) -> Any:
            xp = ad.namespace(v)
            return xp.sum(xp.sin(case(xp, v)))

        close(ad.gradient(f, self.backend, v), ad.gradient(f, ad.AutoFiniteDiff(), v), rtol=1e-6, atol=1e-8)

    # -- the suites every backend passes ------------------------------------------------------------

    def test_scenarios(self) -> None:
        # as in tests/test_scenarios.py, with JAX and torch inputs converted and back
        foreign = [
            with_kind(s, kind)
            for s in default_scenarios()
            if s.label in ("pushforward-vector-to-vector-batched", "second_derivative-vector-constant")
            for kind in ("jax", "torch")
            if importlib.util.find_spec(kind) is not None
        ]
        outcomes = test_differentiation(
            [self.backend], default_scenarios() + foreign, allow_unsupported=bool(self.unsupported)
        )
        assert {o.status for o in outcomes} == ({"works", "unsupported"} if self.unsupported else {"works"})
        refused = {o.scenario for o in outcomes if o.status == "unsupported"}
        assert all(any(word in label for word in self.unsupported) for label in refused)

    def test_sparse_scenarios(self) -> None:
        outcomes = test_differentiation([ad.AutoSparse(self.backend)], sparse_scenarios(), allow_unsupported=False)
        assert {o.status for o in outcomes} == {"works"}

    def test_property_tests(self, monkeypatch: Any) -> None:
        properties = pytest.importorskip("test_properties")  # random programs against the JAX reference
        known = self.known_bugs(properties)
        if known:
            monkeypatch.setitem(properties.KNOWN_BUGS, type(self.backend), known)
        properties.test_backend_agrees_with_the_reference(self.backend, self.property_examples, ("float64", "float32"))

    def test_bad_input_catalogue(self, bad: Any) -> None:
        CATALOGUE.test_bad_input_raises_a_clear_error_and_mutates_nothing(bad, self.backend)

    def test_an_exception_of_f_passes_through(self) -> None:
        if CATALOGUE is None:
            pytest.skip("the catalogue needs JAX and torch")
        CATALOGUE.test_an_exception_of_f_passes_through_as_the_same_object(self.backend)


# -- for the tests of a DifferentiateWith host -------------------------------------------------------

#: the constant of `wave`
C = np.array([1.0, 2.0, -0.5, 3.0, 0.25])


def wave(x: Any, c: Any) -> Any:
    """`c sin x`, written for any substitute's arrays."""
    return c * ad.namespace(x).sin(x)


def substitutes(fd_atol: float) -> list[tuple[Any, float]]:
    """`(substitute, absolute error allowed)`: finite differences, and exact substitutes of other
    libraries where installed."""
    found = [(ad.AutoFiniteDiff(), fd_atol)]
    for module, backend in (("jax", "AutoJAX"), ("torch", "AutoTorch"), ("autograd", "AutoAutograd")):
        if importlib.util.find_spec(module) is not None:
            found.append((getattr(ad, backend)(), 1e-13))
    return found
