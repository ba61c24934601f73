"""SciPy's real solvers, driven through anydiff on every core backend, reach the known optima."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse.linalg

import anydiff as ad
from anydiff.scipy import Objective, Residuals, minimize

BACKENDS = [b for b in (ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch()) if ad.check_available(b)]


def rosenbrock(x):
    return ad.namespace(x).sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


X0 = np.array([1.3, 0.7, 0.8, 1.9])  # SciPy's own Rosenbrock start: every method reaches (1, 1, 1, 1)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
@pytest.mark.parametrize("method", ["BFGS", "Newton-CG", "trust-constr", "trust-krylov", "trust-exact"])
def test_minimize_rosenbrock(backend, method):
    if method == "trust-exact" and isinstance(backend, ad.AutoFiniteDiff):
        pytest.skip("finite-difference Hessians are too rough for trust-exact's convergence test")
    options = {"maxiter": 2000} if method != "trust-constr" else {"maxiter": 3000, "gtol": 1e-10, "xtol": 1e-12}
    result = minimize(rosenbrock, backend, X0, method=method, options=options)
    np.testing.assert_allclose(result.x, np.ones(4), atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_objective_callables_are_numpy_float64_and_share_evaluations(backend):
    calls = []

    def counted(x):
        calls.append(1)
        return rosenbrock(x)

    objective = Objective(counted, backend, np.zeros(4, dtype=np.float32))
    x = np.array([0.5, 0.2, -0.1, 0.3])
    y, g = objective.fun(x), objective.jac(x)
    assert isinstance(y, float) and g.dtype == np.float64 and isinstance(g, np.ndarray)
    before = len(calls)
    objective.fun(x), objective.jac(x)
    assert len(calls) == before, "fun and jac at the same point reuse one evaluation"
    h = objective.hess(x)
    assert h.shape == (4, 4) and h.dtype == np.float64
    np.testing.assert_allclose(objective.hessp(x, np.ones(4)), h @ np.ones(4), rtol=1e-4, atol=1e-4)


def decay(p, t, data):
    xp = ad.namespace(p)
    return p[0] * xp.exp(-p[1] * t) + p[2] - data


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_least_squares_trf_fit(backend):
    t = np.linspace(0.0, 3.0, 40)
    data = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.01 * np.sin(7 * t)
    residuals = Residuals(decay, backend, np.ones(3), ad.Constant(t), ad.Constant(data))
    fit = scipy.optimize.least_squares(residuals.fun, np.ones(3), jac=residuals.jac, method="trf")
    reference = scipy.optimize.least_squares(decay, np.ones(3), args=(t, data), method="trf", xtol=1e-12, ftol=1e-12)
    np.testing.assert_allclose(fit.x, reference.x, rtol=1e-5)
    assert fit.njev < fit.nfev + 1


def bratu(u, h):
    """The 1-D Bratu problem -u'' = e^u on (0, 1), u = 0 at both ends, centred differences."""
    xp = ad.namespace(u)
    zero = xp.zeros((1,), dtype=u.dtype)
    padded = xp.concat([zero, u, zero])
    return (2 * u - padded[:-2] - padded[2:]) / h**2 - xp.exp(u)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_root_and_jacobian_free_newton_krylov(backend):
    n = 30
    h = 1.0 / (n + 1)
    residuals = Residuals(bratu, backend, np.zeros(n), ad.Constant(h))
    solution = scipy.optimize.root(residuals.fun, np.zeros(n), jac=residuals.jac, method="hybr")
    assert solution.success
    # The same solve by Newton steps whose linear systems GMRES solves with J·v products only.
    u = np.zeros(n)
    for _ in range(10):
        r = residuals.fun(u)
        if np.linalg.norm(r) < 1e-9:
            break
        step, info = scipy.sparse.linalg.gmres(ad.jacobian_operator(bratu, backend, u, ad.Constant(h)), -r, rtol=1e-8)
        assert info == 0
        u = u + step
    np.testing.assert_allclose(u, solution.x, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_linear_operators_against_dense_matrices(backend):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 6)
    op = ad.jacobian_operator(bratu, backend, x, ad.Constant(0.5))
    dense = ad.jacobian(bratu, backend, x, ad.Constant(0.5))
    v, u, block = rng.normal(size=6), rng.normal(size=6), rng.normal(size=(6, 3))
    np.testing.assert_allclose(op.matvec(v), dense @ v, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(op.rmatvec(u), u @ dense, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(op.matmat(block), dense @ block, rtol=1e-6, atol=1e-6)
    lsqr = scipy.sparse.linalg.lsqr(op, dense @ v, atol=1e-12, btol=1e-12)[0]
    np.testing.assert_allclose(lsqr, v, rtol=1e-4, atol=1e-4)

    hess = ad.hessian_operator(rosenbrock, backend, X0)
    dense_h = ad.hessian(rosenbrock, backend, X0)
    np.testing.assert_allclose(hess.matvec(v[:4]), dense_h @ v[:4], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(hess.matmat(block[:4]), dense_h @ block[:4], rtol=1e-4, atol=1e-3)
    # cg on a positive definite Hessian (near the optimum).
    spd = ad.hessian_operator(rosenbrock, backend, np.ones(4))
    solved, info = scipy.sparse.linalg.cg(spd, np.ones(4), rtol=1e-10)
    assert info == 0
    np.testing.assert_allclose(ad.hessian(rosenbrock, backend, np.ones(4)) @ solved, np.ones(4), rtol=1e-3, atol=1e-3)


def test_bad_x0():
    with pytest.raises(TypeError, match=r"anydiff.scipy: `x0` must be a real array; got dtype"):
        Objective(rosenbrock, ad.AutoFiniteDiff(), np.array(["a", "b"]))
