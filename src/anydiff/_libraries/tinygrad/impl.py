"""tinygrad: `Tensor.gradient` as the pullback primitive, `TinyJit` at prepare time.

tinygrad has reverse mode only. A pushforward is the "double VJP": the pullback `u -> Jᵀu` is
linear in `u`, so differentiating `<Jᵀu, t>` with respect to `u` gives `J t`, at the cost of two
reverse passes. Every operator comes from the generic routes on these two primitives
(Hessian-vector products reverse over reverse); Jacobians with many rows use one compiled
pullback per row instead of one graph holding them all.

`TinyJit` replays the kernels it captured, which makes a prepared call 10 to 20 times faster than
tinygrad's eager scheduling (a gradient at n = 10: 0.07 ms against 2.8 ms). It bakes Python
values into the kernels and reuses its output buffers from call to call, so anydiff runs eagerly
whenever a context is not a tensor, and copies every result out of the jit's buffers.

tinygrad's CPU device compiles its kernels with a C compiler (`clang`, or `$CC`): without one,
tinygrad finds no usable device and `ad.check_available(ad.AutoTinygrad())` is False.
On the CPU, float64 is kept, and accurate to about 1e-12 or better, except `asin`, `acos` and
`atan`: tinygrad's own approximations, with relative errors up to 2e-5 in values and 1e-6 in
derivatives (and a zero derivative at 0, which `ad.namespace`'s versions correct).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from tinygrad import Tensor, TinyJit, UOp, Variable
from tinygrad import helpers as tinygrad_helpers
from tinygrad.dtype import _to_np_dtype
from tinygrad.engine.jit import JitError
from tinygrad.engine.realize import capturing

from anydiff.extend import (
    JACOBIAN,
    BackendImpl,
    BackendNotInstalledError,
    FunctionNotDifferentiableError,
    Kernels,
    OutputSpec,
    UnsupportedError,
    array_kind,
    flat_size,
    numpy_operand_error,
)

from . import AutoTinygrad
from .namespace import TensorsInNumPyError, from_numpy, to_numpy

__all__ = ["TinygradImpl"]

#: Jacobians with more rows than this run one compiled pullback per row: one graph holding every
#: row takes minutes to compile at a few hundred rows (10 rows: 0.2 ms per Jacobian batched,
#: 1.3 ms row by row; 100 rows: 310 ms against 31 ms).
_ROWS_IN_ONE_GRAPH = 32


# -- device ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _device_problem() -> str | None:
    """Why tinygrad cannot compute here, or `None` when a small computation runs."""
    try:
        value = (Tensor([1.0, 2.0]) * 2).sum().item()
    except Exception as exc:  # no device, no compiler, ...: every failure means "unusable"
        return f"{type(exc).__name__}: {exc}"
    return None if value == 6.0 else f"a test computation returned {value} instead of 6.0"


def _compile_on_any_thread() -> None:
    """Let tinygrad compile kernels on any thread.

    tinygrad keeps its on-disk cache of compiled kernels in SQLite through one connection, which
    Python's `sqlite3` lets only the opening thread use. TensorFlow runs a
    `DifferentiateWith(f, ad.AutoTinygrad())` (the inner part of `ad.SecondOrder(ad.AutoTensorFlow(),
    ad.AutoTinygrad())`) on threads of its own, inside `tf.numpy_function`, where the first
    compilation of a kernel failed with `sqlite3.ProgrammingError`. Other threads now get
    connections of their own, opened as tinygrad opens its one.
    """
    opened, main, local = tinygrad_helpers.db_connection, threading.main_thread(), threading.local()

    def db_connection() -> sqlite3.Connection:
        if threading.current_thread() is main:
            return opened()
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(tinygrad_helpers.CACHEDB, timeout=60, isolation_level="IMMEDIATE")
            connection.execute("PRAGMA synchronous=NORMAL")
            local.connection = connection
        return connection

    tinygrad_helpers.db_connection = db_connection


_compile_on_any_thread()


# -- jit ---------------------------------------------------------------------------------------

# `TinyJit` errors about one call's inputs (a lazy view, one tensor passed twice, another shape).
_INPUT_ERRORS = ("JIT inputs", "duplicate inputs", "args mismatch")
# What `TinyJit` raises when the function reads a tensor's value (`.numpy()`, `.item()`, ...).
_VALUE_READ = "cannot access tensor data"
# What tinygrad's operators raise for an operand they cannot make a tensor of: a NumPy array.
_NOT_A_TENSOR = "Could not infer dtype"
# The start of the error for an array-API `linalg` function the namespace has no tinygrad version of.
_MISSING_LINALG = "'_TinygradLinalg' object has no attribute"
_NUMPY_OPERAND = "numpy.ndarray"


def _jit_inputs_only(args: tuple) -> bool:
    """Whether `TinyJit` takes every value in `args` as an input (tensors, shallowly nested, and
    bound symbolic integers) rather than baking it into the captured kernels."""
    for a in args:
        if isinstance(a, (Tensor, UOp)):
            continue
        items = a.values() if isinstance(a, dict) else a if isinstance(a, (tuple, list)) else None
        if items is None or not all(isinstance(v, Tensor) for v in items):
            return False
    return True


def _map(fn: Callable[[Any], Any], result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(_map(fn, r) for r in result)
    return fn(result)


def _realized(t: Any) -> Any:
    return t.realize()


def _copied(t: Any) -> Any:
    return from_numpy(to_numpy(t))


class _Jitted:
    """`fn` run under `TinyJit`, with the cases the jit gets wrong handled.

    Python values among the arguments would be baked into the captured kernels, so such calls
    run eagerly; results are taken out of the jit's buffers, which the next call overwrites, by
    `take` (a copy, as a tensor by default). The jit captures on the first call (TinyJit's own
    default runs it plainly first), so that an `f` reading a tensor's value fails at once.
    """

    def __init__(self, fn: Callable[..., Any], take: Callable[[Any], Any] = _copied) -> None:
        self.fn, self.take = fn, take
        self.jit: Any = TinyJit(self.eager)
        self.jit.cnt = 1

    def eager(self, *args: Any) -> Any:
        return _map(_realized, self.fn(*args))

    def __call__(self, *args: Any) -> Any:
        if capturing:  # inside another `TinyJit` (finite differences over this kernel), which
            return self.eager(*args)  # refuses to nest: its capture records these kernels too
        if self.jit is not None and _jit_inputs_only(args):
            try:
                return _map(self.take, self.jit(*args))
            except JitError as exc:
                message = str(exc)
                if message.startswith(_VALUE_READ):
                    raise  # `translate_error` explains it
                if not message.startswith(_INPUT_ERRORS):  # nothing to capture: stay eager
                    self.jit = None
        return _map(self.take, self.eager(*args))


# -- the backend -------------------------------------------------------------------------------


def _materialized(g: Any, like: Any) -> Any:
    """`g`, put on `like`'s device when tinygrad built it from constants alone.

    A gradient has no device when nothing in its graph lives on one: `f` ignores `x` (a constant
    zero), or `f` is linear and the seed was itself computed from constants (`xp.eye`), in which
    case `g` is the seed moved around and must be kept, not replaced by zeros.
    """
    if g.device is None:
        return g.clone(device=like.device)
    return g


def _own_copies(contexts: tuple) -> tuple:
    """The tensor contexts copied (and computed) now, the others as they are.

    tinygrad refuses to write into a tensor that a pending lazy graph still reads. A generic route
    that evaluates `f` twice in one kernel (the value, and inside a derivative) would otherwise
    fail on an `ad.Cache` that `f` writes into: each evaluation here gets its own copy.
    """
    return tuple(c.clone().realize() if isinstance(c, Tensor) else c for c in contexts)


def _pullback_rows(y: Any, x: Any, cotangents: Any) -> Any:
    """`u @ J` for each stacked cotangent `u`, one reverse pass each, stacked."""
    rows = [_materialized(y.gradient(x, gradient=u)[0], x) for u in cotangents]
    return Tensor.stack(*rows)


class TinygradImpl(BackendImpl):
    # An uninitialised instance: only its type matters, and a real tensor would pick a device.
    kind = array_kind(Tensor.__new__(Tensor))
    mutation = True  # item assignment (`y[...] = v`) is recorded and differentiable

    def __init__(self, backend: AutoTinygrad) -> None:
        problem = _device_problem()
        if problem is not None:
            raise BackendNotInstalledError(
                f"AutoTinygrad: tinygrad is installed but found no usable device ({problem}). "
                "Its CPU device compiles kernels with a C compiler: install clang (Debian and "
                "Ubuntu: `apt-get install clang`) or point `CC` at one; `DEV=PYTHON` selects "
                "tinygrad's (slow) Python emulator instead."
            )
        super().__init__(backend)
        # A pushforward costs two reverse passes (the double VJP): prefer pullbacks wherever
        # an operator has the choice (Jacobian rows, reverse-over-reverse HVPs).
        self.forward = False

    # -- primitives -----------------------------------------------------------------------------

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        y = f(x, *_own_copies(contexts))
        return y, lambda cotangents: _pullback_rows(y, x, cotangents)

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        y = f(x, *_own_copies(contexts))
        seed = Tensor.zeros(*y.shape, dtype=y.dtype, device=y.device).contiguous()  # any value
        transposed = y.gradient(x, gradient=seed)[0]  # Jᵀ seed, linear in seed
        columns = [_materialized((transposed * t).sum().gradient(seed)[0], y) for t in tangents]
        return y, Tensor.stack(*columns)

    def compile(self, fn: Callable[..., Any], x: Any) -> Callable[..., Any]:
        return _Jitted(fn)

    program_unit = "graph nodes (UOps)"

    def program_size(self, f: Callable[..., Any], x: Any, contexts: tuple, limit: int) -> int | None:
        # tinygrad is lazy, eagerly too: every derivative schedules and compiles the whole graph,
        # so a program above the limit has no uncompiled way and is refused (`eager` is None).
        try:
            y = f(x, *contexts)  # builds the graph, computes nothing
            return len(y.uop.toposort())
        except Exception:  # `f` fails: the derivative's preparation says why
            return None

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        if isinstance(exc, JitError) and str(exc).startswith(_VALUE_READ):
            return FunctionNotDifferentiableError(
                f"{operator}: `f` read the value of a tinygrad tensor while it was being "
                f"compiled ({exc}). Under `ad.AutoTinygrad()`, write `f` with "
                "`xp = ad.namespace(x)` and `xp.` functions instead of `numpy.` calls, "
                "`.numpy()`, `.item()` or `float(...)`, and replace Python branches on array "
                "values by `xp.where`."
            )
        message = str(exc)
        if isinstance(exc, TensorsInNumPyError) or (
            isinstance(exc, RuntimeError) and message.startswith(_NOT_A_TENSOR) and _NUMPY_OPERAND in message
        ):
            return numpy_operand_error(operator, "tinygrad", message)  # `x - data`, `data * x`
        if isinstance(exc, AttributeError) and message.startswith(_MISSING_LINALG):
            name = message.rpartition(" ")[2].strip("'")
            return UnsupportedError(
                f"{operator}: `xp.linalg.{name}` is not available on tinygrad tensors (tinygrad has "
                f"no {name}). Use a backend with linear algebra (`ad.AutoJAX()`, `ad.AutoTorch()`), "
                "or write `f` with the operations tinygrad has."
            )
        return None

    # -- native routes --------------------------------------------------------------------------

    def native_jacobian(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        m = flat_size(spec.shape)
        if m <= _ROWS_IN_ONE_GRAPH:
            return JACOBIAN.generic(self, f, x, None, contexts, spec)
        # One compiled pullback, replayed per row; the row is picked by a symbolic index, so
        # every replay runs the same kernels.
        seeds = from_numpy(np.eye(m, dtype=_to_np_dtype(x.dtype)).reshape(m, *spec.shape))
        index = Variable("row", 0, m - 1)

        def row(x: Any, seeds: Any, i: Any, *contexts: Any) -> Any:
            return _pullback_rows(f(x, *contexts), x, seeds[i][None])[0]

        compiled_row, compiled_f = _Jitted(row, take=to_numpy), _Jitted(f)

        def jacobian(x: Any, *contexts: Any) -> Any:
            rows = [compiled_row(x, seeds, index.bind(i), *contexts) for i in range(m)]
            return from_numpy(np.stack(rows).reshape(*spec.shape, *x.shape))

        def value_and_jacobian(x: Any, *contexts: Any) -> tuple[Any, Any]:
            return compiled_f(x, *contexts), jacobian(x, *contexts)

        return Kernels(jacobian, value_and_jacobian, {"mode": "reverse", "route": "one compiled pullback per row"})

    native = {JACOBIAN: native_jacobian}
