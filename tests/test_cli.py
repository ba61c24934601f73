"""The `anydiff` command line, run in a subprocess as users run it."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_MODULE = textwrap.dedent(
    '''
    """A user's module: a function to compare, and three broken backends."""
    import dataclasses
    import multiprocessing
    import os
    import time
    from typing import ClassVar

    import numpy as np

    import anydiff as ad


    def f(x):
        xp = ad.namespace(x)
        return xp.sum(xp.sin(x) * x**2)


    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
    class AutoBroken(ad.AbstractBackend):
        """Central differences, except that a single tangent (a pushforward) raises, hangs or
        kills the process, depending on `mode`."""

        mode: str = "raise"
        extra: ClassVar[str] = "test"


    class BrokenImpl(ad.BackendImpl):
        def jvp(self, f, x, tangents, contexts):
            if tangents.shape[0] == 1:
                if self.backend.mode == "raise":
                    raise RuntimeError("boom\\nsecond line")
                if self.backend.mode == "hang":
                    time.sleep(600)
                os._exit(3)
            h = 1e-6
            y = f(x, *contexts)
            return y, np.stack([(f(x + h * t, *contexts) - f(x - h * t, *contexts)) / (2 * h) for t in tangents])


    ad.register_backend(AutoBroken, BrokenImpl)
    RAISES, HANGS, CRASHES = (AutoBroken(mode=m) for m in ("raise", "hang", "crash"))


    def rk4(p):
        """Lotka-Volterra by RK4 in a Python loop of 40 steps: a program too big to compile."""
        xp = ad.namespace(p)

        def rhs(u):
            return xp.stack([p[0] * u[0] - p[1] * u[0] * u[1], p[2] * u[0] * u[1] - p[3] * u[1]])

        u, dt = xp.ones(2, dtype=p.dtype), 0.05
        for _ in range(40):
            k1 = rhs(u)
            k2 = rhs(u + dt / 2 * k1)
            k3 = rhs(u + dt / 2 * k2)
            k4 = rhs(u + dt * k3)
            u = u + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return xp.sum(u * u)


    def hungry(x):
        """Allocates 4 GB, in compare's worker processes only (not when compare learns its shape)."""
        xp = ad.namespace(x)
        if multiprocessing.current_process().name != "MainProcess":
            xp.ones(2**29, dtype=x.dtype)
        return xp.sum(x**2)
    '''
)

AD_LIBRARY = next((name for name in ("jax", "torch") if importlib.util.find_spec(name)), None)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "anydiff", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    (tmp_path / "mymodule.py").write_text(USER_MODULE)
    return tmp_path


def test_backends_lists_every_backend_with_its_status(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("anydiff")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "anydiff"]
    # all of them would import every installed library; these show every kind of row
    names = ["AutoFiniteDiff", "jax", "torch"]
    done = subprocess.run([*command, "backends", *names], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("anydiff ") and lines[0].endswith(": backends")
    assert lines[1].split() == ["backend", "library", "version", "status"]
    assert len(lines) == 5
    assert lines[2].split()[:2] == ["AutoFiniteDiff()", "(none)"] and lines[2].endswith("usable")
    for library in ("jax", "torch"):
        row = [line for line in lines if f"  {library}  " in line]
        if importlib.util.find_spec(library):
            assert row and row[0].endswith("usable"), row
        else:
            assert row and row[0].endswith(f"not installed: pip install 'anydiff[{library}]'"), row
    assert done.stderr == ""  # the libraries' import chatter stays in the probes


def test_compare_builtin_subset(tmp_path: Path) -> None:
    done = run("compare", "--backends", "finitediff", "--operators", "gradient,hessian", "--x", "6",
               "--budget", "0.01", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "gradient of energy at x: float64 (6,)   (reference: analytic)" in out
    assert "hessian of energy at x: float64 (6,)   (reference: analytic)" in out
    assert out.count("✓ works") == 2
    assert "→ for gradient of energy at this size: AutoFiniteDiff(), the only backend that works" in out
    assert "anydiff compare: built-in scenarios, vectors of 6: 2 operators × 1 backends" in done.stderr
    assert "AutoFiniteDiff()  ✓✓  done in" in done.stderr  # the progress line (not a terminal)


@pytest.mark.skipif(AD_LIBRARY is None, reason="needs jax or torch for a reference to agree with")
def test_compare_user_function_writes_json_csv_and_plot(user_module: Path) -> None:
    done = run("compare", "mymodule:f", "--x", "5", "--backends", f"finitediff,{AD_LIBRARY}", "--budget", "0.01",
               "--json", "out.json", "--csv", "out.csv", "--plot", "out.png", cwd=user_module)
    assert done.returncode == 0, done.stderr
    ad_name = {"jax": "AutoJAX()", "torch": "AutoTorch()"}[AD_LIBRARY]
    operators = ["pushforward", "pullback", "gradient", "hvp", "hessian"]  # f: vector -> scalar
    for operator in operators:
        reference = f"(reference: {ad_name}, confirmed by finite differences)"
        assert f"{operator} of f at x: float64 (5,)   {reference}" in done.stdout
        assert f"→ for {operator} of f at this size: " in done.stdout
    assert "wrote out.json, out.csv, out.png" in done.stderr

    document = json.loads((user_module / "out.json").read_text())
    assert document["title"] == "anydiff compare: f at x: float64 (5,)"
    results = document["results"]
    assert [(r["operator"], r["backend"]) for r in results] == [
        (op, b) for op in operators for b in ("AutoFiniteDiff()", ad_name)
    ]
    assert {r["status"] for r in results} == {"works"}
    assert all(r["time"] > 0 and r["prep_time"] > 0 and r["error"] < 1e-5 for r in results)
    assert min(r["relative"] for r in results if r["operator"] == "gradient") == 1.0
    assert len(document["recommendations"]) == 5

    with open(user_module / "out.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and rows[0]["backend"] == "AutoFiniteDiff()" and rows[0]["status"] == "works"
    assert list(rows[0])[:4] == ["backend", "operator", "scenario", "status"]

    png = (user_module / "out.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    from matplotlib.image import imread

    height, width, _ = imread(user_module / "out.png").shape
    assert width == 1800 and height > 600


def test_compare_reports_backends_that_raise_hang_or_crash(user_module: Path) -> None:
    done = run("compare", "mymodule:f", "--x", "4", "--operators", "pushforward,gradient", "--timeout", "4",
               "--budget", "0.01", "--backends", "finitediff, mymodule:RAISES, mymodule:HANGS, mymodule:CRASHES",
               cwd=user_module)
    assert done.returncode == 0, done.stderr
    pushforward, gradient = done.stdout.split("\n\n")
    lines = {line.split()[0]: line for line in pushforward.splitlines()[2:-1]}
    assert lines["AutoBroken()"].split("! failed")[1].strip() == "RuntimeError: boom"
    assert re.search(r"! timed out +timed out after 4 s$", lines["AutoBroken(mode='hang')"])
    assert re.search(r"! failed +crashed \(exit code 3\)$", lines["AutoBroken(mode='crash')"])
    assert "✓ works" in lines["AutoFiniteDiff()"]
    # a fresh process takes the next operator after a hang or a crash
    assert gradient.count("✓ works") == 4, gradient
    assert "AutoBroken(mode='hang')   !✓  done in" in done.stderr


def test_compare_reports_programs_too_big_to_compile(user_module: Path) -> None:
    available = [name for name in ("jax", "tinygrad") if importlib.util.find_spec(name)]
    done = run("compare", "mymodule:rk4", "--x", "4", "--operators", "gradient", "--budget", "0.01",
               "--backends", ",".join(["finitediff", *available]), cwd=user_module)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[2:-1]}
    assert "✓ works" in lines["AutoFiniteDiff()"]
    if "jax" in available:  # runs without jax.jit, and says so
        assert "✓ works" in lines["AutoJAX()"]
        assert lines["AutoJAX()"].endswith("ran uncompiled: `f`'s program is above the backend's max_program_size")
    if "tinygrad" in available:  # refused within seconds
        assert re.search(r"– too big +UnsupportedError: gradient: `f` traces to a program of more than 1000 ",
                         lines["AutoTinygrad()"])


def test_compare_gives_each_backend_a_memory_budget(user_module: Path) -> None:
    done = run("compare", "mymodule:hungry", "--x", "3", "--operators", "gradient", "--budget", "0.01",
               "--memory", "2", "--backends", "finitediff", cwd=user_module)
    assert done.returncode == 0, done.stderr
    row = [line for line in done.stdout.splitlines() if line.startswith("  AutoFiniteDiff()")][0]
    assert re.search(r"! out of memory +MemoryError: ", row), row
    done = run("compare", "mymodule:f", "--x", "3", "--memory", "-1", cwd=user_module)
    assert done.stderr.strip() == "anydiff: `--memory` is in gigabytes, 0 for no bound; got -1."


def test_compare_usage_errors(user_module: Path) -> None:
    done = run("compare", "mymodule:f", cwd=user_module)
    assert done.returncode == 1
    assert done.stderr.strip() == "anydiff: give the shape of x for your function, e.g. `--x 100` or `--x 10,20`."
    done = run("compare", "mymodule:f", "--x", "4", "--operators", "jacobian", cwd=user_module)
    assert done.stderr.strip() == (
        "anydiff: jacobian do not apply to f from shape (4,) to (); these do: pushforward, pullback, "
        "gradient, hvp, hessian."
    )
    done = run("compare", "nomodule:f", "--x", "4", cwd=user_module)
    assert done.stderr.startswith("anydiff: cannot import `nomodule`")
    done = run("compare", "--backends", "AutoNothing", cwd=user_module)
    assert done.stderr.startswith("anydiff: unknown backend 'AutoNothing'; known: Auto")
    assert "AutoFiniteDiff" in done.stderr
