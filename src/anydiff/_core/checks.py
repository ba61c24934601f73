"""One-time checks of the arguments of an operator, each with the error that teaches the fix.

Run at preparation (and, for tangents, on each prepared call through the cheap `tangent_checker`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .arrays import ArrayKind, array_kind, dtype_name, namespace
from .kernels import OutputSpec, device
from .operator import Operator

__all__ = ["check_batch_size", "check_flat", "check_output", "float_input", "tangent_checker"]

_FLOAT_DTYPES = ("float32", "float64")


def check_batch_size(operator: Operator, batch_size: Any) -> None:
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(
            f"{operator.name}: `batch_size` must be a positive integer (the most basis tangents "
            f"pushed through `f` at once) or None for the default; got {batch_size!r}."
        )


def check_flat(operator: Operator, flat: Any) -> None:
    if type(flat) is not bool:
        raise TypeError(f"{operator.name}: `flat` must be True or False; got {flat!r}.")
    if flat and not {"J", "H"} & set(operator.results):
        raise TypeError(
            f"{operator.name}: `flat=True` is for `jacobian` and `hessian` (their matrix as one 2-D "
            "array); use `ad.ravel` to flatten other results."
        )


def _describe_kind(x: Any) -> str:
    kind = array_kind(x)
    return kind.name if kind is not None else type(x).__name__


def float_input(operator: Operator, x: Any) -> tuple[Any, ArrayKind]:
    """Check `x` and return it as an array with its kind (a Python float becomes NumPy)."""
    if isinstance(x, float):
        return np.asarray(x, dtype=np.float64), array_kind(np.float64(0.0))  # type: ignore[return-value]
    kind = array_kind(x)
    if kind is None:
        raise TypeError(
            f"{operator.name}: `x` must be an array (NumPy, JAX, torch, ...) or a Python float; "
            f"got {type(x).__name__}. Convert it first, e.g. `numpy.asarray(x, dtype=float)`."
        )
    dtype = dtype_name(x.dtype)
    if dtype not in _FLOAT_DTYPES:
        hint = "complex inputs are not supported; " if "complex" in dtype else ""
        raise TypeError(
            f"{operator.name}: `x` must have a real floating-point dtype (float32 or float64); "
            f"got {dtype}. {hint}Convert it first, e.g. `x.astype(float)` or `x.double()`."
        )
    if operator.input == "scalar" and tuple(x.shape) != ():
        raise ValueError(
            f"{operator.name}: `x` must be a scalar (a float or a 0-d array); got shape "
            f"{tuple(x.shape)}. Use `ad.{'jacobian' if operator.name == 'derivative' else 'hessian'}` "
            "for array inputs."
        )
    return x, kind


def check_output(operator: Operator, spec: OutputSpec) -> None:
    if operator.output == "scalar" and spec.shape != ():
        raise ValueError(
            f"{operator.name}: `f` must return a scalar (shape ()); it returned shape {spec.shape}. "
            "Use `ad.jacobian` (or `ad.pullback`) for array outputs, or reduce the output, "
            "e.g. `xp.sum(...)`."
        )
    if dtype_name(spec.dtype) not in _FLOAT_DTYPES:
        raise TypeError(
            f"{operator.name}: `f` must return a real floating-point array (float32 or float64); "
            f"it returned dtype {dtype_name(spec.dtype)}."
        )


def _is_number(t: Any) -> bool:
    """A Python `int` or `float` (not a `bool`, not a NumPy scalar, which is a 0-d array)."""
    return type(t) in (int, float)


def _number_tangent(t: int | float, x: Any, dtype: str) -> Any:
    """A Python number given as a 0-d tangent: a 0-d array of `x`'s kind and device, in `dtype`."""
    value = np.asarray(t, dtype=dtype)
    kind = None if isinstance(x, float) else array_kind(x)
    if kind is None or kind.name == "numpy":
        return value
    array = kind.from_numpy(value)
    where = device(x)
    if where is not None and device(array) != where:  # a GPU `x`: NumPy arrays arrive on the CPU
        array = namespace(x).asarray(array, device=where)
    return array


def _tangent_tuple(name: str, tangents: Any, expected: tuple[int, ...], dtype: str, x: Any) -> tuple[tuple, bool]:
    """`(tangents as a tuple, whether one bare array was given)`, after checking each one.

    A Python number stands for a 0-d tangent (`ad.pullback(f, b, x, 1.0)` for a scalar `f`): it
    becomes an array of `x`'s kind in the expected dtype.
    """
    if isinstance(tangents, list):
        raise TypeError(
            f"{name}: several tangents must be passed as a tuple of arrays; got a list. Write `tuple(tangents)`."
        )
    single = not isinstance(tangents, tuple)
    batch = (tangents,) if single else tangents
    if not batch:
        raise ValueError(f"{name}: the tuple of tangents is empty; pass at least one array.")
    if expected == () and any(_is_number(t) for t in batch):
        batch = tuple(_number_tangent(t, x, dtype) if _is_number(t) else t for t in batch)
    x_kind = "float" if isinstance(x, float) else _describe_kind(x)
    of = "`x`" if name in ("pushforward", "hvp") else "`f(x)`"
    for i, t in enumerate(batch):
        label = "the tangent" if single else f"tangent {i}"
        t_kind = "float" if isinstance(t, float) else _describe_kind(t)
        if t_kind != x_kind and not (x_kind in ("float", "numpy") and t_kind in ("float", "numpy")):
            raise TypeError(f"{name}: {label} must be the same kind of array as `x` ({x_kind}); got {t_kind}.")
        shape = () if isinstance(t, float) else tuple(t.shape)
        if shape != expected:
            raise ValueError(f"{name}: {label} must have the shape of {of}, {expected}; got {shape}.")
        t_dtype = "float64" if isinstance(t, float) else dtype_name(t.dtype)
        if t_dtype != dtype:
            raise TypeError(f"{name}: {label} must have the dtype of {of}, {dtype}; got {t_dtype}. Cast it first.")
    return batch, single


class TangentCheck(NamedTuple):
    """The per-call tangent check of a prep, in two parts: the test of the usual case, one array
    like the preparation's (its type and dtype, and `shape == like`: the shape of a tangent given
    at preparation as the library gives it, a torch.Size or a TensorShape, which compares faster
    than a tuple: TensorFlow 0.16 against 0.44 µs, torch 0.11 against 0.17 µs), which the prepared
    call writes out; and `check(tangents) -> (tuple of tangents, single)` for any other."""

    xtype: Any  # a type, or None (a Python-float `x`: always the full check)
    dtype: Any
    like: Any
    check: Callable[[Any], tuple[tuple, bool]]


def tangent_checker(name: str, expected: tuple[int, ...], dtype: Any, x: Any, given: Any) -> TangentCheck:
    """The per-call tangent check (`TangentCheck`); `given` are the tangents of the preparation."""
    # A Python-float `x` always takes the full check (its tangents may be floats or 0-d arrays).
    xtype, expected_dtype = (None if isinstance(x, float) else type(x)), dtype_name(dtype)
    native_dtype = getattr(x, "dtype", None) if expected_dtype == dtype_name(getattr(x, "dtype", "float64")) else None
    first = _tangent_tuple(name, given, expected, expected_dtype, x)[0][0]
    like = first.shape if type(first) is xtype else expected

    def usual(t: Any) -> bool:
        return (
            type(t) is xtype
            and (t.dtype is native_dtype or t.dtype == native_dtype)  # some libraries: equal, not identical
            and t.shape == like
        )

    def check(tangents: Any) -> tuple[tuple, bool]:
        if type(tangents) is not tuple:
            if usual(tangents):
                return (tangents,), True
        elif tangents and all([usual(t) for t in tangents]):  # a list: faster than a generator
            return tangents, False
        return _tangent_tuple(name, tangents, expected, expected_dtype, x)

    return TangentCheck(xtype, native_dtype, like, check)
