"""A backend registered from outside the package (`tests/external_backend/`, the example of
`docs/new-backend.md`) passes the whole scenario suite on the generic fallbacks alone."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import anydiff as ad
from anydiff.testing import default_scenarios, sparse_scenarios, test_differentiation

pytest.importorskip("torch")
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def external():
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return importlib.import_module("external_backend")


def test_registered_backend_passes_the_default_scenarios(external):
    backend = external.AutoTorchFunc()
    outcomes = test_differentiation(backend, default_scenarios())
    statuses = {o.scenario: o.status for o in outcomes}
    # every scenario works except what `torch.func` cannot do: write into arrays (`f(y, x)`, `Cache`)
    unsupported = {s for s, status in statuses.items() if status == "unsupported"}
    assert unsupported and all("inplace" in s or "cache" in s for s in unsupported), unsupported
    assert {"gradient-vector", "hessian-vector", "hvp-vector"} <= {s for s, st in statuses.items() if st == "works"}


def test_it_computes_sparse_jacobians_and_hessians_inside_autosparse(external):
    outcomes = test_differentiation(ad.AutoSparse(external.AutoTorchFunc()), sparse_scenarios())
    assert {o.status for o in outcomes} == {"works"}


def test_it_is_listed_and_its_results_agree_with_the_builtin_torch_backend(external):
    backend = external.AutoTorchFunc()
    assert ad.check_available(backend) and backend in ad.available_backends()

    def f(x):
        xp = ad.namespace(x)
        return xp.sum(xp.sin(x) * xp.cumulative_sum(x))

    x = np.linspace(0.1, 1.0, 4)
    np.testing.assert_allclose(ad.hessian(f, backend, x), ad.hessian(f, ad.AutoTorch(), x), rtol=1e-12)
    assert ad.prepare_hessian(f, backend, x).info["strategy"] == "forward-over-reverse"


def test_registering_imports_no_library():
    # the backend class and its registration import nothing: torch loads on first use
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); import external_backend, anydiff as ad; "
        "assert 'torch' not in sys.modules; ad.check_available(external_backend.AutoTorchFunc()); "
        "assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
