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
def dask_client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dask's own start-up chatter (ports, deprecations)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        yield client
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.close()
            cluster.close()


@pytest.fixture(scope="module")
def dask_executor(dask_client):
    return dask_client.get_executor()


ENGINES = ["process_pool", "dask_executor", "dask_client"]


@pytest.mark.parametrize("engine", ENGINES)
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


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failed_evaluation_names_its_index_and_keeps_its_exception(engine, request):
    backend = ad.AutoFiniteDiff(method="forward", executor=request.getfixturevalue(engine))
    x = np.array([1.0, 2.0, 3.0])
    # |x| > 3 happens first at the perturbation of the third coordinate: point 3 (0 is x itself).
    with pytest.raises(ValueError, match="simulation diverged") as info:
        ad.jacobian(sleepy_square, backend, x, ad.Constant(3.0))
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "raised by `f` at perturbed point 3 of 4" in notes


def test_failure_cancels_the_chunks_not_yet_started():
    calls = []
    lock = threading.Lock()

    def slow(x):
        with lock:
            calls.append(x.copy())
            count = len(calls)
        time.sleep(0.02)
        if count == 3:
            raise RuntimeError("solver failed")
        return x * 2

    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(RuntimeError, match="solver failed"):
            ad.jacobian(slow, ad.AutoFiniteDiff(executor=pool), np.ones(40))
        time.sleep(0.3)
    # f(x) at preparation, then the 81 points of central differences in 4 chunks of at most 21,
    # two per worker: the failure comes in one of the first two, which run at once; the worker
    # that failed may have taken the next chunk before the others are cancelled: at most
    # 1 + 3 * 21 evaluations, not 82.
    assert len(calls) <= 64


def test_a_dask_client_gets_each_chunk_as_one_task(dask_client):
    distributed = pytest.importorskip("distributed")
    with distributed.get_task_stream(client=dask_client) as stream:
        ad.jacobian(heat_rod, ad.AutoFiniteDiff(executor=dask_client), X, STEPS)
    # Two chunks per worker thread (2 workers of 1): four tasks for the 13 points.
    assert sum(str(task["key"]).startswith("_run") for task in stream.data) == 4


def test_executor_must_be_an_executor():
    with pytest.raises(TypeError, match=r"`executor` must be a `concurrent.futures.Executor` .* or a Dask"):
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
