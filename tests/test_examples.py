"""The worked examples in `examples/` run, at small sizes, on finite differences, JAX and torch,
and their derivatives agree with the examples' own references (complex-step differences)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate

import anydiff as ad

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CORE = [b for b in (ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch()) if ad.check_available(b)]
BACKENDS = ["--backends", ",".join(type(b).__name__ for b in CORE)]
# in this process (no spawned workers), a few timed calls only
FAST = ["--timeout", "0", "--budget", "0.001"]
FULL = os.environ.get("ANYDIFF_FULL_MATRIX") == "1"


def example(name: str):
    """The example module `examples/<name>.py` (its folder on `sys.path` for `_common`)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def tolerance(backend: str) -> float:
    return 1e-5 if backend.startswith("AutoFiniteDiff") else 1e-10


def test_gauss_newton_fits_the_same_parameters_on_every_backend(capsys):
    rows = example("gauss_newton").main(["--n", "50", *BACKENDS])
    assert [r["backend"] for r in rows] == [repr(b) for b in CORE]
    for row in rows:
        np.testing.assert_allclose(row["fit"], rows[0]["fit"], atol=2e-4)
        np.testing.assert_allclose(row["fit"], [2.0, 0.4, 3.0, 0.3], atol=0.02)
    assert "truth" in capsys.readouterr().out


def test_lotka_volterra_sensitivities_agree_with_complex_step(capsys):
    lotka_volterra = example("lotka_volterra")
    argv = ["--steps", "5", "--t-end", "2", "--species", "2", "--species-steps", "4", *BACKENDS, *FAST]
    rows = lotka_volterra.main(argv)
    assert len(rows) == 2 * len(CORE)
    for row in rows:
        assert row["status"] == "ok", row
        assert row["error"] < tolerance(row["backend"]), row
        assert row["preparation"] > 0 and row["call"] > 0
    out = capsys.readouterr().out
    assert "classic, 5 steps, 4 parameters" in out and "The fastest backend depends on the problem" in out


def test_lotka_volterra_classic_model_is_the_predator_prey_system():
    lotka_volterra = example("lotka_volterra")
    p, u = np.array([1.5, 1.0, 1.0, 3.0]), np.array([0.7, 1.3])
    rates, interactions = lotka_volterra.classic(p, 2)
    alpha, beta, delta, gamma = p
    expected = [alpha * u[0] - beta * u[0] * u[1], delta * u[0] * u[1] - gamma * u[1]]
    np.testing.assert_allclose(u * (rates + interactions @ u), expected)


def test_neural_ode_gradients_agree_across_backends_and_the_plot_is_written(tmp_path, capsys):
    neural_ode = example("neural_ode")
    png = tmp_path / "times.png"
    rows = neural_ode.main(["--hidden", "3,6", "--points", "4", *BACKENDS, *FAST, "--plot", str(png)])
    assert {(r["backend"], r["hidden"]) for r in rows} == {(repr(b), h) for b in CORE for h in (3, 6)}
    for row in rows:
        assert row["status"] == "ok", row
        assert row["gradient"].shape == (5 * row["hidden"] + 2,)
        assert row["error"] < tolerance(row["backend"]) and row["spread"] < 1e-5, row
    assert png.stat().st_size > 1000
    assert f"wrote {png}" in capsys.readouterr().out


def test_spiral_data_follow_the_true_ode():
    neural_ode = example("neural_ode")
    data = neural_ode.spiral_data(4)
    times = np.linspace(0.0, neural_ode.T_END, 4)
    exact = scipy.integrate.solve_ivp(
        lambda t, u: u**3 @ neural_ode.TRUE_A, (0.0, neural_ode.T_END), neural_ode.U0, t_eval=times,
        rtol=1e-12, atol=1e-12,
    )
    np.testing.assert_allclose(data, exact.y.T, atol=1e-5)


def test_an_unknown_backend_name_is_refused():
    with pytest.raises(SystemExit, match="unknown or not installed: AutoNothing"):
        example("_common").select_backends("AutoNothing")


def test_mlp_dict_trains_to_the_same_loss_on_every_backend(capsys):
    mlp_dict = example("mlp_dict")
    # TensorFlow's import and tracing take several seconds: with the full matrix only
    names = [n for n in mlp_dict.DEFAULT_BACKENDS if n != "AutoTensorFlow" or FULL]
    chosen = [b for b in ad.available_backends() if type(b).__name__ in names]
    rows = mlp_dict.main(["--steps", "40", "--backends", ",".join(type(b).__name__ for b in chosen)])
    assert [r["backend"] for r in rows] == [repr(b) for b in chosen]
    inputs, targets = mlp_dict.toy_data()
    initial = float(mlp_dict.loss(mlp_dict.init_params(16), inputs, targets))
    for row in rows:
        # float64 everywhere; the tolerance would also hold a backend computing in float32 (MLX on a GPU)
        assert abs(row["loss"] - rows[0]["loss"]) <= 1e-5 * rows[0]["loss"], row
        assert row["loss"] < 0.5 * initial
        assert row["params"]["layer1"]["w"].shape == (1, 16) and isinstance(row["params"]["layer2"]["b"], np.ndarray)
    assert "parameters in a dict" in capsys.readouterr().out
