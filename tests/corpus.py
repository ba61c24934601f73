"""A corpus of realistic functions, written as their authors would, with independent references.

Each function is ordinary user code: closures over NumPy data, Python numbers, Python loops,
`where` for branches, `@` for products. Each `Entry` holds the function, a point `x` away from
kinks and ties, and its derivatives computed independently of anydiff: closed forms (SciPy's own
`rosen_der` and `rosen_hess` for Rosenbrock), hand-written backpropagation for the MLP, and a
complex step (`complex_jacobian`, NumPy on complex arrays) where a closed form would be another
copy of the program (the RK4 loop, Kepler's Newton iterations).

    anydiff compare tests/corpus.py:rk4_lotka_volterra --x 4

Sources: SciPy's optimization benchmarks (`scipy.optimize.rosen`, the Beale, Rastrigin, Ackley
and Styblinski–Tang functions of its `benchmarks/`), Bayesian logistic regression and a normal
likelihood (as in PyMC/Stan tutorials), a one-hidden-layer MLP, a finite-difference residual of
the Bratu problem, Kepler's equation, the Lotka–Volterra RK4 sensitivity example of the
AbstractDifferentiation paper, log-sum-exp, softmax cross-entropy, the Huber loss, a linear solve
with a small SPD matrix, cumulative sums and gathers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize

import anydiff as ad

__all__ = ["CORPUS", "Entry", "complex_jacobian"]

rng = np.random.default_rng(17)


@dataclass(frozen=True)
class Entry:
    """A corpus function: `f(x)`, the point, and its reference derivatives as functions of `x`.

    `jacobian(x)` is the gradient for a scalar `f`; `hessian(x)` is given for scalar functions
    whose Hessian has a closed form (the second-order operators are checked on those).
    """

    name: str
    source: str
    f: Callable
    x: np.ndarray
    value: Callable
    jacobian: Callable
    hessian: Callable | None = None

    @property
    def scalar(self) -> bool:
        return np.ndim(self.value(self.x)) == 0


def complex_jacobian(f: Callable, x: np.ndarray, h: float = 1e-30) -> np.ndarray:
    """The Jacobian of `f` at `x` by the complex step, on NumPy: exact to rounding for real-analytic `f`."""
    columns = []
    for k in range(x.size):
        z = x.astype(complex)
        z.flat[k] += 1j * h
        columns.append(np.imag(np.asarray(f(z))) / h)
    return np.stack(columns, axis=-1)


# -- SciPy's optimization benchmarks ---------------------------------------------------------------


def rosenbrock(x):
    xp = ad.namespace(x)
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def beale(x):
    return (
        (1.5 - x[0] + x[0] * x[1]) ** 2 + (2.25 - x[0] + x[0] * x[1] ** 2) ** 2 + (2.625 - x[0] + x[0] * x[1] ** 3) ** 2
    )


def _beale_grad(x):
    a, b = x
    t1, t2, t3 = 1.5 - a + a * b, 2.25 - a + a * b**2, 2.625 - a + a * b**3
    return np.array(
        [2 * t1 * (b - 1) + 2 * t2 * (b**2 - 1) + 2 * t3 * (b**3 - 1), 2 * t1 * a + 4 * t2 * a * b + 6 * t3 * a * b**2]
    )


def rastrigin(x):
    xp = ad.namespace(x)
    A = 10
    return A * x.shape[0] + xp.sum(x**2 - A * xp.cos(2 * np.pi * x))


def ackley(x):
    xp = ad.namespace(x)
    n = x.shape[0]
    first = -20.0 * xp.exp(-0.2 * xp.sqrt(xp.sum(x**2) / n))
    return first - xp.exp(xp.sum(xp.cos(2 * np.pi * x)) / n) + 20.0 + np.e


def _ackley_grad(x):
    n = x.size
    r = np.sqrt(np.sum(x**2) / n)
    c = np.exp(np.sum(np.cos(2 * np.pi * x)) / n)
    return 4.0 * np.exp(-0.2 * r) * x / (n * r) + c * 2 * np.pi * np.sin(2 * np.pi * x) / n


def styblinski_tang(x):
    xp = ad.namespace(x)
    return 0.5 * xp.sum(x**4 - 16 * x**2 + 5 * x)


# -- statistics --------------------------------------------------------------------------------------

X_DATA = rng.standard_normal((20, 3))
Y_DATA = (rng.uniform(size=20) < 0.5).astype(float)
SIGMA_PRIOR = 2.0


def logistic_log_posterior(w):
    """Bayesian logistic regression: Bernoulli likelihood of `Y_DATA` and a normal prior on `w`."""
    xp = ad.namespace(w)
    z = X_DATA @ w
    log_likelihood = xp.sum(Y_DATA * z - xp.log1p(xp.exp(z)))
    return log_likelihood - xp.sum(w**2) / (2 * SIGMA_PRIOR**2)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _logistic_grad(w):
    return X_DATA.T @ (Y_DATA - _sigmoid(X_DATA @ w)) - w / SIGMA_PRIOR**2


def _logistic_hess(w):
    s = _sigmoid(X_DATA @ w)
    return -(X_DATA.T * (s * (1 - s))) @ X_DATA - np.eye(w.size) / SIGMA_PRIOR**2


OBSERVED = rng.normal(1.0, 0.5, 30)


def normal_log_likelihood(theta):
    """A normal model's log-likelihood of `OBSERVED` in its mean and log standard deviation."""
    xp = ad.namespace(theta)
    mu, log_sigma = theta[0], theta[1]
    n = OBSERVED.shape[0]
    return -n * log_sigma - xp.sum((OBSERVED - mu) ** 2) / (2 * xp.exp(2 * log_sigma)) - n / 2 * np.log(2 * np.pi)


def _normal_grad(theta):
    mu, s = theta
    n, r = OBSERVED.size, OBSERVED - mu
    return np.array([np.sum(r) / np.exp(2 * s), -n + np.sum(r**2) / np.exp(2 * s)])


def _normal_hess(theta):
    mu, s = theta
    n, r = OBSERVED.size, OBSERVED - mu
    e = np.exp(-2 * s)
    return np.array([[-n * e, -2 * np.sum(r) * e], [-2 * np.sum(r) * e, -2 * np.sum(r**2) * e]])


# -- machine learning ------------------------------------------------------------------------------

MLP_INPUTS = rng.standard_normal((8, 2))
MLP_TARGETS = np.sin(MLP_INPUTS[:, 0]) * MLP_INPUTS[:, 1]
HIDDEN = 4


def mlp_loss(params):
    """Mean squared error of a 2-4-1 tanh network; `params` is the flat vector of its weights."""
    xp = ad.namespace(params)
    W1 = xp.reshape(params[: 2 * HIDDEN], (2, HIDDEN))
    b1 = params[2 * HIDDEN : 3 * HIDDEN]
    W2 = params[3 * HIDDEN : 4 * HIDDEN]
    b2 = params[4 * HIDDEN]
    hidden = xp.tanh(MLP_INPUTS @ W1 + b1)
    prediction = hidden @ W2 + b2
    return xp.mean((prediction - MLP_TARGETS) ** 2)


def _mlp_grad(params):
    W1 = params[: 2 * HIDDEN].reshape(2, HIDDEN)
    b1, W2, b2 = params[2 * HIDDEN : 3 * HIDDEN], params[3 * HIDDEN : 4 * HIDDEN], params[4 * HIDDEN]
    hidden = np.tanh(MLP_INPUTS @ W1 + b1)
    error = 2 * (hidden @ W2 + b2 - MLP_TARGETS) / MLP_TARGETS.size
    d_hidden = np.outer(error, W2) * (1 - hidden**2)
    return np.concatenate([(MLP_INPUTS.T @ d_hidden).ravel(), d_hidden.sum(0), hidden.T @ error, [error.sum()]])


def logsumexp(x):
    xp = ad.namespace(x)
    m = xp.max(x)
    return m + xp.log(xp.sum(xp.exp(x - m)))


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


LABELS = np.eye(3)[[0, 2, 1, 2]]  # one-hot labels of 4 samples, 3 classes


def cross_entropy(logits):
    """Softmax cross-entropy of 4 samples (flat logits, 3 classes each) against `LABELS`."""
    xp = ad.namespace(logits)
    z = xp.reshape(logits, (4, 3))
    log_probabilities = z - xp.max(z, axis=1, keepdims=True)
    log_probabilities = log_probabilities - xp.log(xp.sum(xp.exp(log_probabilities), axis=1, keepdims=True))
    return -xp.sum(LABELS * log_probabilities) / 4


TARGETS = np.linspace(-1.0, 1.0, 6)
DELTA = 0.5


def huber_loss(x):
    xp = ad.namespace(x)
    r = x - TARGETS
    return xp.sum(xp.where(xp.abs(r) <= DELTA, 0.5 * r**2, DELTA * (xp.abs(r) - 0.5 * DELTA)))


def _huber_grad(x):
    r = x - TARGETS
    return np.where(np.abs(r) <= DELTA, r, DELTA * np.sign(r))


# -- scientific computing --------------------------------------------------------------------------

LAMBDA = 1.0


def bratu_residual(u):
    """Residual of the Bratu problem u'' + λ eᵘ = 0 on (0, 1), u = 0 at both ends, by central differences."""
    xp = ad.namespace(u)
    n = u.shape[0]
    h = 1.0 / (n + 1)
    padded = xp.concat([xp.zeros(1, dtype=u.dtype), u, xp.zeros(1, dtype=u.dtype)])
    return (padded[:-2] - 2 * u + padded[2:]) / h**2 + LAMBDA * xp.exp(u)


def _bratu_jacobian(u):
    n = u.size
    h = 1.0 / (n + 1)
    return (np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1) - 2 * np.eye(n)) / h**2 + np.diag(
        LAMBDA * np.exp(u)
    )


ECCENTRICITY = 0.3


def kepler(M):
    """The eccentric anomaly E solving E - e sin E = M, by eight Newton iterations from E = M."""
    xp = ad.namespace(M)
    E = M
    for _ in range(8):
        E = E - (E - ECCENTRICITY * xp.sin(E) - M) / (1 - ECCENTRICITY * xp.cos(E))
    return E


def _kepler_solution(M):
    E = M.copy()
    for _ in range(50):
        E = E - (E - ECCENTRICITY * np.sin(E) - M) / (1 - ECCENTRICITY * np.cos(E))
    return E


def _kepler_jacobian(M):
    return np.diag(1 / (1 - ECCENTRICITY * np.cos(_kepler_solution(M))))  # the implicit function theorem


U0 = np.array([1.0, 1.0])
RK4_STEPS = 40


def rk4_lotka_volterra(p):
    """Prey and predator at t = 2 from (1, 1), by RK4 in a Python loop; `p` = (α, β, δ, γ)."""
    xp = ad.namespace(p)
    alpha, beta, delta, gamma = p[0], p[1], p[2], p[3]

    def rhs(u):
        prey, predator = u[0], u[1]
        return xp.stack([alpha * prey - beta * prey * predator, delta * prey * predator - gamma * predator])

    dt = 2.0 / RK4_STEPS
    u = xp.asarray(U0, dtype=p.dtype)
    for _ in range(RK4_STEPS):
        k1 = rhs(u)
        k2 = rhs(u + dt / 2 * k1)
        k3 = rhs(u + dt / 2 * k2)
        k4 = rhs(u + dt * k3)
        u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return u


SPD = np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
RHS = np.array([1.0, -2.0, 0.5])


def spd_solve(d):
    """The solution of (A + diag(d)) y = b for a small SPD `A`: a linear solve in a parameter."""
    xp = ad.namespace(d)
    A = xp.asarray(SPD, dtype=d.dtype) + xp.eye(3, dtype=d.dtype) * d
    return xp.linalg.solve(A, xp.asarray(RHS, dtype=d.dtype))


def _spd_solution(d):
    return np.linalg.solve(SPD + np.diag(d), RHS)


def _spd_jacobian(d):
    y = _spd_solution(d)
    return -np.linalg.solve(SPD + np.diag(d), np.diag(y))  # dy/dd_k = -A⁻¹ e_k y_k


def running_sum_weighted(x):
    """Each element times the running total up to it: a cumulative sum."""
    xp = ad.namespace(x)
    return x * xp.cumulative_sum(x)


def _running_sum_jacobian(x):
    n = x.size
    return np.tril(np.ones((n, n))) * x[:, None] + np.diag(np.cumsum(x))


INDEX = np.array([3, 0, 0, 4, 2, 1])


def gather_products(x):
    """Products of elements picked by an index array: `x[INDEX] * x[::-1][INDEX]` via `take`."""
    xp = ad.namespace(x)
    return xp.take(x, xp.asarray(INDEX)) * xp.take(xp.flip(x, axis=0), xp.asarray(INDEX))


def _gather_jacobian(x):
    n = x.size
    pick, flipped = np.eye(n)[INDEX], np.eye(n)[::-1][INDEX]
    return pick * (flipped @ x)[:, None] + flipped * (pick @ x)[:, None]


# -- the corpus --------------------------------------------------------------------------------------


def _x(*values: float) -> np.ndarray:
    return np.array(values)


CORPUS = [
    Entry(
        "rosenbrock",
        "scipy.optimize.rosen",
        rosenbrock,
        _x(-1.2, 1.0, 0.8, 1.3, 0.4, 0.9),
        scipy.optimize.rosen,
        scipy.optimize.rosen_der,
        scipy.optimize.rosen_hess,
    ),
    Entry(
        "beale",
        "SciPy benchmarks: Beale",
        beale,
        _x(1.3, 0.4),
        lambda x: beale(x),
        _beale_grad,
    ),
    Entry(
        "rastrigin",
        "SciPy benchmarks: Rastrigin",
        rastrigin,
        _x(0.3, -1.1, 2.2, 0.05),
        rastrigin,
        lambda x: 2 * x + 20 * np.pi * np.sin(2 * np.pi * x),
        lambda x: np.diag(2 + 40 * np.pi**2 * np.cos(2 * np.pi * x)),
    ),
    Entry(
        "ackley",
        "SciPy benchmarks: Ackley",
        ackley,
        _x(0.3, -0.7, 1.2),
        ackley,
        _ackley_grad,
    ),
    Entry(
        "styblinski_tang",
        "SciPy benchmarks: Styblinski–Tang",
        styblinski_tang,
        _x(-2.9, 0.5, 2.7, -1.0),
        styblinski_tang,
        lambda x: 2 * x**3 - 16 * x + 2.5,
        lambda x: np.diag(6 * x**2 - 16),
    ),
    Entry(
        "logistic_log_posterior",
        "Bayesian logistic regression",
        logistic_log_posterior,
        _x(0.3, -0.5, 0.8),
        logistic_log_posterior,
        _logistic_grad,
        _logistic_hess,
    ),
    Entry(
        "normal_log_likelihood",
        "normal model, mean and log-sd",
        normal_log_likelihood,
        _x(0.8, -0.4),
        normal_log_likelihood,
        _normal_grad,
        _normal_hess,
    ),
    Entry(
        "mlp_loss",
        "2-4-1 tanh MLP, squared error",
        mlp_loss,
        rng.standard_normal(4 * HIDDEN + 1) * 0.5,
        mlp_loss,
        _mlp_grad,
    ),
    Entry(
        "logsumexp",
        "log-sum-exp",
        logsumexp,
        _x(0.5, -1.0, 2.0, 0.1, 1.5),
        logsumexp,
        _softmax,
        lambda x: np.diag(_softmax(x)) - np.outer(_softmax(x), _softmax(x)),
    ),
    Entry(
        "cross_entropy",
        "softmax cross-entropy",
        cross_entropy,
        rng.standard_normal(12),
        cross_entropy,
        lambda z: ((_softmax(z.reshape(4, 3)) - LABELS) / 4).ravel(),
    ),
    Entry(
        "huber_loss",
        "Huber loss (where)",
        huber_loss,
        _x(-1.9, -0.3, -0.35, 0.4, 1.2, 0.05),
        huber_loss,
        _huber_grad,
        lambda x: np.diag((np.abs(x - TARGETS) <= DELTA).astype(float)),
    ),
    Entry(
        "bratu_residual",
        "finite-difference PDE residual (Bratu)",
        bratu_residual,
        0.1 * np.sin(np.arange(1, 8.0)),
        bratu_residual,
        _bratu_jacobian,
    ),
    Entry(
        "kepler",
        "Kepler's equation, 8 Newton steps",
        kepler,
        _x(0.2, 1.0, 2.5, 4.0),
        _kepler_solution,
        _kepler_jacobian,
    ),
    Entry(
        "rk4_lotka_volterra",
        "Lotka–Volterra, RK4 loop of 40 steps",
        rk4_lotka_volterra,
        _x(1.5, 1.0, 1.0, 3.0),
        rk4_lotka_volterra,
        lambda p: complex_jacobian(rk4_lotka_volterra, p),
    ),
    Entry(
        "spd_solve",
        "linear solve, small SPD matrix",
        spd_solve,
        _x(0.5, 1.0, 0.2),
        _spd_solution,
        _spd_jacobian,
    ),
    Entry(
        "running_sum_weighted",
        "cumulative sum",
        running_sum_weighted,
        _x(0.5, -1.0, 2.0, 0.3, 1.1),
        lambda x: x * np.cumsum(x),
        _running_sum_jacobian,
    ),
    Entry(
        "gather_products",
        "gathers (take with an index array)",
        gather_products,
        _x(0.5, -1.0, 2.0, 0.3, 1.1),
        lambda x: x[INDEX] * x[::-1][INDEX],
        _gather_jacobian,
    ),
]
