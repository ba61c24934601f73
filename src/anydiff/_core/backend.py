"""Backend objects: immutable, hashable, keyword-only configuration (API.md section 1).

A backend object says *which* library differentiates and how; it holds no state and imports
nothing. The code that does the work lives in `anydiff._libraries.<library>` and is found through
the registry in `anydiff._core.registry`.

Backend classes are made by `backend_dataclass`, a `dataclasses.dataclass(frozen=True, slots=True,
kw_only=True, repr=False)` that costs 30 µs at import instead of 600: what a class needs at once
(its slots, equality, hashing, immutability, pickling) is shared code, and the dataclass machinery
runs for the rest (`__init__`, `dataclasses.fields`) when the class is first used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, Literal, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # the decorator only informs type checkers

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated


__all__ = [
    "AbstractBackend",
    "Mode",
    "backend_dataclass",
    "check_mode",
]

Mode = Literal["forward", "reverse"]
_MODES = (None, "forward", "reverse")

_T = TypeVar("_T", bound=type)


class _Generated:
    """A dataclass attribute of a `backend_dataclass` class, generated when it is first read.

    Reading `__dataclass_fields__` (`dataclasses.fields`, `replace`, `is_dataclass`),
    `__dataclass_params__` or `__signature__` (`inspect.signature`) of such a class runs the
    dataclass machinery for it once; the generated attributes then replace this one.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type) -> Any:
        made = _made_by_backend_dataclass(owner)
        if made is None:  # a `dataclasses.dataclass` subclass: its own fields, Python's signature
            if self.name == "__signature__":
                return None
            raise AttributeError(self.name)
        _generate(made)
        return made.__dict__[self.name]


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
    if cls is None:
        return lambda cls: _make(cls, kw_only)
    return _make(cls, kw_only)


# What `backend_dataclass` records on a class: the annotation and default (or `field(...)`) of each
# field, inherited ones first; fields without a default are absent from `defaults`.
_Spec = tuple[dict[str, Any], dict[str, Any], bool]


def _make(cls: type, kw_only: bool) -> type:
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    inherited_slots: set[str] = set()
    for base in reversed(cls.__mro__[1:]):
        spec: _Spec | None = base.__dict__.get("_backend_spec")
        if spec is not None:
            annotations.update(spec[0])
            defaults.update(spec[1])
        slots = base.__dict__.get("__slots__", ())
        inherited_slots.update((slots,) if isinstance(slots, str) else slots)
    namespace = dict(cls.__dict__)
    own = [name for name, a in namespace.get("__annotations__", {}).items() if not _is_class_var(a)]
    for name in own:
        annotations[name] = namespace["__annotations__"][name]
        if name in namespace:
            defaults[name] = namespace.pop(name)
        else:
            defaults.pop(name, None)
    names = tuple(annotations)
    if not kw_only:  # caught at definition, as `dataclasses.dataclass` does
        for before, name in zip(names, names[1:], strict=False):
            if before in defaults and name not in defaults:
                raise TypeError(f"non-default argument {name!r} follows default argument")
    for name in ("__dict__", "__weakref__"):
        namespace.pop(name, None)
    namespace.update(
        __slots__=tuple(name for name in own if name not in inherited_slots),
        __match_args__=() if kw_only else names,
        _backend_spec=(annotations, defaults, kw_only),
        _backend_fields=names,
        _backend_values=staticmethod(attrgetter(*names) if names else _no_values),
        __eq__=_eq,
        __hash__=_hash,
        __setattr__=_setattr,
        __delattr__=_delattr,
        __getstate__=_getstate,
        __setstate__=_setstate,
        # generated on first use (the dataclass machinery is most of a dataclass's import cost)
        __init__=_first_init,
        __dataclass_fields__=_Generated("__dataclass_fields__"),
        __dataclass_params__=_Generated("__dataclass_params__"),
        __signature__=_Generated("__signature__"),
    )
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _made_by_backend_dataclass(cls: type) -> type | None:
    """The class in `cls`'s MRO made by `backend_dataclass` (`cls` or a plain subclass), if any."""
    for klass in cls.__mro__:
        if "_backend_spec" in klass.__dict__:
            return klass
        if "__dataclass_fields__" in klass.__dict__:  # a `dataclasses.dataclass`
            return None
    return None


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    made = _made_by_backend_dataclass(type(self))
    assert made is not None
    _generate(made)
    made.__dict__["__init__"](self, *args, **kwargs)


def _generate(cls: type) -> None:
    """Run `dataclasses.dataclass` on a model of `cls` and give `cls` its `__init__` and fields."""
    if not isinstance(cls.__dict__["__dataclass_fields__"], _Generated):
        return
    import dataclasses

    annotations, defaults, kw_only = cls.__dict__["_backend_spec"]
    namespace = {
        "__annotations__": annotations,
        **defaults,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
    }
    if hasattr(cls, "__post_init__"):
        namespace["__post_init__"] = cls.__post_init__  # the generated `__init__` calls self's
    model: Any = dataclasses.dataclass(frozen=True, kw_only=kw_only, repr=False)(type(cls.__name__, (), namespace))
    cls.__init__ = model.__init__  # type: ignore[misc]
    cls.__dataclass_params__ = model.__dataclass_params__  # type: ignore[attr-defined]
    cls.__signature__ = None  # type: ignore[attr-defined]  # `inspect.signature` reads `__init__`
    cls.__dataclass_fields__ = model.__dataclass_fields__  # type: ignore[attr-defined]


def _no_values(backend: object) -> tuple[()]:
    return ()


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return self._backend_values(self) == other._backend_values(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(self._backend_values(self))


def _frozen(self: Any, name: str) -> bool:
    return "_backend_spec" in type(self).__dict__ or name in self._backend_fields


def _setattr(self: Any, name: str, value: Any) -> None:
    if _frozen(self, name):
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _delattr(self: Any, name: str) -> None:
    if _frozen(self, name):
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self._backend_fields]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self._backend_fields, state, strict=True):
        object.__setattr__(self, name, value)


def check_mode(backend: AbstractBackend, mode: object) -> None:
    """Raise `ValueError` unless `mode` is `None`, `"forward"` or `"reverse"` (for `__post_init__`)."""
    if mode not in _MODES:
        raise ValueError(
            f"{type(backend).__name__}: `mode` must be None (choose per operator), 'forward' or "
            f"'reverse'; got {mode!r}."
        )
