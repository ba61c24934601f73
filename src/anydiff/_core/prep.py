"""`Prep`: the immutable record of an operator's one-time work, and its per-call signature check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .arrays import ArrayKind, array_kind, dtype_name
from .calls import Kernel, prepared_call
from .errors import PreparationMismatchError
from .operator import Operator

__all__ = ["Prep"]


class Prep:
    """The one-time work of an operator, and the arguments it was built for.

    Made by `ad.prepare_<operator>(...)` and passed back with `prep=`. A prep may be reused for
    any `x`, tangents and contexts of the same array kind, shape and dtype; a call with another
    function, backend, operator, kind, shape or dtype raises `ad.PreparationMismatchError`.

    `prep.info` says what the backend chose (mode, strategy, batch size, ...). A prep holds no
    lock: share one between threads only for backends documented as thread-safe.
    """

    __slots__ = (
        "operator",
        "f",
        "backend",
        "kind",
        "xtype",
        "shape",
        "native_shape",
        "dtype",
        "ncontexts",
        "buffer",
        "output",
        "info",
        "plain",
        "with_value",
        "batch_size",
        "tree",
        "flat",
        "sparse",
    )

    def __init__(
        self, *, plain: Kernel | Callable[..., Any], with_value: Kernel | Callable[..., Any], **fields: Any
    ) -> None:
        """`plain` and `with_value` are the backend's kernels (`Kernel`) or calls `(x, contexts)` /
        `(x, tangents, contexts)`; the prep keeps them behind its signature check, in one
        function each (`prepared_call`)."""
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "plain", prepared_call(self, plain))
        object.__setattr__(self, "with_value", prepared_call(self, with_value))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Prep is immutable")

    def __getattr__(self, name: str) -> Any:
        # What a backend reports on its prep (`prep.sparsity`, `prep.colors`, ...).
        try:
            return object.__getattribute__(self, "info")[name]
        except KeyError:
            raise AttributeError(f"this {self.operator.name} prep has no attribute {name!r}") from None

    def __repr__(self) -> str:
        chosen = "".join(f", {k}={v!r}" for k, v in self.info.items() if isinstance(v, (str, int)))
        if self.tree is not None:
            static = self.tree.static_paths()
            chosen += f", static={static}" if static else ""
            what = f"a tree of {len(self.tree.vary)} {dtype_name(self.dtype)} leaves ({self.shape[0]} values)"
            return f"<Prep {self.operator.name} with {self.backend!r} for {what}{chosen}>"
        return (
            f"<Prep {self.operator.name} with {self.backend!r} for {self.kind.name} "
            f"{dtype_name(self.dtype)} {self.shape}{chosen}>"
        )

    def check(self, operator: Operator, f: Any, backend: Any, x: Any, contexts: tuple, y: Any = None) -> None:
        """Raise `PreparationMismatchError` unless the call matches the prep, compared by equality
        (an equal backend or bound method is fine; a tree's leaves are compared by
        `TreeLayout.accept`)."""
        is_float = type(x) is float
        rows = [
            ("operator", self.operator.name, operator.name, operator is self.operator),
            ("function", _name(self.f), _name(f), f is self.f or f == self.f),
            ("backend", repr(self.backend), repr(backend), backend == self.backend),
            (
                "array kind",
                _kind_label(self.xtype, self.kind),
                _kind_label(type(x), array_kind(x)),
                type(x) is self.xtype,
            ),
            ("shape", str(self.shape), "()" if is_float else str(tuple(getattr(x, "shape", ()))), None),
            ("dtype", dtype_name(self.dtype), "float64" if is_float else dtype_name(getattr(x, "dtype", "-")), None),
            ("contexts", str(self.ncontexts), str(len(contexts)), None),
            ("y buffer", str(self.buffer), str(None if y is None else tuple(y.shape)), None),
        ]
        if self.tree is not None:  # its leaves are compared by `TreeLayout.accept`
            del rows[4:6]
        rows = [(name, a, b, a == b if same is None else same) for name, a, b, same in rows]
        if all(same for *_, same in rows):
            return
        if rows[1][1] == rows[1][2] and not rows[1][3]:
            rows[1] = (rows[1][0], rows[1][1], rows[1][2] + " (another object)", False)
        width = max(len(r[1]) for r in rows) + 2
        table = "\n".join(f"  {' ' if same else '✗'} {name:<11} {a:<{width}} {b}" for name, a, b, same in rows)
        raise PreparationMismatchError(
            f"{operator.name}: the `prep` passed was built for other arguments:\n"
            f"    {'':<11} {'prepared for':<{width}} received\n{table}\n"
            f"Prepare again with `ad.prepare_{operator.name}` for these arguments, or call without "
            "`prep=`."
        )


def _kind_label(tp: type, kind: ArrayKind | None) -> str:
    if tp is float:
        return "float"
    return kind.name if kind is not None else tp.__name__


def _name(f: Any) -> str:
    return getattr(f, "__qualname__", None) or repr(f)
