"""CasADi programs calling a `DifferentiateWith` function: one `casadi.Callback` per node and shape.

A callback evaluates its node (the substitute computes, on NumPy arrays); its forward and
reverse sensitivities and its Jacobian are `casadi.Function`s of MX expressions that call the
callbacks of derived nodes (`nodes.py`), which have sensitivities in turn. So CasADi
differentiates through `f` to any order with its own machinery: `ca.jacobian`, `ca.hessian`,
and `nlpsol` with exact Hessians of the Lagrangian (IPOPT's default).

CasADi's matrices are 2-D and float64: `f` receives a 0-d array for a 1x1 matrix (CasADi's
scalar), a 1-D array for a column (n x 1) and a 2-D array otherwise; its result comes back the
same way (0-d and 1-D results as columns). Call it with MX symbols (or DM values); CasADi's
callbacks take no SX, whose functions are evaluated symbolically, element by element.
Contexts are not differentiated: their sensitivities are zero and seeds on them are ignored.
Callbacks live as long as the process (`_CALLBACKS`): CasADi cannot keep them alive.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import casadi as ca
import numpy as np

from anydiff.bridge.nodes import Aval, Node, cotangents, evaluate, tangent
from anydiff.extend import UnsupportedError, array_kind, array_kinds

__all__ = ["asarray", "call", "owns", "transparent", "trees"]

_NUMPY = array_kinds()["numpy"]
_FLOAT64 = np.dtype(np.float64)

#: every substitute needs the bridge: `AutoCasADi` traces `f` onto SX, which CasADi's MX programs cannot inline
transparent = ()

_names = itertools.count()


#: CasADi's matrices are 2-D and reshape in column order: a tree `x` is refused (`ad.ravel` it)
trees = False


def owns(x: Any) -> bool:
    return isinstance(x, (ca.MX, ca.SX, ca.DM))


def asarray(a: Any) -> Any:
    """A context array as NumPy; CasADi's own matrices as they are."""
    kind = array_kind(a)
    return a if kind is None or kind is _NUMPY else kind.to_numpy(a)


def _matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    """The CasADi shape of an array of NumPy shape `shape`."""
    if len(shape) > 2:
        raise UnsupportedError(
            f"DifferentiateWith in CasADi: CasADi's matrices are 2-D; an array of shape {shape} "
            "has no CasADi counterpart. Reshape it to 2-D (outside and inside `f`)."
        )
    return (shape[0] if shape else 1, shape[1] if len(shape) == 2 else 1)


def _numpy_shape(rows: int, columns: int) -> tuple[int, ...]:
    """The NumPy shape `f` sees for a CasADi matrix: 0-d for 1x1, 1-D for a column, else 2-D."""
    if columns == 1:
        return () if rows == 1 else (rows,)
    return rows, columns


class _Symbol:
    """A CasADi expression (MX or DM) and the NumPy shape and dtype it stands for."""

    __slots__ = ("dtype", "shape", "value")

    def __init__(self, value: Any, aval: Aval) -> None:
        self.value, (self.shape, self.dtype) = value, aval

    def __add__(self, other: _Symbol) -> _Symbol:
        return _Symbol(self.value + other.value, (self.shape, self.dtype))


def _seeds(value: Any, shape: tuple[int, ...], n: int) -> list[_Symbol]:
    """The `n` directions stacked side by side in `value` (CasADi's layout of seeds)."""
    columns = _matrix(shape)[1]
    return [_Symbol(part, (shape, _FLOAT64)) for part in ca.horzsplit(value, columns)[:n]]


class _Callback(ca.Callback):
    """`node` on arguments of NumPy shapes `avals`, as a CasADi function."""

    def __init__(self, node: Node, avals: tuple[Aval, ...]) -> None:
        ca.Callback.__init__(self)
        self.node, self.avals = node, avals
        node.prepare(avals)  # an `f` the substitute cannot run fails here, while the program is built
        self.out: Aval = (node.spec(avals)[0], _FLOAT64)
        self.live = 1 + node.k  # `x` and the linear arguments; the rest are contexts
        self.construct(f"DifferentiateWith_{next(_names)}", {})

    def get_n_in(self) -> int:
        return len(self.avals)

    def get_n_out(self) -> int:
        return 1

    def get_sparsity_in(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(*_matrix(self.avals[i][0]))

    def get_sparsity_out(self, i: int) -> ca.Sparsity:
        return ca.Sparsity.dense(*_matrix(self.out[0]))

    def has_eval_buffer(self) -> bool:
        return True

    def eval_buffer(self, arg: Sequence[memoryview], res: Sequence[memoryview]) -> int:
        # CasADi's own buffers, column-major, without the copies into and out of DMs (which
        # cost 25 ms at n = 100 000, where torch's `f` takes 0.5 ms)
        args = tuple(
            np.frombuffer(a, dtype=np.float64).reshape(shape, order="F").astype(dtype)
            for a, (shape, dtype) in zip(arg, self.avals, strict=True)
        )
        y = np.asarray(evaluate(self.node, args, _NUMPY))
        np.frombuffer(res[0], dtype=np.float64)[:] = y.ravel(order="F")
        return 0

    def _symbols(self) -> tuple[list, list[_Symbol], Any]:
        """MX symbols for the nominal inputs (also as `_Symbol`s) and the nominal output."""
        inputs = [ca.MX.sym(f"i{i}", *_matrix(shape)) for i, (shape, _) in enumerate(self.avals)]
        output = ca.MX.sym("out", *_matrix(self.out[0]))
        return inputs, [_Symbol(v, a) for v, a in zip(inputs, self.avals, strict=True)], output

    def has_forward(self, nfwd: int) -> bool:
        return True

    def get_forward(
        self, nfwd: int, name: str, inames: Sequence[str], onames: Sequence[str], opts: Mapping[str, Any]
    ) -> ca.Function:
        inputs, args, output = self._symbols()
        seeds = [ca.MX.sym(f"s{i}", v.size1(), v.size2() * nfwd) for i, v in enumerate(inputs)]
        directions = [_seeds(s, shape, nfwd) for s, (shape, _) in zip(seeds[: self.live], self.avals, strict=False)]
        sensitivities = []
        for d in range(nfwd):
            tangents = (*(seeds_i[d] for seeds_i in directions), *(None,) * (len(args) - self.live))
            ty = tangent(_Ops, self.node, tuple(args), tangents)
            sensitivities.append(ca.MX.zeros(output.sparsity()) if ty is None else ty.value)
        return ca.Function(name, [*inputs, output, *seeds], [ca.horzcat(*sensitivities)], inames, onames, opts)

    def has_reverse(self, nadj: int) -> bool:
        return True

    def get_reverse(
        self, nadj: int, name: str, inames: Sequence[str], onames: Sequence[str], opts: Mapping[str, Any]
    ) -> ca.Function:
        inputs, args, output = self._symbols()
        seed = ca.MX.sym("s", output.size1(), output.size2() * nadj)
        wanted = tuple(i < self.live for i in range(len(args)))
        sensitivities: list[list] = [[] for _ in args]
        for ct in _seeds(seed, self.out[0], nadj):
            found = cotangents(_Ops, self.node, tuple(args), ct, wanted, self.avals)
            for i, (c, v) in enumerate(zip(found, inputs, strict=True)):
                sensitivities[i].append(ca.MX(*v.shape) if c is None else c.value)
        outputs = [ca.horzcat(*s) for s in sensitivities]
        return ca.Function(name, [*inputs, output, seed], outputs, inames, onames, opts)

    def has_jacobian(self) -> bool:
        return True

    def get_jacobian(
        self, name: str, inames: Sequence[str], onames: Sequence[str], opts: Mapping[str, Any]
    ) -> ca.Function:
        # Rows by pullbacks of the output's unit vectors, or columns by pushforwards of the
        # inputs' ones, whichever are fewer; contexts' blocks are structurally zero. CasADi
        # numbers elements column-major (`ca.vec`, `ca.reshape`), on both sides alike.
        inputs, args, output = self._symbols()
        m = output.numel()
        blocks: list = [ca.MX(m, v.numel()) for v in inputs]
        if m <= sum(v.numel() for v in inputs[: self.live]):
            rows: list[list] = [[] for _ in range(self.live)]
            wanted = tuple(i < self.live for i in range(len(args)))
            for r in range(m):
                unit = ca.reshape(ca.MX(ca.DM.eye(m)[:, r]), *output.shape)
                found = cotangents(_Ops, self.node, tuple(args), _Symbol(unit, self.out), wanted, self.avals)
                for i in range(self.live):
                    rows[i].append(ca.vec(found[i].value).T)
            blocks[: self.live] = [ca.vertcat(*r) for r in rows]
        else:
            for i in range(self.live):
                n = inputs[i].numel()
                columns = []
                for c in range(n):
                    unit = ca.reshape(ca.MX(ca.DM.eye(n)[:, c]), *inputs[i].shape)
                    tangents = tuple(_Symbol(unit, self.avals[j]) if j == i else None for j in range(len(args)))
                    ty = tangent(_Ops, self.node, tuple(args), tangents)
                    columns.append(ca.MX(m, 1) if ty is None else ca.vec(ty.value))
                blocks[i] = ca.horzcat(*columns)
        return ca.Function(name, [*inputs, output], blocks, inames, onames, opts)


#: every callback made, for as long as the process lives: CasADi's expressions and functions
#: hold no Python reference to a callback, and calling a deleted one fails ("Callback object has
#: been deleted"), however long after the `DifferentiateWith` was dropped
_CALLBACKS: dict[tuple[Node, tuple[Aval, ...]], _Callback] = {}
_LOCK = threading.RLock()


def _callback(node: Node, avals: tuple[Aval, ...]) -> _Callback:
    """The callback of `node` for these shapes, made once."""
    key = (node, avals)
    found = _CALLBACKS.get(key)
    if found is None:
        with _LOCK:
            found = _CALLBACKS.get(key)
            if found is None:
                found = _CALLBACKS[key] = _Callback(node, avals)
    return found


class _Ops:
    @staticmethod
    def call(node: Node, args: tuple) -> _Symbol:
        avals = tuple((a.shape, a.dtype) for a in args)
        callback = _callback(node, avals)
        return _Symbol(callback(*(a.value for a in args)), callback.out)


def call(node: Node, args: tuple) -> Any:
    if any(isinstance(a, ca.SX) for a in args):
        raise UnsupportedError(
            f"{node.base!r} called on CasADi SX: CasADi calls Python functions (callbacks) "
            "from MX programs only. Use MX symbols (`ca.MX.sym('x', 2)`) or DM values."
        )
    symbols = []
    for a in args:
        if isinstance(a, (ca.MX, ca.DM)):
            symbols.append(_Symbol(a, (_numpy_shape(*a.shape), _FLOAT64)))
        else:  # a NumPy context array
            a = np.asarray(a, dtype=np.float64)
            symbols.append(_Symbol(ca.DM(a.reshape(_matrix(a.shape))), (a.shape, _FLOAT64)))
    return _Ops.call(node, tuple(symbols)).value
