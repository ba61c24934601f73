"""PyTorch: `torch.func` transforms as composable primitives, the fastest native route per operator.

Routes measured on CPU (float64, one thread; n = 10 and 1 000):
- pullback / gradient: the autograd tape (`torch.autograd.grad`) takes 24-32 µs, `torch.func.vjp`
  60-70 µs; anydiff calls the tape's engine without `autograd.grad`'s argument handling (~6 µs);
- pushforward: dual numbers (`torch.autograd.forward_ad`) take 19-25 µs, `torch.func.jvp`
  62-69 µs, the double-backward trick 58-68 µs; anydiff makes and unpacks dual tensors without
  `forward_ad`'s checks (~3 µs);
- Jacobians: `torch.func.jacfwd` / `jacrev` (vmapped) beat loops over the tape from n ≈ 10 on.
The `torch.func` versions remain the primitives because they compose with each other (second
order, `vmap`), which the tape does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.forward_ad import dual_level

from anydiff.extend import (
    DERIVATIVE,
    GRADIENT,
    HESSIAN,
    HVP,
    JACOBIAN,
    PULLBACK,
    PUSHFORWARD,
    BackendImpl,
    FunctionNotDifferentiableError,
    Kernels,
    OutputSpec,
    UnsupportedError,
    array_kind,
    basis_rows,
    flat_size,
    jacobian_batch,
    namespace,
    numpy_operand_error,
    raised_by_operator,
    use_forward,
)

from . import AutoTorch

__all__ = ["TorchImpl"]

# torch's forward mode (dual numbers, and `torch.func.jvp` / `jacfwd` built on them) has one level
# for the whole process: a second thread entering it raises "Nested forward mode AD is not
# supported", so forward-mode computations take turns (reentrant: they nest in one thread).
_FORWARD_MODE = threading.RLock()

# What torch says to `x[::-1]`.
_NEGATIVE_STEP = "step must be greater than zero"

# In torch's errors about an operand it does not take: a NumPy array.
_NUMPY_OPERAND = "numpy.ndarray"

# What torch says when a backward pass cannot run under `is_grads_batched` (see `_tape_pullback`).
_UNBATCHABLE = ("Batching rule not implemented", "Cannot access data pointer of Tensor that doesn't have storage")

# Substrings of the errors torch raises when `f` leaves the tensor world while being traced.
_ESCAPE_MESSAGES = ("numpy()", ".item()", "data pointer", "Tensor.data_ptr", "requires grad")


class _Writer:
    """A two-argument `f(y, x)` turned into a one-argument function (tape routes only)."""

    def __init__(self, f: Callable[..., Any], shape: tuple[int, ...], dtype: Any) -> None:
        self.f, self.shape, self.dtype = f, shape, dtype

    def __call__(self, x: Any, *contexts: Any) -> Any:
        out = torch.empty(self.shape, dtype=self.dtype, device=x.device)
        self.f(out, x, *contexts)
        return out


def _record(f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Any]:
    """Run `f` on a fresh leaf that requires grad: `(leaf, y)` with `y`'s tape recorded."""
    leaf = x.detach().requires_grad_(True)
    if torch.is_grad_enabled():
        return leaf, f(leaf, *contexts)
    with torch.enable_grad():  # called under `torch.no_grad()`
        return leaf, f(leaf, *contexts)


# The engine behind `torch.autograd.grad`, without its Python argument handling: ~6 µs of a 30 µs
# gradient at n = 10 (torch 2.3 on; the engine itself checks the cotangent's shape).
_run_backward = getattr(torch.autograd.graph, "_engine_run_backward", None)


def _tape_grad(y: Any, leaf: Any, u: Any = None, retain: bool = False, create: bool = False) -> Any:
    """`u @ J` from the recorded tape (`u` = 1 for a scalar `y` when omitted), itself recorded when
    `create` (`create_graph`); `allow_unused` is free where `materialize_grads=True` doubles the
    cost of a small gradient (measured)."""
    if not y.requires_grad:  # `f` does not depend on `x`
        return torch.zeros_like(leaf)
    retain = retain or create
    if _run_backward is None or (u is None and y.ndim):  # (torch's own error for a non-scalar `y`)
        g = torch.autograd.grad(y, leaf, u, retain_graph=retain, create_graph=create, allow_unused=True)[0]
    else:
        u = torch.ones_like(y) if u is None else u
        g = _run_backward((y,), (u,), retain, create, (leaf,), True, accumulate_grad=False)[0]
    return torch.zeros_like(leaf) if g is None else g


def _tape_pullback(leaf: Any, y: Any, cotangents: Any) -> Any:
    """`u @ J` for each stacked cotangent `u`, in one vmapped backward pass of the recorded tape
    (`is_grads_batched`), which beats a loop over the tape 1.9x for 7 cotangents at n = 2 500.

    Some backward passes do not run under the legacy vmap behind `is_grads_batched`: a custom
    `autograd.Function` in `f` without a batching rule (an `ad.DifferentiateWith`, for one), and
    the compiled backward of a `torch.compile`d `f`, which reads tensor storage. One backward
    pass per cotangent then.
    """
    products = None
    if y.requires_grad:  # otherwise `f` does not depend on `x`
        try:
            products = torch.autograd.grad(
                y, leaf, cotangents, is_grads_batched=True, retain_graph=True, allow_unused=True
            )[0]
        except RuntimeError as exc:
            if not any(message in str(exc) for message in _UNBATCHABLE):
                raise
            last = cotangents.shape[0] - 1
            products = torch.stack([_tape_grad(y, leaf, u, retain=i < last) for i, u in enumerate(cotangents)])
    return leaf.new_zeros((cotangents.shape[0], *leaf.shape)) if products is None else products


class TorchImpl(BackendImpl):
    kind = array_kind(torch.zeros(()))
    mutation = True
    tape_pullbacks = True

    def __init__(self, backend: AutoTorch) -> None:
        super().__init__(backend)
        self.compile_f = backend.compile

    def function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        """`f` as the kernels call it: compiled by `torch.compile` when asked."""
        return torch.compile(f) if self.compile_f else f

    program_unit = "autograd operations"

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        if not self.compile_f:
            return None  # nothing is compiled
        try:
            with torch.enable_grad():
                y = f(x.detach().requires_grad_(True), *contexts)
        except Exception:  # `f` fails: the derivative's preparation says why
            return None
        seen: set[Any] = set()
        pending = [getattr(y, "grad_fn", None)]
        while pending and len(seen) <= limit:
            node = pending.pop()
            if node is not None and node not in seen:
                seen.add(node)
                pending.extend(child for child, _ in node.next_functions)
        return len(seen)

    def eager(self) -> BackendImpl | None:
        return TorchImpl(dataclasses.replace(self.backend, compile=False))  # type: ignore[arg-type, type-var]

    # -- composable primitives (torch.func) ---------------------------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        def g(x: Any) -> Any:
            return f(x, *contexts)

        with _FORWARD_MODE:
            # torch's stubs: `jvp` may return a triple (with `has_aux=True`, not used here), and
            # `vmap`'s `out_dims` accepts `None` inside a tuple at runtime but not in its annotation.
            if tangents.shape[0] == 1:
                y, ty = torch.func.jvp(g, (x,), (tangents[0],))  # type: ignore[misc]
                return y, ty.unsqueeze(0)
            return torch.func.vmap(  # type: ignore[return-value]
                lambda t: torch.func.jvp(g, (x,), (t,)),
                out_dims=(None, 0),  # type: ignore[arg-type]
            )(tangents)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        y, pull = torch.func.vjp(lambda x: f(x, *contexts), x)  # type: ignore[misc]  # a triple only with has_aux
        return y, torch.func.vmap(lambda u: pull(u)[0])

    def one_argument(self, f: Callable[..., Any], y: Any) -> Callable[..., Any]:
        return _Writer(f, tuple(y.shape), y.dtype)

    def output_spec(self, f: Callable[..., Any], x: Any, contexts: tuple) -> OutputSpec:
        """Evaluate `f` once on an `x` that requires grad, whatever the operator.

        An `f` that turns `x` into NumPy (`numpy.sin(x)`, or `x - data` with a NumPy `data`,
        which NumPy computes) fails on such an `x`; on the dual numbers of forward mode it would
        silently lose the tangent, and return zero derivatives. Here it fails at preparation.
        An `f` writing into `x` in place is evaluated as before, on `x` itself: the dual numbers
        of forward mode follow such writes, the tape refuses them later with its own message.
        """
        leaf = x.detach().requires_grad_(True)
        try:
            with torch.enable_grad():
                return super().output_spec(f, leaf, contexts)
        except RuntimeError as exc:
            if "in-place operation" not in str(exc):
                raise
        return super().output_spec(f, x, contexts)

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc)
        if isinstance(exc, ValueError) and message == _NEGATIVE_STEP:
            return UnsupportedError(
                f"{operator}: `f` sliced a torch tensor with a negative step, such as `x[::-1]` "
                f"({message}): torch tensors have no negative steps. Reverse with `xp.flip` "
                "(`xp = ad.namespace(x)`): `x[::-1]` is `xp.flip(x, axis=0)`, `x[::-2]` is "
                "`xp.flip(x, axis=0)[::2]`, and `x[:, ::-1]` is `xp.flip(x, axis=1)`."
            )
        if isinstance(exc, TypeError) and _NUMPY_OPERAND in message.split("\n", 1)[0]:
            return numpy_operand_error(operator, "torch", message)  # `data - x`, `xp.add(x, data)`
        if isinstance(exc, RuntimeError) and "in-place operation" in message:
            return FunctionNotDifferentiableError(
                f"{operator}: `f` wrote in place into a torch tensor being differentiated "
                f"({message.strip().splitlines()[0]}). Compute new arrays instead (`y = 2 * x`, not "
                "`x *= 2` or `x[0] = ...`; `xp.where` for a masked update), or copy first."
            )
        if isinstance(exc, RuntimeError) and any(s in message for s in _ESCAPE_MESSAGES):
            if raised_by_operator(exc, "torch"):  # `x - data`: NumPy took the operator over
                return numpy_operand_error(operator, "torch", message)
            return FunctionNotDifferentiableError(
                f"{operator}: `f` took a value out of a torch tensor being differentiated "
                f"({message.strip().splitlines()[0]}). Under `ad.AutoTorch()`, `f` receives torch "
                "tensors: write it with `xp = ad.namespace(x)` and `xp.` functions instead of "
                "`numpy.` calls, `.item()` or `float(...)`, and replace Python branches on array "
                "values by `xp.where`."
            )
        return None

    # -- native routes ------------------------------------------------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        f = self.function(f)

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            leaf, y = _record(f, x, contexts)
            return y.detach(), _tape_grad(y, leaf)

        def gradient(x: Any, *contexts: Any) -> Any:
            leaf, y = _record(f, x, contexts)
            return _tape_grad(y, leaf)

        return Kernels(gradient, value_and_gradient, {"mode": "reverse", "route": "autograd tape"})

    def native_pullback(self, f: Any, x: Any, cotangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        f = self.function(f)

        def value_and_pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            leaf, y = _record(f, x, contexts)
            if len(cotangents) == 1:
                return y.detach(), (_tape_grad(y, leaf, cotangents[0]),)
            return y.detach(), tuple(_tape_pullback(leaf, y, torch.stack(cotangents)))

        def pullback(x: Any, cotangents: tuple, *contexts: Any) -> tuple:
            leaf, y = _record(f, x, contexts)
            if len(cotangents) == 1:
                return (_tape_grad(y, leaf, cotangents[0]),)
            return tuple(_tape_pullback(leaf, y, torch.stack(cotangents)))

        return Kernels(pullback, value_and_pullback, {"mode": "reverse", "route": "autograd tape"})

    # Dual numbers lose their tangents through a `torch.compile`d `f` (torch 2.13: wrong
    # pushforwards, no error); `torch.func.jvp` (the generic routes) differentiates it correctly.

    def native_pushforward(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        f = self.function(f)
        if self.compile_f:
            return PUSHFORWARD.generic(self, f, x, tangents, contexts, spec)

        def value_and_pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            y, ty = _dual_pushforward(f, x, tangents, contexts)
            return y, tuple(ty)

        def pushforward(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            return _dual_products(f, x, tangents, contexts)

        return Kernels(pushforward, value_and_pushforward, {"mode": "forward", "route": "dual numbers"})

    def native_derivative(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        f = self.function(f)
        if self.compile_f:
            return DERIVATIVE.generic(self, f, x, None, contexts, spec)

        def value_and_derivative(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, ty = _dual_pushforward(f, x, (torch.ones_like(x),), contexts)
            return y, ty[0]

        def derivative(x: Any, *contexts: Any) -> Any:
            return value_and_derivative(x, *contexts)[1]

        return Kernels(derivative, value_and_derivative, {"mode": "forward", "route": "dual numbers"})

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        n, m = flat_size(tuple(x.shape)), flat_size(spec.shape)
        forward = use_forward(self, n, m)
        # few rows, and no `batch_size` below their number
        few_rows = self.reverse and 0 < m <= _TAPE_ROWS and jacobian_batch(x, spec, False) >= m
        if isinstance(f, _Writer) or few_rows:
            return self._tape_jacobian(f)
        if jacobian_batch(x, spec, forward) < (n if forward else m):
            # `torch.func.jacfwd` has no `chunk_size`: the generic batches of vmapped products
            return JACOBIAN.generic(self, f, x, None, contexts, spec)
        f = self.function(f)
        transform = torch.func.jacfwd if forward else torch.func.jacrev
        turn = _FORWARD_MODE if forward else contextlib.nullcontext()

        # `jacfwd` turns a float32 Jacobian into float64 where a 0-d value meets a Python float
        # (`1.0 + v`, torch 2.13): the dtype of `f(x)` is put back.
        dtype = spec.dtype

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            with turn:
                jac, y = transform(lambda x: _with_aux(f(x, *contexts)), has_aux=True)(x)
            return y, jac.to(dtype)

        def jacobian(x: Any, *contexts: Any) -> Any:
            with turn:
                return transform(f)(x, *contexts).to(dtype)

        info = {"mode": "forward" if forward else "reverse", "route": "torch.func"}
        return Kernels(jacobian, value_and_jacobian, info)

    def _tape_jacobian(self, f: Any) -> Kernels:
        """Rows from the tape in one batched backward pass: for few outputs (`_TAPE_ROWS`), and for
        functions `torch.func` cannot trace (writes into a buffer).

        The identity whose rows are pulled back is made once per shape, dtype and device of `f(x)`
        (the backward pass does not write to it): made on each call, it and the reshapes cost 5-8 %
        of a Jacobian at n = 10 (measured).
        """
        identities: dict[tuple, Any] = {}

        def rows(x: Any, contexts: tuple) -> tuple[Any, Any]:
            leaf, y = _record(f, x, contexts)
            key = (y.shape, y.dtype, y.device)
            seeds = identities.get(key)
            if seeds is None:
                seeds = identities[key] = torch.eye(y.numel(), dtype=y.dtype, device=y.device).reshape(-1, *y.shape)
            jac = _tape_pullback(leaf, y, seeds)
            return y, jac if y.ndim == 1 else jac.reshape((*y.shape, *x.shape))

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            y, jac = rows(x, contexts)
            return y.detach(), jac

        def jacobian(x: Any, *contexts: Any) -> Any:
            return rows(x, contexts)[1]

        return Kernels(jacobian, value_and_jacobian, {"mode": "reverse", "route": "autograd tape"})

    # -- second order ---------------------------------------------------------------------------

    def gradient_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        return torch.func.grad(f) if self.reverse else super().gradient_function(f)

    # Double backward on the tape (reverse over reverse) beats `torch.func.jvp` of
    # `torch.func.grad` (forward over reverse) 2-5x at n = 10 ... 100 000; several tangents, and
    # the Hessian's basis, go through one vmapped backward pass (`is_grads_batched`), which
    # beats a loop over the tape from k = 4 and `torch.func.hessian` 4-6x (measured, float64).
    # `f` runs uncompiled here: `torch.compile` does not support double backward.

    def native_hvp(self, f: Any, x: Any, tangents: tuple, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.reverse:
            return HVP.generic(self, f, x, tangents, contexts, spec)

        def products(leaf: Any, gradient: Any, tangents: tuple) -> tuple:
            if len(tangents) == 1:
                return (_tape_hvp(leaf, gradient, tangents[0]),)
            return tuple(_tape_hvp(leaf, gradient, torch.stack(tangents), batched=True))

        def gradient_and_hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple[Any, tuple]:
            leaf, _, gradient = _record_gradient(f, x, contexts)
            return gradient.detach(), products(leaf, gradient, tangents)

        def hvp(x: Any, tangents: tuple, *contexts: Any) -> tuple:
            leaf, _, gradient = _record_gradient(f, x, contexts)
            return products(leaf, gradient, tangents)

        return Kernels(hvp, gradient_and_hvp, dict(_DOUBLE_BACKWARD))

    def native_hessian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        if not self.reverse:
            return HESSIAN.generic(self, f, x, None, contexts, spec)
        n = flat_size(tuple(x.shape))
        size = jacobian_batch(x, OutputSpec(tuple(x.shape), spec.dtype), True)
        batches = [(start, min(start + size, n)) for start in range(0, n, size)]  # none for an empty x

        def value_gradient_and_hessian(x: Any, *contexts: Any) -> tuple[Any, Any, Any]:
            leaf, y, gradient = _record_gradient(f, x, contexts)
            if len(batches) == 1:  # the whole basis: `torch.eye` is 4x faster than the array-API `basis_rows`
                basis = torch.eye(n, dtype=x.dtype, device=x.device).reshape((n, *x.shape))
                hessian = _tape_hvp(leaf, gradient, basis, batched=True)
            else:
                xp = namespace(x)
                rows = [_tape_hvp(leaf, gradient, basis_rows(xp, x, *batch), batched=True) for batch in batches]
                hessian = torch.cat(rows) if rows else x.new_zeros((0,))
            return y.detach(), gradient.detach(), hessian.reshape((*x.shape, *x.shape))

        def hessian(x: Any, *contexts: Any) -> Any:
            return value_gradient_and_hessian(x, *contexts)[2]

        info = dict(_DOUBLE_BACKWARD) | ({"batch_size": size} if len(batches) > 1 else {})
        return Kernels(hessian, value_gradient_and_hessian, info)

    native = {
        GRADIENT: native_gradient,
        PULLBACK: native_pullback,
        PUSHFORWARD: native_pushforward,
        DERIVATIVE: native_derivative,
        JACOBIAN: native_jacobian,
        HVP: native_hvp,
        HESSIAN: native_hessian,
    }


# torch's own `make_dual` and `unpack_dual` (~1 µs together), without the checks of `forward_ad`'s
# (~3 µs): the prepared call's `x` and tangents are floating tensors of the prepared signature.
_make_dual, _unpack_dual = torch._make_dual, torch._unpack_dual


def _dual_pushforward(f: Callable[..., Any], x: Any, tangents: tuple, contexts: tuple) -> tuple[Any, list]:
    """`(y, [J @ t for t in tangents])` with forward-mode dual numbers, one pass per tangent."""
    results = []
    primal = None
    with _FORWARD_MODE, dual_level() as level:
        for t in tangents:
            primal, tangent = _unpack_dual(f(_make_dual(x, t, level=level), *contexts), level)
            results.append(torch.zeros_like(primal) if tangent is None else tangent)
    return primal.detach(), results  # type: ignore[union-attr]


def _dual_products(f: Callable[..., Any], x: Any, tangents: tuple, contexts: tuple) -> tuple:
    """`(J @ t for t in tangents)`: `_dual_pushforward` without the value, 1.3 µs less for one
    tangent (no list, no `detach`)."""
    if len(tangents) != 1:
        return tuple(_dual_pushforward(f, x, tangents, contexts)[1])
    with _FORWARD_MODE, dual_level() as level:
        primal, tangent = _unpack_dual(f(_make_dual(x, tangents[0], level=level), *contexts), level)
    return (torch.zeros_like(primal) if tangent is None else tangent,)


_DOUBLE_BACKWARD = {"strategy": "reverse-over-reverse", "route": "autograd tape (double backward)"}

#: Up to this many outputs, a Jacobian's rows come from one batched backward pass of the tape:
#: 1.4-4x faster than `torch.func.jacrev`/`jacfwd` (130 vs 510 µs for Lotka-Volterra at n = 2, 105
#: vs 220 µs at n = 10, 140 vs 230 µs at n = 50; `sin(x) * cumsum(x)`: 177 vs 245 µs at n = 10),
#: whose vmap costs ~200 µs per call; from 20-30 outputs of a cumulative sum on, the vmapped
#: transforms win (float64, one thread).
_TAPE_ROWS = 16


def _record_gradient(f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Any, Any]:
    """`(leaf, y, g)` with the gradient `g` itself recorded on the tape, to differentiate again."""
    leaf, y = _record(f, x, contexts)
    if torch.is_grad_enabled():  # entering `enable_grad` costs ~0.7 µs
        return leaf, y, _tape_grad(y, leaf, create=True)
    with torch.enable_grad():
        return leaf, y, _tape_grad(y, leaf, create=True)


def _tape_hvp(leaf: Any, gradient: Any, t: Any, batched: bool = False) -> Any:
    """`H @ t` as the pullback of the recorded gradient (`H` is symmetric); for each of the
    stacked tangents `t` in one vmapped backward pass when `batched`."""
    if batched:
        return _tape_pullback(leaf, gradient, t)
    return _tape_grad(gradient, leaf, t)  # zero when `f` is at most linear in `x`


def _with_aux(y: Any) -> tuple[Any, Any]:
    return y, y
