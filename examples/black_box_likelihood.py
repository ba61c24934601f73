"""A black-box likelihood in PyTensor: the PyMC pattern, with `ad.DifferentiateWith`.

PyMC's "black-box likelihood" recipe wraps an external simulator in a hand-written PyTensor
`Op`, and its gradient in a second one. Here the simulator is a damped oscillation computed by
a NumPy loop (explicit Euler steps: code no AD library could trace), or the same written for
torch; `ad.DifferentiateWith` turns it into PyTensor `Op`s with gradients and Hessians, and a
plain PyTensor log-density around it is compiled with its gradient and Hessian. SciPy finds the
maximum of the posterior on the compiled gradient, and the compiled Hessian gives the Laplace
approximation (the posterior's standard deviations). In a PyMC model the same log-density goes
into `pm.Potential`, and NUTS samples with these gradients.

    python examples/black_box_likelihood.py [--substitute AutoFiniteDiff|AutoTorch] [--steps 200]
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor
import pytensor.tensor as pt
import scipy.optimize

import anydiff as ad

TRUTH = np.array([1.5, 0.3])  # stiffness, damping
NOISE = 0.02


def oscillator(theta, steps=200, t_end=6.0):
    """Positions of `u'' = -k u - c u'`, `u(0) = 1`, `u'(0) = 0`, by explicit Euler steps."""
    xp = ad.namespace(theta)
    k, c = theta[0], theta[1]
    h = t_end / steps
    u, v = 1.0 + 0.0 * k, 0.0 * k
    positions = []
    for _ in range(steps):
        u, v = u + h * v, v - h * (k * u + c * v)
        positions.append(u)
    return xp.stack(positions[4::5])  # observed every fifth step


def oscillator_numpy(theta, steps=200):
    """The same simulator in plain NumPy (what only finite differences differentiate)."""
    return np.asarray(oscillator(np.asarray(theta, dtype=float), steps))


def fit(substitute, steps):
    """`(maximum of the posterior, its standard deviations, iterations)`."""
    simulator = oscillator_numpy if isinstance(substitute, ad.AutoFiniteDiff) else oscillator
    model = ad.DifferentiateWith(simulator, substitute)
    rng = np.random.default_rng(0)
    data = oscillator_numpy(TRUTH, steps)
    data = data + NOISE * rng.standard_normal(data.shape)

    theta = pt.tensor("theta", shape=(2,), dtype="float64")
    residuals = model(theta, steps) - data  # `steps`: a context of the simulator
    log_density = -0.5 * pt.sum(residuals**2) / NOISE**2 - 0.5 * pt.sum((theta - 1.0) ** 2)  # N(1, 1) prior
    negative = pytensor.function([theta], -log_density)
    gradient = pytensor.function([theta], -pytensor.grad(log_density, theta))
    hessian = pytensor.function([theta], -pytensor.gradient.hessian(log_density, theta))
    found = scipy.optimize.minimize(negative, np.array([1.0, 1.0]), jac=gradient, method="BFGS")
    covariance = np.linalg.inv(hessian(found.x))
    return found.x, np.sqrt(np.diag(covariance)), found.nit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--substitute", default="AutoFiniteDiff,AutoTorch")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    rows = []
    for name in args.substitute.split(","):
        substitute = getattr(ad, name)()
        mode, std, iterations = fit(substitute, args.steps)
        rows.append({"substitute": name, "mode": mode, "std": std, "iterations": iterations})
        print(f"{name:16} k = {mode[0]:.4f} ± {std[0]:.4f}, c = {mode[1]:.4f} ± {std[1]:.4f} ({iterations} BFGS steps)")
    print(f"truth            k = {TRUTH[0]}, c = {TRUTH[1]}")
    return rows


if __name__ == "__main__":
    main()
