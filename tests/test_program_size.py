"""The size guard (issue 17, item 3): a Python loop unrolled by tracing is not compiled blindly.

A real RK4 integration of the Lotka–Volterra model, written as a user would (a Python loop over
the steps), on every installed backend, with the limit set in the test so that it stays fast:
above it a compiling backend runs uncompiled, gives the right gradient, says so in `prep.info`
and warns once; a symbolic backend refuses with `ad.UnsupportedError` naming the size and the
cause, before any expression swells (the count stops at the limit: no timing needed). A small
function keeps the backends' usual prep (the snapshots pin it). Combinators pass the guard to
their parts. The whole loop of 500 steps, with every backend's default limit, runs with
ANYDIFF_FULL_MATRIX=1 (about three minutes): each backend gives the right gradient or refuses.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import anydiff as ad

# `torch.compile` (AutoTorch(compile=True)) imports a module that warns on import (torch 2.13)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

STEPS = 50
LIMIT = 500
P = np.array([1.5, 1.0, 1.0, 3.0])  # α, β, δ, γ
U0 = np.array([1.0, 1.0])


def lotka_volterra(p, u0, steps=STEPS):
    """The prey and predator populations after RK4 over [0, 2]: a Python loop of `steps` steps."""
    xp = ad.namespace(p)
    rates = xp.stack([p[0], -p[3]])
    zero = xp.zeros_like(p[0])
    interactions = xp.reshape(xp.stack([zero, -p[1], p[2], zero]), (2, 2))

    def rhs(u):
        return u * (rates + xp.matmul(interactions, u))

    dt = 2.0 / steps
    u = u0
    for _ in range(steps):
        k1 = rhs(u)
        k2 = rhs(u + (dt / 2) * k1)
        k3 = rhs(u + (dt / 2) * k2)
        k4 = rhs(u + dt * k3)
        u = u + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return xp.sum(u * u)


def small(p):
    xp = ad.namespace(p)
    return xp.sum(xp.sin(p) ** 2)


# Each backend with the guard: whether it runs a program above the limit uncompiled (True) or
# refuses it (False), and the backend object with the test's limit.
GUARDED = {
    "AutoJAX": (True, lambda: ad.AutoJAX(max_program_size=LIMIT)),
    "AutoSymPy": (False, lambda: ad.AutoSymPy(max_program_size=LIMIT)),
    "AutoCasADi": (False, lambda: ad.AutoCasADi(max_program_size=LIMIT)),
    "AutoPyTensor": (False, lambda: ad.AutoPyTensor(max_program_size=LIMIT)),
    "AutoTensorFlow": (True, lambda: ad.AutoTensorFlow(max_program_size=LIMIT)),
    "AutoMLX": (True, lambda: ad.AutoMLX(max_program_size=LIMIT)),
    "AutoTorch": (True, lambda: ad.AutoTorch(compile=True, max_program_size=LIMIT)),
    "AutoTinygrad": (False, lambda: ad.AutoTinygrad(max_program_size=LIMIT)),
}
AVAILABLE = {type(b).__name__: b for b in ad.available_backends()}


def reference() -> np.ndarray:
    return ad.gradient(lotka_volterra, ad.AutoFiniteDiff(method="complex"), P, ad.Constant(U0))


def backend_or_skip(name: str) -> ad.AbstractBackend:
    if name not in AVAILABLE:
        pytest.skip(f"{name} is not installed here")
    return GUARDED[name][1]()


@pytest.mark.parametrize("name", [n for n, (eager, _) in GUARDED.items() if eager])
def test_large_program_runs_uncompiled_and_warns_once(name):
    backend = backend_or_skip(name)
    with pytest.warns(ad.ProgramSizeWarning, match=r"more than 500 .*Python loop") as caught:
        prep = ad.prepare_gradient(lotka_volterra, backend, P, ad.Constant(U0))
    assert len(caught) == 1
    assert prep.info["compiled"] is False
    assert prep.info["program_size"] > LIMIT
    g = ad.gradient(lotka_volterra, backend, P, ad.Constant(U0), prep=prep)
    np.testing.assert_allclose(g, reference(), rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.ProgramSizeWarning)  # once: not again for this f
        again = ad.prepare_gradient(lotka_volterra, backend, P, ad.Constant(U0))
    assert again.info["compiled"] is False


@pytest.mark.parametrize("name", [n for n, (eager, _) in GUARDED.items() if not eager])
def test_large_program_is_refused_by_symbolic_backends(name):
    backend = backend_or_skip(name)
    # counting stops past the limit, so the refusal costs a trace of `LIMIT` operations at most
    with pytest.raises(ad.UnsupportedError) as info:
        ad.gradient(lotka_volterra, backend, P, ad.Constant(U0))
    message = str(info.value)
    assert message.startswith("gradient: `f` traces to a program of more than 500 ")
    assert "Python loop" in message and "unrolled" in message
    assert "`ad.AutoJAX()`" in message and "`ad.AutoFiniteDiff()`" in message
    assert f"{name}(max_program_size=...)" in message


@pytest.mark.parametrize("name", list(GUARDED))
def test_below_the_limit_nothing_changes(name):
    backend = backend_or_skip(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.ProgramSizeWarning)
        prep = ad.prepare_gradient(small, backend, P)
    assert "compiled" not in prep.info and "program_size" not in prep.info
    rtol = 1e-6 if name == "AutoMLX" else 1e-12  # MLX computes `sin` of float64 in float32
    np.testing.assert_allclose(ad.gradient(small, backend, P, prep=prep), np.sin(2 * P), rtol=rtol)


@pytest.mark.parametrize("name", list(GUARDED))
def test_no_limit_turns_the_guard_off(name):
    if name not in AVAILABLE:
        pytest.skip(f"{name} is not installed here")
    backend = type(GUARDED[name][1]())(max_program_size=None)
    prep = ad.prepare_gradient(small, backend, P)
    assert "compiled" not in prep.info


def test_default_limits_are_documented_on_the_backends():
    assert ad.AutoJAX().max_program_size == 1000
    assert ad.AutoSymPy().max_program_size == 50_000
    assert ad.AutoPyTensor().max_program_size == 500
    assert ad.AutoCasADi().max_program_size == 100_000
    assert ad.AutoTensorFlow().max_program_size == 2000
    assert ad.AutoMLX().max_program_size == 2000
    assert ad.AutoTorch().max_program_size == 2000
    assert ad.AutoTinygrad().max_program_size == 1000
    assert repr(ad.AutoJAX()) == "AutoJAX()"
    assert repr(ad.AutoJAX(max_program_size=10)) == "AutoJAX(max_program_size=10)"


def test_torch_without_compile_counts_nothing():
    if "AutoTorch" not in AVAILABLE:
        pytest.skip("AutoTorch is not installed here")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ad.ProgramSizeWarning)
        prep = ad.prepare_gradient(lotka_volterra, ad.AutoTorch(max_program_size=LIMIT), P, ad.Constant(U0))
    assert "compiled" not in prep.info


# -- combinators pass the guard to their parts ---------------------------------------------------


def hvp_reference() -> np.ndarray:
    pair = ad.SecondOrder(ad.AutoFiniteDiff(), ad.AutoFiniteDiff(method="complex"))
    return ad.hvp(lotka_volterra, pair, P, np.ones(4), ad.Constant(U0))


@pytest.mark.parametrize("outer", ["AutoJAX", "AutoFiniteDiff"])
def test_second_order_runs_a_large_jax_part_uncompiled(outer):
    backend_or_skip("AutoJAX")
    jax = ad.AutoJAX(max_program_size=LIMIT)
    pair = ad.SecondOrder(jax if outer == "AutoJAX" else ad.AutoFiniteDiff(), jax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ProgramSizeWarning)  # once per `f` and part: tested above
        prep = ad.prepare_hvp(lotka_volterra, pair, P, np.ones(4), ad.Constant(U0))
    assert prep.info["compiled"] is False and prep.info["program_size"] > LIMIT
    h = ad.hvp(lotka_volterra, pair, P, np.ones(4), ad.Constant(U0), prep=prep)
    np.testing.assert_allclose(h, hvp_reference(), rtol=1e-5)


def test_second_order_refuses_what_its_part_refuses():
    backend_or_skip("AutoTinygrad")
    tiny = ad.AutoTinygrad(max_program_size=LIMIT)
    with pytest.raises(ad.UnsupportedError, match=r"hvp: `f` traces to a program of more than 500 .*AutoTinygrad"):
        ad.hvp(lotka_volterra, ad.SecondOrder(tiny, tiny), P, np.ones(4), ad.Constant(U0))


def test_mixed_mode_and_sparse_pass_the_guard_on():
    backend_or_skip("AutoJAX")
    jax = ad.AutoJAX(max_program_size=LIMIT)
    for backend in (ad.MixedMode(ad.AutoFiniteDiff(), jax), ad.AutoSparse(jax)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ad.ProgramSizeWarning)
            prep = ad.prepare_gradient(lotka_volterra, backend, P, ad.Constant(U0))
        assert prep.info["compiled"] is False
        g = ad.gradient(lotka_volterra, backend, P, ad.Constant(U0), prep=prep)
        np.testing.assert_allclose(g, reference(), rtol=1e-10)


# -- the whole loop, every backend, default limits --------------------------------------------


@pytest.mark.skipif(os.environ.get("ANYDIFF_FULL_MATRIX") != "1", reason="ANYDIFF_FULL_MATRIX=1: minutes")
@pytest.mark.parametrize("backend", ad.available_backends(), ids=repr)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # numdifftools' large steps
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_five_hundred_steps_right_or_refused(backend):
    def rk4_500(p, u0):
        return lotka_volterra(p, u0, 500)

    want = ad.gradient(rk4_500, ad.AutoFiniteDiff(method="complex"), P, ad.Constant(U0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ad.ProgramSizeWarning)
            g = ad.gradient(rk4_500, backend, P, ad.Constant(U0))
    except ad.UnsupportedError as exc:
        assert "Python loop" in str(exc) and "max_program_size" in str(exc)
        return
    np.testing.assert_allclose(g, want, rtol=1e-6)
