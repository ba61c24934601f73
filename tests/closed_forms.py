"""Functions with closed-form derivatives, shared by the per-backend test files.

`energy` has a scalar output and a dense Hessian, `stretch` a dense lower-triangular Jacobian,
`curve` a scalar input; `coupled` (a matrix input) and `scaled_curve` take a constant, for the
second-order tests. All are written with the array API so every backend can run them.
"""

from __future__ import annotations

import numpy as np

import anydiff as ad


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2) + xp.sum(x) ** 2 / 2


def energy_gradient(x):
    return np.sin(2 * x) + np.sum(x)


def energy_hessian(x):
    return np.diag(2 * np.cos(2 * x)) + 1.0


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def stretch_jacobian(x):
    return np.diag(np.cos(x) * np.cumsum(x)) + np.sin(x)[:, None] * np.tril(np.ones((x.size, x.size)))


def curve(t):
    xp = ad.namespace(t)
    return xp.stack([xp.sin(t), t**3])


def coupled(x, b):
    """Σ bᵢⱼ exp(xᵢⱼ) + Σⱼ x₀ⱼ x₁ⱼ: a matrix `x` (two rows), a constant `b`."""
    xp = ad.namespace(x)
    return xp.sum(b * xp.exp(x)) + xp.sum(x[0, :] * x[1, :])


def coupled_gradient(x, b):
    return b * np.exp(x) + x[::-1]


def coupled_hessian(x, b):
    rows, cols = x.shape
    h = np.zeros(x.shape + x.shape)
    for i in range(rows):
        for j in range(cols):
            h[i, j, i, j] = b[i, j] * np.exp(x[i, j])
            h[i, j, 1 - i, j] = 1.0
    return h


def scaled_curve(t, c):
    """(t³, c sin t, e^{2t}): a scalar input, a vector output, a constant `c`."""
    xp = ad.namespace(t)
    return xp.stack([t**3, c * xp.sin(t), xp.exp(2 * t)])


def scaled_curve_derivatives(t, c):
    """The value, first and second derivatives of `scaled_curve`."""
    return (
        np.array([t**3, c * np.sin(t), np.exp(2 * t)]),
        np.array([3 * t**2, c * np.cos(t), 2 * np.exp(2 * t)]),
        np.array([6 * t, -c * np.sin(t), 4 * np.exp(2 * t)]),
    )
