"""Threads, memory and determinism.

- One prep shared by 8 threads, on the same and on different inputs, gives the right results
  (and so do unprepared calls, which share the cache of recent preps).
- Jacobians and Hessians run in batches of basis tangents (`batch_size`, bounded by default), with
  the same results as in one batch; `benchmarks/memory.py` measures the memory saved.
- The same call gives bit-identical results, run to run and in a second process.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import anydiff as ad
from anydiff._core.kernels import TANGENT_BYTES, tangent_batch

pytest.importorskip("jax")
pytest.importorskip("torch")

THREADS = 8


def energy(x: Any) -> Any:
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2 * xp.cos(x[0]))


def energy_gradient(x: np.ndarray) -> np.ndarray:
    g = np.sin(2 * x) * np.cos(x[0])
    g[0] -= np.sum(np.sin(x) ** 2) * np.sin(x[0])
    return g


def stretch(x: Any) -> Any:
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def stretch_jacobian(x: np.ndarray) -> np.ndarray:
    lower = np.tril(np.ones((x.size, x.size)))
    return np.diag(np.cos(x) * np.cumsum(x)) + np.sin(x)[:, None] * lower


# Backends run from threads: the three always installed, and the others that prepare quickly.
# CasADi crashed once (a segfault in `FunctionBuffer.set_arg`) when 8 threads made their first
# calls on one prep at once: it is tested with one prep per thread until that is fixed.
THREADED = [ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch(), ad.AutoAutograd(), ad.AutoSymPy()]
ONE_PREP_PER_THREAD = [ad.AutoCasADi()]
TOLERANCE = {"AutoFiniteDiff": 1e-6}


def _installed(backends: list[Any]) -> list[Any]:
    return [
        pytest.param(b, id=repr(b), marks=pytest.mark.skipif(not ad.check_available(b), reason="not installed"))
        for b in backends
    ]


def _in_threads(task: Callable[[int], Any]) -> list[Any]:
    """`task(i)` for i in 0..7, from 8 threads released together."""
    start = threading.Barrier(THREADS)

    def run(i: int) -> Any:
        start.wait()
        return task(i)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, range(THREADS)))


@pytest.mark.parametrize("backend", _installed(THREADED))
def test_one_prep_shared_by_eight_threads(backend: Any) -> None:
    rtol = TOLERANCE.get(type(backend).__name__, 1e-12)
    points = [np.linspace(-1.0, 1.0, 6) + 0.1 * i for i in range(THREADS)]
    gradient_prep = ad.prepare_gradient(energy, backend, points[0])
    jacobian_prep = ad.prepare_jacobian(stretch, backend, points[0])
    pushforward_prep = ad.prepare_pushforward(stretch, backend, points[0], points[0])

    def task(i: int) -> None:
        for x in (points[i], points[0]):  # a point of its own, and the one every thread uses
            for _ in range(5):
                g = ad.gradient(energy, backend, x, prep=gradient_prep)
                np.testing.assert_allclose(g, energy_gradient(x), rtol=rtol, atol=rtol)
                j = ad.jacobian(stretch, backend, x, prep=jacobian_prep)
                np.testing.assert_allclose(j, stretch_jacobian(x), rtol=rtol, atol=rtol)
                jt = ad.pushforward(stretch, backend, x, x, prep=pushforward_prep)
                np.testing.assert_allclose(jt, stretch_jacobian(x) @ x, rtol=rtol, atol=rtol)

    _in_threads(task)


@pytest.mark.parametrize("backend", _installed(ONE_PREP_PER_THREAD))
def test_one_prep_per_thread(backend: Any) -> None:
    preps = [ad.prepare_gradient(energy, backend, np.zeros(6)) for _ in range(THREADS)]
    for prep in preps:  # the first call of each prep, one thread at a time
        ad.gradient(energy, backend, np.zeros(6), prep=prep)

    def task(i: int) -> None:
        x = np.linspace(-1.0, 1.0, 6) + 0.1 * i
        for _ in range(20):
            np.testing.assert_allclose(ad.gradient(energy, backend, x, prep=preps[i]), energy_gradient(x), rtol=1e-12)

    _in_threads(task)


@pytest.mark.parametrize("backend", _installed(THREADED[:3]))
def test_unprepared_calls_from_eight_threads(backend: Any) -> None:
    rtol = TOLERANCE.get(type(backend).__name__, 1e-12)

    def task(i: int) -> None:
        x = np.linspace(-1.0, 1.0, 5) + 0.1 * i
        for _ in range(3):
            np.testing.assert_allclose(ad.gradient(energy, backend, x), energy_gradient(x), rtol=rtol, atol=rtol)
            # float32 in one thread and float64 in another: JAX's x64 switch is per thread
            x32 = x.astype(np.float32)
            g32 = ad.gradient(energy, backend, x32)
            assert g32.dtype == np.float32
            np.testing.assert_allclose(g32, energy_gradient(x), rtol=1e-3, atol=1e-3)

    _in_threads(task)


def test_hessians_in_threads() -> None:
    def f(x: Any) -> Any:
        xp = ad.namespace(x)
        return xp.sum(x**3) * x[0]

    def expected(x: np.ndarray) -> np.ndarray:
        h = np.diag(6 * x * x[0])
        h[0, :] += 3 * x**2
        h[:, 0] += 3 * x**2
        return h

    preps = {b: ad.prepare_hessian(f, b, np.ones(4)) for b in (ad.AutoJAX(), ad.AutoTorch())}

    def task(i: int) -> None:
        x = np.linspace(0.5, 1.0, 4) + i
        for b, prep in preps.items():
            np.testing.assert_allclose(ad.hessian(f, b, x, prep=prep), expected(x), rtol=1e-12)

    _in_threads(task)


# -- memory: Jacobians and Hessians in batches --------------------------------------------------


def test_the_default_batch_bounds_the_memory_of_the_tangents() -> None:
    n = 20_000
    per_tangent = 2 * n * 8  # a float64 tangent and its result
    size = tangent_batch(n, per_tangent)
    assert size * per_tangent <= TANGENT_BYTES < (size + 1) * per_tangent
    assert tangent_batch(10, per_tangent) == 10  # small problems stay one batch


@pytest.mark.parametrize(
    "backend",
    [ad.AutoJAX(), ad.AutoJAX(mode="reverse"), ad.AutoTorch(), ad.AutoTorch(mode="reverse"), ad.AutoFiniteDiff()],
    ids=repr,
)
def test_batched_jacobians_and_hessians_equal_one_batch(backend: Any) -> None:
    x = np.linspace(0.1, 1.0, 7)
    whole = ad.value_and_jacobian(stretch, backend, x)
    prep = ad.prepare_jacobian(stretch, backend, x, batch_size=3)
    if not isinstance(backend, ad.AutoFiniteDiff):  # finite differences go column by column anyway
        assert prep.info["batch_size"] == 3
    for a, b in zip(ad.value_and_jacobian(stretch, backend, x, prep=prep), whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
    hessian = ad.value_gradient_and_hessian(energy, backend, x)
    for a, b in zip(ad.value_gradient_and_hessian(energy, backend, x, batch_size=2), hessian, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


def test_a_large_jacobian_runs_in_bounded_batches() -> None:
    # 2 000 columns of 2 x 2 000 x 8 bytes: the default would take them all; a bound of 1 MB of
    # tangents takes 32 at a time, in a `jax.lax.map` that never holds the whole basis.
    import anydiff._core.kernels as prep_module

    x = np.linspace(0.0, 1.0, 2_000)
    saved = prep_module.TANGENT_BYTES
    prep_module.TANGENT_BYTES = 2**20
    try:
        prep = ad.prepare_jacobian(stretch, ad.AutoJAX(), x)
    finally:
        prep_module.TANGENT_BYTES = saved
    assert prep.info["batch_size"] == 2**20 // (2 * 2_000 * 8)
    np.testing.assert_allclose(
        ad.jacobian(stretch, ad.AutoJAX(), x, prep=prep), stretch_jacobian(x), rtol=1e-12, atol=1e-12
    )


# -- determinism --------------------------------------------------------------------------------

# One call per operator family on every installed backend; PyTensor compiles C code for seconds
# per graph, so it gets the gradient only.
DETERMINISM_SCRIPT = r"""
import hashlib, json, sys, warnings
import numpy as np
import anydiff as ad
warnings.simplefilter("ignore")

def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2 * xp.cos(x[0]))

def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)

def digest(a):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(a)).tobytes()).hexdigest()

x = np.linspace(-1.0, 1.0, 6)
out = {}
for backend in ad.available_backends():
    # anydiff's own backends: other tests may register more in this process, not in a new one
    if not type(backend).__module__.startswith("anydiff.") or not ad.check_available(backend):
        continue
    name = repr(backend)
    calls = {"gradient": lambda: ad.gradient(energy, backend, x)}
    if not isinstance(backend, ad.AutoPyTensor):
        calls |= {
            "jacobian": lambda: ad.jacobian(stretch, backend, x),
            "pushforward": lambda: ad.pushforward(stretch, backend, x, x),
            "pullback": lambda: ad.pullback(stretch, backend, x, x),
            "hessian": lambda: ad.hessian(energy, backend, x),
        }
    for operator, call in calls.items():
        out[f"{name} {operator}"] = [digest(call()) for _ in range(3)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def digests() -> dict[str, list[str]]:
    """Every backend's results in this process, three times each."""
    scope: dict[str, Any] = {}
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(DETERMINISM_SCRIPT, scope)
    return json.loads(printed.getvalue())


def test_the_same_call_gives_bit_identical_results(digests: dict[str, list[str]]) -> None:
    assert {"AutoFiniteDiff() gradient", "AutoJAX() hessian", "AutoTorch() jacobian"} <= set(digests)
    varying = [name for name, runs in digests.items() if len(set(runs)) != 1]
    assert not varying, f"results differ between runs: {varying}"


def test_a_second_process_gives_bit_identical_results(digests: dict[str, list[str]]) -> None:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", DETERMINISM_SCRIPT], capture_output=True, text=True, check=True)
    other = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(other) == set(digests), time.perf_counter() - started
    differing = [name for name in digests if other[name][0] != digests[name][0]]
    assert not differing, f"results differ from another process: {differing}"


def test_digest_of_a_known_array() -> None:
    # the digest sees every bit: -0.0 and 0.0 differ
    a, b = np.zeros(2), np.array([0.0, -0.0])
    assert hashlib.sha256(a.tobytes()).hexdigest() != hashlib.sha256(b.tobytes()).hexdigest()
