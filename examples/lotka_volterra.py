"""Sensitivities of the Lotka–Volterra ODE solution to its parameters, on every installed backend.

One explicit Runge–Kutta (RK4) integrator, written once with the array API, is differentiated by
each backend: the Jacobian of the sampled trajectory with respect to the parameters. Each result
is checked against complex-step finite differences (exact to rounding for this analytic `f`),
and timed: the preparation (prepare plus the first call, where JIT compilers compile) and a
prepared call.

Two sweeps show that the best backend depends on the problem (the point of the
AbstractDifferentiation.jl paper): more integration steps make tracing and compiling dearer
(the loop is unrolled), more parameters make finite differences and forward mode dearer.

- the classic predator–prey model, `u₁' = α u₁ − β u₁ u₂`, `u₂' = δ u₁ u₂ − γ u₂`: four
  parameters, with `--steps` integration steps;
- the generalised model with `n` species, `u' = u ∘ (r + A u)`: `n + n²` parameters (the
  growth rates `r` and the interaction matrix `A`), for each `n` in `--species`.

    python examples/lotka_volterra.py [--steps 20,100,400] [--species 3,6,12] [--backends AutoJAX,AutoTorch]

Each backend runs each sweep in a process of its own; one that takes longer than `--timeout`
seconds on a problem is stopped and skips the larger problems of that sweep (tracing and
symbolic backends can take minutes to prepare a long unrolled loop).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

import numpy as np
from _common import format_seconds, print_table, relative_error, run_isolated, select_backends, time_prepared

import anydiff as ad

SAMPLES = 10  # the trajectory is returned at this many equally spaced times


# Both models are `u' = u ∘ (r + A u)`; they differ in how the parameters `p` give `r` and `A`.
# `xp` comes from `p`, the differentiated input (the initial state `u0` is a constant).


def classic(p: Any, species: int) -> tuple[Any, Any]:
    """Predator–prey (two species), `p = (α, β, δ, γ)`: `r = (α, −γ)`, `A = [[0, −β], [δ, 0]]`."""
    xp = ad.namespace(p)
    zero = xp.zeros_like(p[0])
    return xp.stack([p[0], -p[3]]), xp.reshape(xp.stack([zero, -p[1], p[2], zero]), (2, 2))


def generalised(p: Any, species: int) -> tuple[Any, Any]:
    """`n` species, `p = (r, A)` flattened: `n + n²` parameters."""
    return p[:species], ad.namespace(p).reshape(p[species:], (species, species))


@dataclass(frozen=True)
class Trajectory:
    """`Trajectory(model, species, steps, t_end)(p, u0)`: RK4 from `u0` over `[0, t_end]`, flattened.

    The solution is sampled `SAMPLES` times. A callable object rather than a closure, so that it
    can be sent to another process. The loop runs over the step count only, with no Python
    branches on values, and sizes are fixed here rather than read from arrays (symbolic backends
    may not know them), so every backend can trace it.
    """

    model: Any
    species: int
    steps: int
    t_end: float

    def __call__(self, p: Any, u0: Any) -> Any:
        xp = ad.namespace(p)
        rates, interactions = self.model(p, self.species)

        def rhs(u: Any) -> Any:
            # `xp.matmul`, not `@`: TensorFlow's own `@` multiplies matrices only
            return u * (rates + xp.matmul(interactions, u))

        dt = self.t_end / self.steps
        every = max(1, self.steps // SAMPLES)
        u, samples = u0, []
        for step in range(1, self.steps + 1):
            k1 = rhs(u)
            k2 = rhs(u + (dt / 2) * k1)
            k3 = rhs(u + (dt / 2) * k2)
            k4 = rhs(u + dt * k3)
            u = u + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
            if step % every == 0:
                samples.append(u)
        return xp.reshape(xp.stack(samples), (-1,))


@dataclass(frozen=True)
class Problem:
    """One sensitivity problem: `jacobian(f, backend, p, Constant(u0))` against `reference`."""

    name: str
    f: Trajectory
    p: np.ndarray
    u0: np.ndarray

    def jacobian(self, backend: ad.AbstractBackend, *, prep: Any = None) -> np.ndarray:
        return ad.jacobian(self.f, backend, self.p, ad.Constant(self.u0), prep=prep)


def classic_problem(steps: int, t_end: float) -> Problem:
    p = np.array([1.5, 1.0, 1.0, 3.0])  # α, β, δ, γ
    f = Trajectory(classic, 2, steps, t_end)
    return Problem(f"classic, {steps} steps, 4 parameters", f, p, np.array([1.0, 1.0]))


def generalised_problem(species: int, steps: int, t_end: float, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.5, 1.0, species)
    # self-limiting species (negative diagonal) with weak interactions: a bounded solution
    interactions = -np.eye(species) + 0.3 * rng.uniform(-1.0, 1.0, (species, species)) / species
    p = np.concatenate([rates, interactions.ravel()])
    name = f"{species} species, {steps} steps, {p.size} parameters"
    return Problem(name, Trajectory(generalised, species, steps, t_end), p, rng.uniform(0.2, 1.0, species))


def sensitivities(backend: ad.AbstractBackend, task: tuple[Problem, np.ndarray, float]) -> dict:
    """One table row: the error against the reference, the preparation and call times."""
    problem, reference, budget = task
    timing = time_prepared(
        lambda: ad.prepare_jacobian(problem.f, backend, problem.p, ad.Constant(problem.u0)),
        lambda prep: problem.jacobian(backend, prep=prep),
        budget,
    )
    mode = timing.info.get("mode", "")
    return {"error": relative_error(timing.result, reference), "preparation": timing.preparation,
            "call": timing.call, "mode": mode, "status": "ok"}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="20,100,400", help="step counts of the classic model")
    parser.add_argument("--species", default="3,6,12", help="species counts of the generalised model")
    parser.add_argument("--species-steps", type=int, default=50, help="steps of the generalised model")
    parser.add_argument("--t-end", type=float, default=10.0, help="the time span of both models")
    parser.add_argument("--backends", default="", help="comma-separated, e.g. AutoJAX,AutoTorch (default: all)")
    parser.add_argument("--budget", type=float, default=0.5, help="seconds of timing per backend and problem")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per backend and problem; 0: no limit")
    args = parser.parse_args(argv)
    sweeps = [
        [classic_problem(int(s), args.t_end) for s in args.steps.split(",") if s],
        [generalised_problem(int(n), args.species_steps, args.t_end) for n in args.species.split(",") if n],
    ]
    problems = [problem for sweep in sweeps for problem in sweep]
    # the reference: complex-step differences, exact to rounding for an analytic `f` (no subtraction)
    reference = ad.AutoFiniteDiff(method="complex")
    tasks = [[(problem, problem.jacobian(reference), args.budget) for problem in sweep] for sweep in sweeps]
    rows = run_isolated(sensitivities, select_backends(args.backends), tasks, args.timeout)
    for row in rows:
        row["problem"] = row["problem"][0].name

    summary = []
    for problem in problems:
        here = [r for r in rows if r["problem"] == problem.name]
        ran = [r for r in here if r["status"] == "ok"]
        by_call = [r["backend"] for r in sorted(ran, key=lambda r: r["call"])]
        by_first = [r["backend"] for r in sorted(ran, key=lambda r: r["preparation"])]
        print(f"\nJacobian of the {problem.name} problem ({problem.f(problem.p, problem.u0).size} outputs)")
        print_table(
            ("backend", "mode", "error", "preparation", "per call", "rank per call", "rank incl. preparation"),
            (
                (r["backend"], r["mode"], f"{r['error']:.1e}", format_seconds(r["preparation"]),
                 format_seconds(r["call"]), by_call.index(r["backend"]) + 1, by_first.index(r["backend"]) + 1)
                if r["status"] == "ok" else (r["backend"], r["status"])
                for r in here
            ),
        )
        summary.append((problem.name, by_call[0] if ran else "-", by_first[0] if ran else "-"))
    print("\nThe fastest backend depends on the problem:")
    print_table(("problem", "fastest prepared call", "fastest first call (preparation included)"), summary)
    return rows


if __name__ == "__main__":
    main()
