"""`JaxprSparsityDetector`: sparsity patterns of functions written with JAX itself.

The jaxpr of `f` is interpreted primitive by primitive on anydiff's `SparsityTracer`s (the
representation and rules of `anydiff.sparse.tracer`); imported on first use, with JAX.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from anydiff.extend import (
    BackendNotInstalledError,
    FunctionNotDifferentiableError,
    UnsupportedError,
    array_kind,
    check_contexts,
)
from anydiff.sparse.tracer import (
    SparsityTracer,
    TracerSparsityDetector,
    linear_map,
    opaque,
    rearrange,
    trace_of,
    tracer_namespace,
)

__all__ = ["JaxprSparsityDetector"]


@dataclass(frozen=True, slots=True)
class JaxprSparsityDetector:
    """`JaxprSparsityDetector()`: global patterns of an `f` written with JAX (`jnp`, `lax`).

    `f` is traced once to a jaxpr (`jax.make_jaxpr`), and each primitive of the jaxpr is run on
    `SparsityTracer`s, so the patterns and their precision are those of `TracerSparsityDetector`
    (same representation, same Hessian rules). Operations on constants alone are evaluated by JAX
    (constant folding), so a constant built inside `f`, such as `jnp.ones(...)` or an index array,
    keeps its zeros. Covered: elementwise math, `integer_pow`, `select_n` (`jnp.where`),
    `convert_element_type`, `clamp`, reshapes and broadcasts, `slice`, `dynamic_slice` and
    `dynamic_update_slice` with constant starts, `pad`, `concatenate`, `rev`, `transpose`,
    `gather`, `scatter`, `scatter-add` with constant indices, reductions, `argmax`, `cumsum` and
    friends, `sort`, `dot_general`, and the calls `jit`, `custom_jvp_call`, `custom_vjp_call`,
    `checkpoint`, `cond` (union of the branches), `while` (fixed point of the body), `scan`
    (unrolled). A custom JVP rule is assumed to have the pattern of its primal function.

    For a primitive it does not know, or an index that depends on `x`, it hands the whole
    function to asdex (`pip install asdex`, a slower but broader jaxpr interpreter) when that is
    installed, and raises `UnsupportedError` naming the primitive otherwise.

    Example:
        >>> import numpy as np, jax.numpy as jnp, anydiff as ad
        >>> detector = ad.JaxprSparsityDetector()
        >>> ad.jacobian_sparsity(lambda x: jnp.diff(x) ** 2, np.ones(3), detector=detector).toarray()
        array([[ True,  True, False],
               [False,  True,  True]])
    """

    def jacobian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`jacobian_sparsity(f, x, *contexts)`: the `(y.size, x.size)` boolean CSR pattern."""
        return self._detect("jacobian_sparsity", f, x, contexts)

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, *contexts: Any) -> sp.csr_array:
        """`hessian_sparsity(f, x, *contexts)`: the `(x.size, x.size)` symmetric boolean pattern."""
        return self._detect("hessian_sparsity", f, x, contexts)

    def _detect(self, operator: str, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...]) -> sp.csr_array:
        jax = _import_jax(operator)
        check_contexts(operator, contexts)
        values = [context.value for context in contexts]
        kind = array_kind(x)
        x = np.asarray(x if kind is None else kind.to_numpy(x))

        def closed(x: Any) -> Any:  # contexts are constants of the jaxpr: their zeros are known
            return f(x, *values)

        with jax.enable_x64(True):  # keep float64 inputs and int64 indices as they are
            jaxpr = jax.make_jaxpr(closed)(x)
            if len(jaxpr.out_avals) != 1:
                raise TypeError(f"{operator}: `f` must return one array; it returned {len(jaxpr.out_avals)}.")
            try:
                return getattr(TracerSparsityDetector(), operator)(lambda tracer: _interpret(jaxpr, [tracer])[0], x)
            except _NotInterpretable as error:
                return _asdex_pattern(operator, closed, x, error)


class _NotInterpretable(Exception):
    """The jaxpr holds a primitive (or a data-dependent index) the interpreter does not cover."""


def _import_jax(operator: str) -> Any:
    try:
        import jax
    except ImportError as error:
        raise BackendNotInstalledError(
            f"{operator}: `JaxprSparsityDetector()` reads JAX programs and needs jax, which is not "
            "installed. Run `pip install anydiff[jax]`, or use `TracerSparsityDetector()`."
        ) from error
    return jax


def _asdex_pattern(operator: str, f: Callable[..., Any], x: np.ndarray, reason: _NotInterpretable) -> sp.csr_array:
    try:
        import asdex
    except ImportError:
        raise UnsupportedError(
            f"{operator}: `JaxprSparsityDetector()` cannot interpret {reason}. Install asdex "
            "(`pip install asdex`), which it then uses for such functions, or use "
            "`ad.DenseSparsityDetector(backend)` for a local pattern."
        ) from None
    try:
        pattern = getattr(asdex, operator)(f, x)
    except NotImplementedError as error:
        raise UnsupportedError(
            f"{operator}: neither `JaxprSparsityDetector()` nor asdex can interpret this "
            f"function ({reason}; asdex: {error}). Use `ad.DenseSparsityDetector(backend)` for a "
            "local pattern, or `ad.KnownSparsity(pattern)`."
        ) from error
    rows, columns = np.asarray(pattern.rows), np.asarray(pattern.cols)
    return sp.csr_array((np.ones(rows.size, bool), (rows, columns)), shape=tuple(pattern.shape))


def _interpret(jaxpr: Any, args: list[Any]) -> list[Any]:
    """Run a (closed) jaxpr on tracers and constants; returns its outputs."""
    from jax.extend.core import ClosedJaxpr, Literal

    consts: list[Any] = []
    if isinstance(jaxpr, ClosedJaxpr):
        jaxpr, consts = jaxpr.jaxpr, list(jaxpr.consts)
    env: dict[Any, Any] = dict(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))

    def read(var: Any) -> Any:
        return var.val if isinstance(var, Literal) else env[var]

    for equation in jaxpr.eqns:
        inputs = [read(var) for var in equation.invars]
        outputs = _evaluate(equation, inputs)
        for var, value in zip(equation.outvars, outputs, strict=True):
            env[var] = _with_dtype(value, var.aval.dtype)
    return [read(var) for var in jaxpr.outvars]


def _evaluate(equation: Any, inputs: list[Any]) -> list[Any]:
    primitive, params = equation.primitive, equation.params
    if not any(isinstance(value, SparsityTracer) for value in inputs):
        result = primitive.bind(*inputs, **params)  # constant folding, by JAX itself
        return list(result) if primitive.multiple_results else [result]
    rule = _RULES.get(primitive.name)
    if rule is None:
        subjaxpr = next((params[k] for k in _CALL_PARAMS if k in params), None)
        if subjaxpr is None:
            raise _NotInterpretable(f"the JAX primitive `{primitive.name}`")
        return _interpret(subjaxpr, inputs)  # jit, custom_jvp_call, checkpoint, ...
    try:
        return rule(inputs, params)
    except FunctionNotDifferentiableError as error:  # an index that depends on `x`
        raise _NotInterpretable(f"`{primitive.name}` with an index computed from `x`") from error


_CALL_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _with_dtype(value: Any, dtype: Any) -> Any:
    """A tracer with the dtype JAX gives the result (integer results depend on nothing)."""
    if isinstance(value, SparsityTracer) and value.dtype != np.dtype(dtype):
        return tracer_namespace.astype(value, np.dtype(dtype))
    return value


def _single(function: Callable[..., Any]) -> Callable[[list[Any], dict[str, Any]], list[Any]]:
    return lambda inputs, params: [function(*inputs, **params)]


def _namespace_rule(name: str) -> Callable[[list[Any], dict[str, Any]], list[Any]]:
    """A primitive that is the namespace function `name` of its inputs (parameters unused)."""
    return lambda inputs, params: [getattr(tracer_namespace, name)(*inputs)]


def _data_independent(value: Any) -> np.ndarray:
    if isinstance(value, SparsityTracer):
        raise FunctionNotDifferentiableError("a traced index")
    return np.asarray(value)


def _broadcast_in_dim(x: Any, *, shape: tuple[int, ...], broadcast_dimensions: Any, **_: Any) -> Any:
    def broadcast(rows: np.ndarray) -> np.ndarray:
        expanded = [1] * len(shape)
        for axis, dimension in enumerate(broadcast_dimensions):
            expanded[dimension] = rows.shape[axis]
        return np.broadcast_to(rows.reshape(expanded), shape)

    return rearrange(broadcast, x)


def _slice(x: Any, *, start_indices: Any, limit_indices: Any, strides: Any) -> Any:
    strides = strides or (1,) * len(start_indices)
    return x[tuple(map(slice, start_indices, limit_indices, strides))]


def _pad(x: Any, padding_value: Any, *, padding_config: Any) -> Any:
    def pad(rows: np.ndarray, fill: np.ndarray) -> np.ndarray:
        # interior and positive edge padding first, then negative edges crop
        grown = tuple(
            max(low, 0) + n + max(n - 1, 0) * interior + max(high, 0)
            for n, (low, high, interior) in zip(rows.shape, padding_config, strict=True)
        )
        out = np.broadcast_to(fill, grown).copy()
        out[tuple(slice(max(low, 0), None, interior + 1) for low, _, interior in padding_config)
            ][tuple(slice(0, n) for n in rows.shape)] = rows  # fmt: skip
        crop = tuple(
            slice(max(-low, 0), size - max(-high, 0))
            for size, (low, high, _) in zip(grown, padding_config, strict=True)
        )
        return out[crop]

    return rearrange(pad, x, padding_value)


def _split(x: Any, *, sizes: Sequence[int], axis: int) -> list[Any]:
    bounds = np.cumsum([0, *sizes]).tolist()
    before = (slice(None),) * (axis % x.ndim)
    return [x[(*before, slice(a, b))] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _clamped_starts(shape: tuple[int, ...], sizes: Any, starts: list[Any]) -> list[int]:
    # JAX clamps start indices so the slice stays inside the array
    return [
        int(np.clip(_data_independent(start), 0, n - size)) for start, n, size in zip(starts, shape, sizes, strict=True)
    ]


def _dynamic_slice(x: Any, *starts: Any, slice_sizes: Any) -> Any:
    begin = _clamped_starts(x.shape, slice_sizes, list(starts))
    return x[tuple(slice(b, b + size) for b, size in zip(begin, slice_sizes, strict=True))]


def _dynamic_update_slice(x: Any, update: Any, *starts: Any) -> Any:
    begin = _clamped_starts(np.shape(x), np.shape(update), list(starts))
    window = tuple(slice(b, b + size) for b, size in zip(begin, np.shape(update), strict=True))

    def update_rows(rows: np.ndarray, new: np.ndarray) -> np.ndarray:
        out = rows.copy()
        out[window] = new
        return out

    return rearrange(update_rows, x, update)


def _by_jax(primitive_name: str, data: tuple[int, ...]) -> Callable[..., list[Any]]:
    """A structural primitive (gather, scatter) run by JAX itself on row numbers.

    The operands at positions `data` carry rows; the others (indices) must be constants.
    """

    def rule(inputs: list[Any], params: dict[str, Any]) -> list[Any]:
        import jax.numpy as jnp
        from jax.extend.core import primitives

        primitive = getattr(primitives, primitive_name.replace("-", "_") + "_p")
        static = [_data_independent(v) if i not in data else None for i, v in enumerate(inputs)]

        def apply(*rows: np.ndarray) -> np.ndarray:
            operands: list[Any] = list(static)
            for position, row in zip(data, rows, strict=True):
                operands[position] = jnp.asarray(row)
            out = np.asarray(primitive.bind(*operands, **params))
            return np.maximum(out, 0)  # out-of-bounds fill values are constants

        return [rearrange(apply, *(inputs[i] for i in data))]

    return rule


def _scatter_add(inputs: list[Any], params: dict[str, Any]) -> list[Any]:
    """`operand + scatter(updates)`: each update element lands on at most one output element.

    Transposing the (linear) scatter of the updates maps output row numbers back onto the
    updates: each update receives the 1-based row it lands on, or 0 when it is dropped.
    """
    import jax
    import jax.numpy as jnp
    from jax.extend.core import primitives

    operand, indices, updates = inputs
    indices = _data_independent(indices)
    shape, update_shape = np.shape(operand), np.shape(updates)

    def scatter(u: Any) -> Any:
        return primitives.scatter_add_p.bind(jnp.zeros(shape), indices, u, **params)

    rows = jnp.arange(1, math.prod(shape) + 1, dtype=jnp.float64).reshape(shape)
    (landing,) = jax.linear_transpose(scatter, jnp.zeros(update_shape))(rows)
    landing = np.asarray(landing).reshape(-1).astype(np.int64)
    kept = np.flatnonzero(landing)
    spread = sp.csr_array(
        (np.ones(kept.size, bool), (landing[kept] - 1, kept)),
        shape=(math.prod(shape), math.prod(update_shape)),
    )
    ns = tracer_namespace
    scattered = (
        updates if not isinstance(updates, SparsityTracer) else linear_map(ns.reshape(updates, (-1,)), spread, shape)
    )
    return [ns.add(operand, scattered) if isinstance(scattered, SparsityTracer) else operand]


def _dot_general(lhs: Any, rhs: Any, *, dimension_numbers: Any, **_: Any) -> Any:
    """Batch, free and contracted axes put in order, then one `matmul`."""
    ns = tracer_namespace
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
    lhs_shape, rhs_shape = np.shape(lhs), np.shape(rhs)
    lhs_free = [d for d in range(len(lhs_shape)) if d not in (*lhs_contract, *lhs_batch)]
    rhs_free = [d for d in range(len(rhs_shape)) if d not in (*rhs_contract, *rhs_batch)]
    batch = [lhs_shape[d] for d in lhs_batch]
    inner = math.prod(lhs_shape[d] for d in lhs_contract)
    left = ns.reshape(
        ns.permute_dims(lhs, (*lhs_batch, *lhs_free, *lhs_contract)),
        (*batch, math.prod(lhs_shape[d] for d in lhs_free), inner),
    )
    right = ns.reshape(
        ns.permute_dims(rhs, (*rhs_batch, *rhs_contract, *rhs_free)),
        (*batch, inner, math.prod(rhs_shape[d] for d in rhs_free)),
    )
    shape = (*batch, *(lhs_shape[d] for d in lhs_free), *(rhs_shape[d] for d in rhs_free))
    return ns.reshape(ns.matmul(left, right), shape)


def _cumulative(smooth: bool) -> Callable[..., Any]:
    """`cumsum`-like scans: element `i` depends on elements up to `i` (from `i` if reversed).

    `cumprod` and `cumlogsumexp` are nonlinear: a smooth function of the prefix over-approximates
    their Hessian terms soundly.
    """

    def rule(x: Any, *, axis: int, reverse: bool) -> Any:
        ns = tracer_namespace
        oriented = ns.flip(x, axis=axis) if reverse else x
        prefix = ns.cumulative_sum(oriented, axis=axis)
        prefix = ns.flip(prefix, axis=axis) if reverse else prefix
        return ns.exp(prefix) if smooth else prefix

    return rule


def _sort(inputs: list[Any], params: dict[str, Any]) -> list[Any]:
    """Every output along the sorted axis may come from any element of any key or value."""
    ns, axis = tracer_namespace, params["dimension"]
    sorted_deps = [ns.sort(v, axis=axis) for v in inputs if isinstance(v, SparsityTracer)]
    mixed = functools.reduce(ns.add, sorted_deps)
    return [ns.add(ns.zeros_like(v), mixed) for v in inputs]


def _reduction_rule(name: str) -> Callable[..., Any]:
    return lambda x, *, axes, **_: getattr(tracer_namespace, name)(x, axis=tuple(axes))


def _merge(values: list[Any], trace: Any) -> Any:
    """One value standing for any of `values`: the union of their dependencies."""
    if not any(isinstance(v, SparsityTracer) for v in values) and all(np.array_equal(values[0], v) for v in values[1:]):
        return values[0]
    unknown = opaque((), np.bool_, trace)  # a condition whose value is not known
    return functools.reduce(lambda a, b: tracer_namespace.where(unknown, a, b), values)


def _cond(inputs: list[Any], params: dict[str, Any]) -> list[Any]:
    index, operands = inputs[0], inputs[1:]
    branches = params["branches"]
    if not isinstance(index, SparsityTracer):
        chosen = int(np.clip(np.asarray(index), 0, len(branches) - 1))
        return _interpret(branches[chosen], operands)
    results = [_interpret(branch, operands) for branch in branches]
    return [_merge(list(values), index._trace) for values in zip(*results, strict=True)]


def _while(inputs: list[Any], params: dict[str, Any]) -> list[Any]:
    """Exact while the condition is a known constant (counted loops), then a fixed point.

    Once the condition depends on `x`, the result is the union over every trip count: iterate
    `carry | body(carry)` until it stops growing. Dependencies only grow, so this ends.
    """
    cond_count, start = params["cond_nconsts"], params["cond_nconsts"] + params["body_nconsts"]
    cond_consts, body_consts = inputs[:cond_count], inputs[cond_count:start]
    carry, trace = inputs[start:], trace_of(inputs)
    for _ in range(_EXACT_ITERATIONS):
        (proceed,) = _interpret(params["cond_jaxpr"], [*cond_consts, *carry])
        if isinstance(proceed, SparsityTracer):
            break
        if not proceed:
            return carry
        carry = _interpret(params["body_jaxpr"], [*body_consts, *carry])
    while True:
        stepped = _interpret(params["body_jaxpr"], [*body_consts, *carry])
        merged = [_merge([old, new], trace) for old, new in zip(carry, stepped, strict=True)]
        if all(_same_dependencies(old, new) for old, new in zip(carry, merged, strict=True)):
            return merged
        carry = merged


_EXACT_ITERATIONS = 1000  # beyond this many known iterations, the fixed point is cheaper


def _same_dependencies(old: Any, new: Any) -> bool:
    if isinstance(old, SparsityTracer) and isinstance(new, SparsityTracer):
        return old.deps.nnz == new.deps.nnz
    return old is new


def _scan(inputs: list[Any], params: dict[str, Any]) -> list[Any]:
    """Unrolled, so each step sees its own slice of `xs` and the pattern stays exact."""
    consts_count, carry_count = params["num_consts"], params["num_carry"]
    consts = inputs[:consts_count]
    carry = inputs[consts_count : consts_count + carry_count]
    xs = inputs[consts_count + carry_count :]
    steps = range(params["length"])
    outputs = []
    for t in reversed(steps) if params["reverse"] else steps:
        results = _interpret(params["jaxpr"], [*consts, *carry, *(x[t] for x in xs)])
        carry, ys = results[:carry_count], results[carry_count:]
        outputs.append(ys)
    if params["reverse"]:
        outputs.reverse()
    stacked = [tracer_namespace.stack(list(step)) for step in zip(*outputs, strict=True)]
    return [*carry, *stacked]


def _select_n(predicate: Any, *cases: Any) -> Any:
    """`cases[predicate]`: exact for a constant predicate, the union of the cases otherwise."""
    ns = tracer_namespace
    result = cases[-1]
    for k in range(len(cases) - 2, -1, -1):
        result = ns.where(ns.equal(predicate, k), cases[k], result)
    return result


def _build_rules() -> dict[str, Callable[[list[Any], dict[str, Any]], list[Any]]]:
    ns = tracer_namespace
    same_name = (
        "sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh exp exp2 log log1p expm1 "
        "sqrt cbrt abs sign floor ceil round square pow atan2 add real imag conj"
    )
    renamed = {
        "neg": "negative", "sub": "subtract", "mul": "multiply", "div": "divide",
        "max": "maximum", "min": "minimum", "rem": "remainder", "add_any": "add",
        "eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
        "ge": "greater_equal", "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
        "not": "bitwise_invert", "is_finite": "isfinite", "nextafter": "copysign",
        # smooth functions NumPy lacks share `exp`'s derivative structure
        "rsqrt": "exp", "logistic": "exp", "erf": "exp", "erfc": "exp", "erf_inv": "exp",
        "lgamma": "exp", "digamma": "exp",
    }  # fmt: skip
    rules: dict[str, Callable[[list[Any], dict[str, Any]], list[Any]]] = {
        name: _namespace_rule(name) for name in same_name.split()
    }
    rules.update({primitive: _namespace_rule(name) for primitive, name in renamed.items()})
    identity = _single(lambda x, **_: x)
    rules.update(
        {
            "integer_pow": _single(lambda x, *, y: ns.pow(x, y)),
            "convert_element_type": _single(lambda x, *, new_dtype, **_: ns.astype(x, new_dtype)),
            "clamp": _single(lambda low, x, high: ns.clip(x, low, high)),
            "select_n": _single(_select_n),
            "copy": identity, "copy_p": identity, "reduce_precision": identity,
            "stop_gradient": _single(lambda x: opaque(x.shape, x.dtype, x._trace)),
            "optimization_barrier": lambda inputs, params: list(inputs),
            "reshape": _single(lambda x, *, new_sizes, **_: ns.reshape(x, tuple(new_sizes))),
            "broadcast_in_dim": _single(_broadcast_in_dim),
            "squeeze": _single(lambda x, *, dimensions: ns.squeeze(x, axis=tuple(dimensions))),
            "transpose": _single(lambda x, *, permutation: ns.permute_dims(x, tuple(permutation))),
            "rev": _single(lambda x, *, dimensions: ns.flip(x, axis=tuple(dimensions))),
            "slice": _single(_slice),
            "concatenate": lambda inputs, params: [ns.concat(inputs, axis=params["dimension"])],
            "split": lambda inputs, params: list(_split(*inputs, **params)),
            "pad": _single(_pad),
            "dynamic_slice": _single(_dynamic_slice),
            "dynamic_update_slice": _single(_dynamic_update_slice),
            "gather": _by_jax("gather", data=(0,)),
            "scatter": _by_jax("scatter", data=(0, 2)),
            "scatter-add": _scatter_add,
            "reduce_sum": _single(_reduction_rule("sum")),
            "reduce_max": _single(_reduction_rule("max")),
            "reduce_min": _single(_reduction_rule("min")),
            "reduce_prod": _single(_reduction_rule("prod")),
            "reduce_and": _single(_reduction_rule("all")),
            "reduce_or": _single(_reduction_rule("any")),
            "argmax": _single(lambda x, *, axes, **_: ns.argmax(x, axis=axes[0])),
            "argmin": _single(lambda x, *, axes, **_: ns.argmin(x, axis=axes[0])),
            "cumsum": _single(_cumulative(smooth=False)),
            "cummax": _single(_cumulative(smooth=False)),
            "cummin": _single(_cumulative(smooth=False)),
            "cumprod": _single(_cumulative(smooth=True)),
            "cumlogsumexp": _single(_cumulative(smooth=True)),
            "sort": _sort,
            "dot_general": _single(_dot_general),
            "cond": _cond,
            "while": _while,
            "scan": _scan,
        }
    )  # fmt: skip
    return rules


_RULES = _build_rules()
