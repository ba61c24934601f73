"""The core: backend objects, registry, array kinds, contexts, preparation and errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
import traceback

import numpy as np
import pytest

import anydiff as ad

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

BACKENDS = [ad.AutoFiniteDiff(), ad.AutoJAX(), ad.AutoTorch()]
TOL = {"AutoFiniteDiff": 1e-7}


def close(a, b, backend):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=TOL.get(type(backend).__name__, 1e-12), atol=1e-9)


def energy(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def energy_gradient(x):
    return np.sin(2 * np.asarray(x))


def stretch(x):
    xp = ad.namespace(x)
    return xp.sin(x) * xp.cumulative_sum(x)


def stretch_jacobian(x):
    x = np.asarray(x)
    n = x.size
    lower = np.tril(np.ones((n, n)))
    return np.diag(np.cos(x) * np.cumsum(x)) + np.sin(x)[:, None] * lower


def to_kind(a, kind):
    if kind == "numpy":
        return np.asarray(a)
    if kind == "torch":
        return torch.tensor(np.asarray(a))
    with jax.enable_x64(True):
        return jnp.asarray(a)


KIND_TYPES = {"numpy": np.ndarray, "torch": torch.Tensor, "jax": jax.Array}


def test_import_loads_no_ad_library():
    code = (
        "import sys, anydiff as ad; ad.available_backends(); "
        "print(sorted(m for m in ('jax', 'torch', 'tensorflow', 'mlx', 'autograd', 'tinygrad', "
        "'casadi', 'pytensor', 'sympy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_backend_objects_are_frozen_hashable_and_show_non_defaults():
    b = ad.AutoJAX(mode="forward")
    assert repr(b) == "AutoJAX(mode='forward')"
    assert repr(ad.AutoTorch()) == "AutoTorch()"
    assert hash(b) == hash(ad.AutoJAX(mode="forward")) and b == ad.AutoJAX(mode="forward")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.mode = "reverse"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ad.AutoJAX("forward")  # type: ignore[misc]  # keyword-only
    with pytest.raises(ValueError, match=r"AutoJAX: `mode` must be None .* got 'sideways'"):
        ad.AutoJAX(mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`method` must be one of .* got 'backward'"):
        ad.AutoFiniteDiff(method="backward")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"SecondOrder: `inner` must be a backend object"):
        ad.SecondOrder(ad.AutoJAX(), "torch")  # type: ignore[arg-type]


def test_available_backends_and_check_available():
    names = [type(b).__name__ for b in ad.available_backends()]
    assert {"AutoFiniteDiff", "AutoJAX", "AutoTorch"} <= set(names)
    assert all(ad.check_available(b) for b in BACKENDS)


def test_missing_library_raises_with_install_hint():
    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
    class AutoNowhere(ad.AbstractBackend):
        extra = "nowhere"

    ad.register_backend(AutoNowhere, "anydiff_tests_absent_library:Impl", "anydiff_tests_absent_library")
    assert not ad.check_available(AutoNowhere())
    assert "AutoNowhere" not in [type(b).__name__ for b in ad.available_backends()]
    with pytest.raises(ad.BackendNotInstalledError, match=r"pip install 'anydiff\[nowhere\]'") as info:
        ad.gradient(energy, AutoNowhere(), np.ones(3))
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
@pytest.mark.parametrize("kind", ["numpy", "torch", "jax"])
def test_array_kind_in_is_array_kind_out_and_float64_is_kept(backend, kind):
    x0 = np.linspace(0.1, 1.0, 4)
    x = to_kind(x0, kind)
    y, g = ad.value_and_gradient(energy, backend, x)
    assert isinstance(g, KIND_TYPES[kind]) and str(g.dtype).endswith("float64")
    close(g, energy_gradient(x0), backend)
    close(y, np.sum(np.sin(x0) ** 2), backend)
    jac = ad.jacobian(stretch, backend, x)
    assert isinstance(jac, KIND_TYPES[kind]) and tuple(jac.shape) == (4, 4)
    close(jac, stretch_jacobian(x0), backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_float32_stays_float32(backend):
    g = ad.gradient(energy, backend, np.linspace(0.1, 1.0, 4, dtype=np.float32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, energy_gradient(np.linspace(0.1, 1.0, 4)), rtol=2e-2, atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_python_float_gives_numpy(backend):
    y, d = ad.value_and_derivative(lambda t: ad.namespace(t).stack([t, t**2]), backend, 3.0)
    assert isinstance(d, np.ndarray)
    close(d, [1.0, 6.0], backend)
    close(y, [3.0, 9.0], backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_batched_tangents_and_dot_product_identity(backend):
    rng = np.random.default_rng(0)
    x, v, u = rng.uniform(-1, 1, (3, 5))
    jac = stretch_jacobian(x)
    ty = ad.pushforward(stretch, backend, x, (v, 2 * v))
    assert isinstance(ty, tuple) and len(ty) == 2
    close(ty[0], jac @ v, backend)
    close(ty[1], 2 * jac @ v, backend)
    tx = ad.pullback(stretch, backend, x, u)
    close(tx, u @ jac, backend)
    # <u, J v> = <J^T u, v>
    assert abs(u @ ad.pushforward(stretch, backend, x, v) - tx @ v) < 1e-6


AUTOGRAD = pytest.param(
    ad.AutoAutograd(),
    marks=pytest.mark.skipif(importlib.util.find_spec("autograd") is None, reason="autograd is not installed"),
)


@pytest.mark.parametrize("backend", [*BACKENDS, AUTOGRAD], ids=repr)
@pytest.mark.parametrize("kind", ["numpy", "torch", "jax"])
def test_one_prep_takes_one_tangent_a_tuple_of_one_and_several(backend, kind):
    """The generic routes' kernels, and autograd's own, take one tangent alone
    (`Kernels.single_tangent`) and a tuple: the same prep answers all three forms, in either
    order, with the right numbers."""
    rng = np.random.default_rng(2)
    x0, v, u = rng.uniform(-1, 1, (3, 4))
    x, tv, tu = (to_kind(a, kind) for a in (x0, v, u))
    jac = stretch_jacobian(x0)
    hessian = np.diag(2 * np.cos(2 * x0))  # of `energy`
    calls = [
        (ad.prepare_pushforward, ad.pushforward, ad.value_and_pushforward, stretch, jac @ v, jac @ u),
        (ad.prepare_pullback, ad.pullback, ad.value_and_pullback, stretch, v @ jac, u @ jac),
        (ad.prepare_hvp, ad.hvp, ad.gradient_and_hvp, energy, hessian @ v, hessian @ u),
    ]
    for prepare, plain, value_and, f, at_v, at_u in calls:
        prep = prepare(f, backend, x, tv)
        for _ in range(2):  # a compiled kernel first called with one form, then the others
            one = plain(f, backend, x, tv, prep=prep)
            assert isinstance(one, KIND_TYPES[kind])
            close(one, at_v, backend)
            (first,) = plain(f, backend, x, (tv,), prep=prep)
            close(first, at_v, backend)
            _, both = value_and(f, backend, x, (tv, tu), prep=prep)
            close(both[0], at_v, backend)
            close(both[1], at_u, backend)
            _, one = value_and(f, backend, x, tu, prep=prep)
            close(one, at_u, backend)


def matrix_function(x, a):
    xp = ad.namespace(x)
    return xp.matmul(a, xp.tanh(x))


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_matrix_input_and_output_with_constant_context(backend):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (3, 2))
    a = rng.uniform(-1, 1, (4, 3))
    jac = ad.jacobian(matrix_function, backend, x, ad.Constant(a))
    expected = np.einsum("il,jm->ijlm", a, np.eye(2)) * (1 - np.tanh(x) ** 2)[None, None]
    assert tuple(jac.shape) == (4, 2, 3, 2)
    close(jac, expected, backend)
    prep = ad.prepare_jacobian(matrix_function, backend, x, ad.Constant(a))
    close(ad.jacobian(matrix_function, backend, x, ad.Constant(2 * a), prep=prep), 2 * expected, backend)


def write_squares(y, x, c):
    y[...] = c * x**2


@pytest.mark.parametrize("backend", [ad.AutoFiniteDiff(), ad.AutoTorch()], ids=repr)
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_two_argument_functions(backend, kind):
    x = to_kind([1.0, 2.0, 3.0], kind)
    buf = to_kind(np.zeros(3), kind)
    c = ad.Constant(2.0)
    y, jac = ad.value_and_jacobian(write_squares, backend, x, c, y=buf)
    close(jac, np.diag([4.0, 8.0, 12.0]), backend)
    close(y, [2.0, 8.0, 18.0], backend)
    close(ad.pushforward(write_squares, backend, x, to_kind(np.ones(3), kind), c, y=buf), [4.0, 8.0, 12.0], backend)
    close(ad.pullback(write_squares, backend, x, to_kind(np.ones(3), kind), c, y=buf), [4.0, 8.0, 12.0], backend)
    scalar = to_kind(np.asarray(1.5), kind)
    close(ad.derivative(write_squares, backend, scalar, c, y=to_kind(np.asarray(0.0), kind)), 6.0, backend)
    assert np.all(np.asarray(buf) == 0.0), "the output buffer is a template, never written to"


def test_two_argument_functions_on_jax_are_unsupported():
    with pytest.raises(ad.UnsupportedError, match=r"AutoJAX\(\) cannot differentiate a two-argument function"):
        ad.jacobian(write_squares, ad.AutoJAX(), np.ones(3), ad.Constant(1.0), y=np.zeros(3))


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_cache_context_is_scratch_space(backend):
    def f(x, cache):
        xp = ad.namespace(x)
        return xp.sum(x * cache)  # the cache's value is irrelevant to anydiff, but f may read it

    g = ad.gradient(f, backend, np.ones(3), ad.Cache(np.full(3, 2.0)))
    close(g, [2.0, 2.0, 2.0], backend)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_inputs_are_never_mutated(backend):
    x = np.linspace(0.1, 1.0, 4)
    t = np.ones(4)
    a = np.eye(4)
    copies = [x.copy(), t.copy(), a.copy()]

    def f(x, a):
        xp = ad.namespace(x)
        return xp.matmul(a, xp.sin(x))

    ad.jacobian(f, backend, x, ad.Constant(a))
    ad.pushforward(f, backend, x, t, ad.Constant(a))
    ad.pullback(f, backend, x, t, ad.Constant(a))
    for original, now in zip(copies, [x, t, a], strict=True):
        np.testing.assert_array_equal(original, now)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
def test_prep_reused_at_a_second_point(backend):
    prep = ad.prepare_gradient(energy, backend, np.zeros(4))
    for x in (np.linspace(0.1, 1.0, 4), np.linspace(-2.0, 0.3, 4)):
        close(ad.gradient(energy, backend, x, prep=prep), energy_gradient(x), backend)
        close(ad.value_and_gradient(energy, backend, x, prep=prep)[1], energy_gradient(x), backend)


def test_prep_mismatch_lists_expected_and_received():
    backend = ad.AutoFiniteDiff()
    prep = ad.prepare_gradient(energy, backend, np.zeros(4))
    with pytest.raises(ad.PreparationMismatchError) as info:
        ad.gradient(energy, backend, np.zeros(5, dtype=np.float32), prep=prep)
    message = str(info.value)
    assert "gradient: the `prep` passed was built for other arguments" in message
    assert "✗ shape       (4,)" in message and "(5,)" in message
    assert "✗ dtype       float64" in message and "float32" in message
    assert "  function" in message and "✗ function" not in message
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ function    energy .*<lambda>"):
        ad.gradient(lambda x: energy(x), backend, np.zeros(4), prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ operator    gradient\s+jacobian"):
        ad.jacobian(energy, backend, np.zeros(4), prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ backend"):
        ad.gradient(energy, ad.AutoFiniteDiff(method="forward"), np.zeros(4), prep=prep)
    with pytest.raises(ad.PreparationMismatchError, match=r"✗ array kind  numpy\s+torch"):
        ad.gradient(energy, backend, torch.zeros(4, dtype=torch.float64), prep=prep)
    # An equal backend object (not the same one) is accepted.
    ad.gradient(energy, ad.AutoFiniteDiff(), np.zeros(4), prep=prep)
    with pytest.raises(TypeError, match=r"gradient: `prep` must come from `ad.prepare_gradient`; got dict"):
        ad.gradient(energy, backend, np.zeros(4), prep={})


def test_a_prepared_call_shows_its_lines_in_a_traceback():
    # Prepared calls are generated functions (`_core/calls.py`); a traceback through one shows its source.
    def f(x, fail):
        if fail:
            raise ValueError("f failed")
        return energy(x)

    backend = ad.AutoFiniteDiff()
    prep = ad.prepare_gradient(f, backend, np.zeros(3), ad.Constant(False))
    with pytest.raises(ValueError, match="f failed") as info:
        ad.gradient(f, backend, np.ones(3), ad.Constant(True), prep=prep)
    text = "".join(traceback.format_exception(info.value))
    assert "<anydiff prepared call" in text and "r = kernel(x, *convert_contexts(contexts))" in text


def test_gradient_of_non_scalar_function():
    with pytest.raises(
        ValueError,
        match=r"gradient: `f` must return a scalar \(shape \(\)\); it returned shape \(3,\)\. Use `ad.jacobian`",
    ):
        ad.gradient(lambda x: x**2, ad.AutoJAX(), np.ones(3))


@pytest.mark.parametrize("dtype", ["int64", "bool", "complex128", "float16"])
def test_non_float_x(dtype):
    x = np.ones(3, dtype=dtype)
    with pytest.raises(
        TypeError, match=rf"gradient: `x` must have a real floating-point dtype \(float32 or float64\); got {dtype}"
    ):
        ad.gradient(energy, ad.AutoFiniteDiff(), x)


def test_x_of_unknown_type():
    with pytest.raises(TypeError, match=r"jacobian: `x` must be an array .* got str"):
        ad.jacobian(stretch, ad.AutoFiniteDiff(), "ab")
    with pytest.raises(TypeError, match=r"gradient: `x` must be an array .* got int"):
        ad.gradient(energy, ad.AutoFiniteDiff(), 3)


def test_numpy_inside_jax_explains_how_to_write_f():
    def f(x):
        return np.sum(np.sin(x))

    with pytest.raises(
        ad.FunctionNotDifferentiableError,
        match=r"gradient: `f` turned a JAX tracer into a concrete value .* `xp = ad.namespace\(x\)`",
    ):
        ad.gradient(f, ad.AutoJAX(), np.ones(3))


def test_numpy_inside_torch_explains_how_to_write_f():
    def f(x):
        return torch.tensor(np.sum(np.sin(x.numpy())))

    with pytest.raises(ad.FunctionNotDifferentiableError, match=r"gradient: `f` took a value out of a torch tensor"):
        ad.gradient(f, ad.AutoTorch(), np.ones(3))


def test_tangent_checks():
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"pushforward: the tangent must have the shape of `x`, \(3,\); got \(4,\)"):
        ad.pushforward(stretch, ad.AutoFiniteDiff(), x, np.ones(4))
    with pytest.raises(ValueError, match=r"pullback: tangent 1 must have the shape of `f\(x\)`, \(3,\); got \(2,\)"):
        ad.pullback(stretch, ad.AutoFiniteDiff(), x, (np.ones(3), np.ones(2)))
    with pytest.raises(
        TypeError, match=r"pushforward: the tangent must be the same kind of array as `x` \(numpy\); got torch"
    ):
        ad.pushforward(stretch, ad.AutoFiniteDiff(), x, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"pushforward: the tuple of tangents is empty"):
        ad.pushforward(stretch, ad.AutoFiniteDiff(), x, ())


def test_unwrapped_extra_argument():
    with pytest.raises(
        TypeError,
        match=r"gradient: extra positional arguments after `x` must be wrapped as `ad.Constant\(value\)`.* bare ndarray",
    ):
        ad.gradient(lambda x, a: energy(x * a), ad.AutoFiniteDiff(), np.ones(3), np.ones(3))


def test_bad_f_and_backend_arguments():
    with pytest.raises(TypeError, match=r"gradient: `f` must be callable; got str"):
        ad.gradient("sin", ad.AutoFiniteDiff(), np.ones(3))
    with pytest.raises(
        TypeError,
        match=r"gradient: `backend` must be a backend object .* The argument order is `ad.gradient\(f, backend, x, ...\)`",
    ):
        ad.gradient(energy, np.ones(3), ad.AutoFiniteDiff())
    with pytest.raises(ValueError, match=r"derivative: `x` must be a scalar .* got shape \(3,\)\. Use `ad.jacobian`"):
        ad.derivative(stretch, ad.AutoFiniteDiff(), np.ones(3))


@pytest.mark.parametrize("method", ["forward", "central", "complex"])
def test_finite_difference_schemes(method):
    x = np.linspace(0.1, 1.0, 5)
    backend = ad.AutoFiniteDiff(method=method)
    rtol = {"forward": 1e-6, "central": 1e-9, "complex": 1e-14}[method]
    np.testing.assert_allclose(ad.jacobian(stretch, backend, x), stretch_jacobian(x), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ad.pushforward(stretch, backend, x, x), stretch_jacobian(x) @ x, rtol=rtol * 10)


def test_finite_differences_through_an_executor():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        backend = ad.AutoFiniteDiff(executor=pool)
        x = np.linspace(0.1, 1.0, 5)
        np.testing.assert_array_equal(ad.jacobian(stretch, backend, x), ad.jacobian(stretch, ad.AutoFiniteDiff(), x))


def test_jax_never_changes_the_global_x64_flag():
    before = jax.config.jax_enable_x64
    ad.gradient(energy, ad.AutoJAX(), np.ones(3))
    assert jax.config.jax_enable_x64 == before


def test_jax_x64_is_enabled_for_each_prepared_call_and_left_as_it_was():
    """float64 NumPy inputs run in x64 (a `Switch` on JAX's state), which is restored after each
    call, also after one that raises (here a NumPy function called through `DifferentiateWith`),
    and with x64 already enabled by the user."""

    def host(x):
        if x[0] > 5:
            raise ValueError("x[0] is over 5")
        return np.sin(x) ** 2

    bridged = ad.DifferentiateWith(host, ad.AutoFiniteDiff())

    def f(x):
        xp = ad.namespace(x)
        return xp.sum(bridged(x))

    x = np.linspace(0.1, 1.0, 4)
    prep = ad.prepare_gradient(f, ad.AutoJAX(), x)
    for enabled in (False, True):
        with jax.enable_x64(enabled):
            g = ad.gradient(f, ad.AutoJAX(), x, prep=prep)
            assert g.dtype == np.float64 and jax.enable_x64.value is enabled
            np.testing.assert_allclose(g, energy_gradient(x), rtol=1e-6)
            with pytest.raises(Exception, match="over 5"):
                ad.gradient(f, ad.AutoJAX(), x + 10, prep=prep)
            assert jax.enable_x64.value is enabled
    switch = ad.extend.array_kind(jnp.zeros(())).context(x)
    assert isinstance(switch, ad.extend.Switch)
    with switch():
        assert jax.enable_x64.value is True
    assert jax.enable_x64.value is False


def test_conversions_into_jax_keep_every_dtype_and_leave_x64_as_it_was():
    """NumPy arrays and torch tensors (through DLPack, one that requires grad too) become JAX
    arrays of their own dtype, float64 and int64 included, whether the user has x64 enabled."""
    kind = ad.extend.array_kind(jnp.zeros(()))
    values = np.array([0.25, -1.5, 3.0])
    for enabled in (False, True):
        with jax.enable_x64(enabled):
            for dtype in (np.float64, np.float32, np.int64, np.int32):
                a = values.astype(dtype)
                converted = [kind.from_numpy(a), kind.from_foreign(torch.from_numpy(a.copy()))]
                if dtype in (np.float64, np.float32):
                    converted.append(kind.from_foreign(torch.tensor(a, requires_grad=True)))
                for b in converted:
                    assert kind.is_array(type(b)) and b.dtype == dtype
                    np.testing.assert_array_equal(np.asarray(b), a)
                    assert jax.enable_x64.value is enabled


def test_prep_reports_its_choices():
    prep = ad.prepare_jacobian(stretch, ad.AutoJAX(), np.ones(3))
    assert prep.info["mode"] == "forward" and prep.mode == "forward"
    assert "AutoJAX()" in repr(prep) and "(3,)" in repr(prep)
    reverse = ad.prepare_jacobian(lambda x: stretch(x)[:1], ad.AutoJAX(), np.ones(3))
    assert reverse.info["mode"] == "reverse"
    with pytest.raises(AttributeError):
        prep.colors  # noqa: B018


def test_namespace_of_one_array_is_remembered_until_a_namespace_is_registered():
    import array_api_compat

    from anydiff._core import arrays

    class Marked(np.ndarray):
        pass

    a = np.zeros(2).view(Marked)
    assert ad.namespace(a) is array_api_compat.array_namespace(a)
    assert ad.namespace(a) is arrays._COMPAT[Marked]  # the second call reads the table
    mine = object()
    arrays.register_namespace(Marked, lambda _: mine)
    try:
        assert ad.namespace(a) is mine
    finally:
        del arrays._NAMESPACES[Marked]
    assert ad.namespace(a) is array_api_compat.array_namespace(a)


def test_torch_tape_jacobian_reuses_its_identity_and_keeps_results_apart():
    # Few outputs: rows pulled back from the tape, the identity made once per output signature.
    def outer(x):
        return x[:3, None] * x[None, 1:3] ** 2  # (3, 2) from 4 numbers

    def expected(x):
        jac = np.zeros((3, 2, 4))
        for i in range(3):
            for j in range(2):
                jac[i, j, i] += x[j + 1] ** 2
                jac[i, j, j + 1] += 2 * x[i] * x[j + 1]
        return jac

    backend = ad.AutoTorch()
    points = [np.array([1.0, 2.0, -1.0, 0.5]), np.array([0.3, -0.7, 2.0, 1.5])]
    prep = ad.prepare_jacobian(outer, backend, torch.tensor(points[0]))
    assert prep.info["route"] == "autograd tape"
    first = ad.jacobian(outer, backend, torch.tensor(points[0]), prep=prep)
    y, second = ad.value_and_jacobian(outer, backend, torch.tensor(points[1]), prep=prep)
    assert not first.requires_grad and not y.requires_grad
    np.testing.assert_allclose(first.numpy(), expected(points[0]), rtol=1e-14)
    np.testing.assert_allclose(second.numpy(), expected(points[1]), rtol=1e-14)
    np.testing.assert_allclose(y.numpy(), outer(points[1]), rtol=1e-14)
    np.testing.assert_allclose(ad.jacobian(outer, backend, torch.tensor(points[0]), prep=prep).numpy(), first.numpy())
