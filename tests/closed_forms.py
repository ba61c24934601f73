"""Functions with closed-form derivatives, shared by the per-backend test files.

`energy` has a scalar output and a dense Hessian, `stretch` a dense lower-triangular Jacobian,
`curve` a scalar input. All are written with the array API so every backend can run them.
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
