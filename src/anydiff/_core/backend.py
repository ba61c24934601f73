"""Backend objects: immutable, hashable, keyword-only configuration (API.md section 1).

A backend object says *which* library differentiates and how; it holds no state and imports
nothing. The code that does the work lives in `anydiff._libraries.<library>` and is found through
the registry in `anydiff._core.registry`.

Backend classes are made by `backend_dataclass`, a `dataclasses.dataclass(frozen=True, slots=True,
kw_only=True, repr=False)` that costs 30 µs at import instead of 600 (see `frozen.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar, overload

from .frozen import dataclass_transform, frozen_dataclass

__all__ = [
    "AbstractBackend",
    "Mode",
    "backend_dataclass",
    "check_mode",
]

Mode = Literal["forward", "reverse"]
_MODES = (None, "forward", "reverse")

_T = TypeVar("_T", bound=type)


class AbstractBackend:
    """Base class of every backend object.

    Subclasses are frozen, slotted, keyword-only dataclasses named `Auto<Library>`, made with
    `backend_dataclass` (or `dataclasses.dataclass`); `repr` shows only the fields that differ
    from their defaults.
    """

    __slots__ = ()
    #: the `pip install anydiff[<extra>]` that provides the backend's library
    extra: ClassVar[str | None] = None
    #: whether the backend combines other backends (`SecondOrder`, `AutoSparse`, `MixedMode`)
    #: rather than differentiating with a library of its own
    combinator: ClassVar[bool] = False

    def __repr__(self) -> str:
        import dataclasses

        shown = []
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if field.default is dataclasses.MISSING or value != field.default:
                shown.append(f"{field.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


@overload
def backend_dataclass(cls: _T, /) -> _T: ...
@overload
def backend_dataclass(*, kw_only: bool = True) -> Callable[[_T], _T]: ...


@dataclass_transform(kw_only_default=True, frozen_default=True)
def backend_dataclass(cls: Any = None, /, *, kw_only: bool = True) -> Any:
    """`@backend_dataclass`: make a backend class a frozen, slotted, keyword-only dataclass.

    The same class as `@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)`
    (`kw_only=False` for positional fields), at a twentieth of its import cost. Fields are the
    annotated names of the class body (`ClassVar`s excepted), with their defaults or
    `dataclasses.field(...)`; a `__post_init__` runs after `__init__`. `dataclasses.fields`,
    `dataclasses.replace` and pickling work on the instances; backends built on an
    `AbstractBackend` subclass made by `backend_dataclass` inherit its fields.

    Example:
        >>> import anydiff as ad
        >>> from anydiff.extend import AbstractBackend, backend_dataclass
        >>> @backend_dataclass
        ... class AutoMine(AbstractBackend):
        ...     mode: str | None = None
        ...     steps: int = 10
        >>> AutoMine(steps=20), AutoMine() == AutoMine(steps=10)
        (AutoMine(steps=20), True)
    """
    decorate = frozen_dataclass(kw_only=kw_only, repr=False)
    return decorate if cls is None else decorate(cls)


def check_mode(backend: AbstractBackend, mode: object) -> None:
    """Raise `ValueError` unless `mode` is `None`, `"forward"` or `"reverse"` (for `__post_init__`)."""
    if mode not in _MODES:
        raise ValueError(
            f"{type(backend).__name__}: `mode` must be None (choose per operator), 'forward' or "
            f"'reverse'; got {mode!r}."
        )
