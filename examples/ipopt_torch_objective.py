"""IPOPT, through CasADi, on a problem whose objective is a torch function: exact Hessians.

Minimise the Rosenbrock function on the unit disc, `min (1 - x₀)² + 100 (x₁ - x₀²)²` subject
to `x₀² + x₁² ≤ 1`, with the objective computed (and differentiated) by torch, or by JAX, inside
a CasADi program: `ad.DifferentiateWith(f, backend)` called on an MX symbol is a CasADi callback
whose sensitivities are the backend's pullbacks, pushforwards and Hessian-vector products. IPOPT
uses the exact Hessian of the Lagrangian, so it takes the same steps as with the objective
written in CasADi.

    python examples/ipopt_torch_objective.py [--backends AutoTorch,AutoJAX]
"""

from __future__ import annotations

import argparse
import time

import casadi as ca
import numpy as np

import anydiff as ad


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def solve(objective, x):
    """`(x*, IPOPT iterations, seconds)`."""
    options = {"ipopt.print_level": 0, "print_time": False, "ipopt.sb": "yes"}
    solver = ca.nlpsol("disc", "ipopt", {"x": x, "f": objective, "g": ca.sumsqr(x)}, options)
    start = time.perf_counter()
    found = solver(x0=[0.5, 0.5], lbg=-np.inf, ubg=1.0)
    return np.asarray(found["x"]).ravel(), solver.stats()["iter_count"], time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="AutoTorch,AutoJAX")
    args = parser.parse_args(argv)
    x = ca.MX.sym("x", 2)
    rows = []
    for name, objective in [
        ("CasADi itself", rosenbrock(x)),
        *((name, ad.DifferentiateWith(rosenbrock, getattr(ad, name)())(x)) for name in args.backends.split(",")),
    ]:
        solution, iterations, seconds = solve(objective, x)
        rows.append({"objective": name, "x": solution, "iterations": iterations, "seconds": seconds})
        print(f"{name:14} x* = {solution.round(8)}  {iterations} iterations  {seconds * 1e3:.1f} ms")
    return rows


if __name__ == "__main__":
    main()
