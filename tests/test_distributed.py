"""Finite differences through executors: a process pool and a real Dask LocalCluster on loopback."""

from __future__ import annotations

import multiprocessing
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import anydiff as ad
from anydiff.testing.simulations import heat_rod, sleepy_square

STEPS = ad.Constant(300)
X = np.linspace(0.5, 1.5, 6)


@pytest.fixture(scope="module")
def process_pool():
    # spawn, not fork: forking a process that runs JAX or torch threads is unsafe.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


@pytest.fixture(scope="module")
def dask_executor():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask's own start-up chatter (ports, deprecations)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield client.get_executor()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.close()
            cluster.close()


@pytest.mark.parametrize("engine", ["process_pool", "dask_executor"])
@pytest.mark.parametrize("method", ["forward", "central"])
def test_parallel_results_match_the_serial_run_exactly(engine, method, request):
    executor = request.getfixturevalue(engine)
    serial, parallel = ad.AutoFiniteDiff(method=method), ad.AutoFiniteDiff(method=method, executor=executor)
    y, jac = ad.value_and_jacobian(heat_rod, parallel, X, STEPS)
    y_serial, jac_serial = ad.value_and_jacobian(heat_rod, serial, X, STEPS)
    np.testing.assert_array_equal(jac, jac_serial)
    np.testing.assert_array_equal(y, y_serial)
    tangents = (np.ones(6), np.arange(6.0))
    for a, b in zip(
        ad.pushforward(heat_rod, parallel, X, tangents, STEPS),
        ad.pushforward(heat_rod, serial, X, tangents, STEPS),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    prep = ad.prepare_jacobian(heat_rod, parallel, X, STEPS)
    np.testing.assert_array_equal(
        ad.jacobian(heat_rod, parallel, 2 * X, STEPS, prep=prep), ad.jacobian(heat_rod, serial, 2 * X, STEPS)
    )


@pytest.mark.parametrize("engine", ["process_pool", "dask_executor"])
def test_a_failed_evaluation_names_its_index_and_keeps_its_exception(engine, request):
    backend = ad.AutoFiniteDiff(method="forward", executor=request.getfixturevalue(engine))
    x = np.array([1.0, 2.0, 3.0])
    # |x| > 3 happens first at the perturbation of the third coordinate: point 3 (0 is x itself).
    with pytest.raises(ValueError, match="simulation diverged") as info:
        ad.jacobian(sleepy_square, backend, x, ad.Constant(3.0))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "raised by `f` at perturbed point 3 of 4" in notes


def test_failure_cancels_the_remaining_evaluations():
    calls = []
    lock = threading.Lock()

    def slow(x):
        with lock:
            calls.append(x.copy())
        time.sleep(0.02)
        if len(calls) == 3:
            raise RuntimeError("solver failed")
        return x * 2

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError, match="solver failed"):
            ad.jacobian(slow, ad.AutoFiniteDiff(executor=pool), np.ones(20))
        time.sleep(0.1)
    # f(x) at preparation, f(x) again, the failing point, and at most one evaluation per worker
    # already under way when it failed; the 38 others were cancelled.
    assert len(calls) <= 4


def test_executor_must_be_an_executor():
    with pytest.raises(TypeError, match=r"AutoFiniteDiff: `executor` must be a `concurrent.futures.Executor`"):
        ad.AutoFiniteDiff(executor=object())  # type: ignore[arg-type]


def test_differentiate_with_dispatches_to_the_executor_inside_jax_and_torch(process_pool):
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    parallel = ad.AutoFiniteDiff(executor=process_pool)
    simulate = ad.DifferentiateWith(heat_rod, parallel)
    weights = np.linspace(1.0, 2.0, 6)
    expected = ad.jacobian(heat_rod, ad.AutoFiniteDiff(), X, STEPS).T @ weights

    def loss_jax(p):
        return jax.numpy.sum(simulate(p, STEPS) * weights)

    with jax.enable_x64(True):
        np.testing.assert_allclose(np.asarray(jax.grad(loss_jax)(X)), expected, rtol=1e-6)
    p = torch.tensor(X, requires_grad=True)
    (simulate(p, STEPS) * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-6)
