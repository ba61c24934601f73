"""`frozen_dataclass`: a frozen, slotted dataclass that costs ~30 µs at import instead of ~600.

`dataclasses.dataclass` writes and compiles half a dozen methods when a class is defined, about
0.6 ms per class: most of what `import anydiff` spent on its own code, for twenty backend classes
and four records. Here what a class needs at once (slots, immutability, equality, hashing,
pickling, repr) is shared code, and the dataclass machinery runs for the rest (`__init__`, and the
dataclass's own `__eq__` and `__hash__`) when the class is first used: its first instance,
`dataclasses.fields` / `replace` / `is_dataclass`, `inspect.signature`. Backend classes
(`backend_dataclass`), `Constant`, `Cache`, `ArrayKind` and `Operator` are made this way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # the decorator only informs type checkers

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated


__all__ = ["dataclass_transform", "frozen_dataclass"]

_T = TypeVar("_T", bound=type)


@overload
def frozen_dataclass(cls: _T, /) -> _T: ...
@overload
def frozen_dataclass(*, kw_only: bool = False, repr: bool = True) -> Callable[[_T], _T]: ...


@dataclass_transform(frozen_default=True)
def frozen_dataclass(cls: Any = None, /, *, kw_only: bool = False, repr: bool = True) -> Any:
    """`@frozen_dataclass`: `@dataclasses.dataclass(frozen=True, slots=True)`, cheaper to define.

    The same class (`kw_only` and `repr` as for `dataclasses.dataclass`): fields are the annotated
    names of the class body (`ClassVar`s excepted), with their defaults or `dataclasses.field(...)`
    (whose `default`, `default_factory` and `kw_only` are honoured; `compare`, `hash` and `repr`
    are not); a `__post_init__` runs after `__init__`, and an `__init__` of the class's own is kept
    (it sets the fields with `object.__setattr__`). Fields of a base class made this way are
    inherited.
    """
    if cls is None:
        return lambda cls: _make(cls, kw_only, repr)
    return _make(cls, kw_only, repr)


class _Generated:
    """A dataclass attribute of a `frozen_dataclass` class, generated when it is first read.

    Reading `__dataclass_fields__` (`dataclasses.fields`, `replace`, `is_dataclass`),
    `__dataclass_params__` or `__signature__` (`inspect.signature`) of such a class runs the
    dataclass machinery for it once; the generated attributes then replace this one.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type) -> Any:
        made = _made_here(owner)
        if made is None:  # a `dataclasses.dataclass` subclass: its own fields, Python's signature
            if self.name == "__signature__":
                return None
            raise AttributeError(self.name)
        _generate(made)
        return made.__dict__[self.name]


# What `frozen_dataclass` records on a class: the annotation and default (or `field(...)`) of each
# field, inherited ones first (fields without a default are absent from `defaults`), `kw_only`,
# and whether `__eq__` and `__hash__` are this module's rather than the class's own.
_Spec = tuple[dict[str, Any], dict[str, Any], bool, bool]


def _make(cls: type, kw_only: bool, repr: bool) -> type:
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    inherited_slots: set[str] = set()
    for base in reversed(cls.__mro__[1:]):
        spec: _Spec | None = base.__dict__.get("_frozen_spec")
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
        _frozen_spec=(annotations, defaults, kw_only, "__eq__" not in namespace),
        _frozen_fields=names,
        __setattr__=_setattr,
        __delattr__=_delattr,
        __getstate__=_getstate,
        __setstate__=_setstate,
        # generated on first use (the dataclass machinery is most of a dataclass's import cost)
        __init__=namespace.get("__init__", _first_init),  # a class's own is kept, as by `dataclass`
        __dataclass_fields__=_Generated("__dataclass_fields__"),
        __dataclass_params__=_Generated("__dataclass_params__"),
        __signature__=_Generated("__signature__"),
    )
    # A class's own `__eq__`, `__hash__` and `__repr__` are kept, as by `dataclass`.
    if "__eq__" not in namespace:
        eq, hash_ = _eq_and_hash(_values(names))
        namespace["__eq__"] = eq
        namespace.setdefault("__hash__", hash_)
    if repr:
        namespace.setdefault("__repr__", _repr)
    made = type(cls)(cls.__name__, cls.__bases__, namespace)
    made.__qualname__ = cls.__qualname__
    return made


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):  # `from __future__ import annotations`
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _made_here(cls: type) -> type | None:
    """The class in `cls`'s MRO made by `frozen_dataclass` (`cls` or a plain subclass), if any."""
    for klass in cls.__mro__:
        if "_frozen_spec" in klass.__dict__:
            return klass
        if "__dataclass_fields__" in klass.__dict__:  # a `dataclasses.dataclass`
            return None
    return None


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    made = _made_here(type(self))
    assert made is not None
    _generate(made)
    made.__dict__["__init__"](self, *args, **kwargs)


def _generate(cls: type) -> None:
    """Run `dataclasses.dataclass` on a model of `cls` and give `cls` its `__init__` and fields."""
    if not isinstance(cls.__dict__["__dataclass_fields__"], _Generated):
        return
    import dataclasses

    annotations, defaults, kw_only, eq_here = cls.__dict__["_frozen_spec"]
    if cls.__dict__["__init__"] is not _first_init:  # the class's own `__init__` takes any default
        defaults = {name: _as_field(dataclasses, value) for name, value in defaults.items()}
    namespace = {
        "__annotations__": annotations,
        **defaults,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
    }
    if hasattr(cls, "__post_init__"):
        namespace["__post_init__"] = cls.__post_init__  # the generated `__init__` calls self's
    model: Any = dataclasses.dataclass(frozen=True, kw_only=kw_only, repr=False)(type(cls.__name__, (), namespace))
    if cls.__dict__["__init__"] is _first_init:
        cls.__init__ = model.__init__  # type: ignore[misc]
    if eq_here:  # the dataclass's, 100 ns faster than closures on `attrgetter`
        cls.__eq__ = model.__eq__  # type: ignore[method-assign]
        cls.__hash__ = model.__hash__  # type: ignore[method-assign]
    cls.__dataclass_params__ = model.__dataclass_params__  # type: ignore[attr-defined]
    cls.__signature__ = None  # type: ignore[attr-defined]  # `inspect.signature` reads `__init__`
    cls.__dataclass_fields__ = model.__dataclass_fields__  # type: ignore[attr-defined]


def _as_field(dataclasses: Any, default: Any) -> Any:
    """`default` as `dataclass` accepts it: a read-only mapping, say, behind a `default_factory`."""
    if isinstance(default, dataclasses.Field) or type(default).__hash__ is not None:
        return default
    return dataclasses.field(default_factory=lambda: default)


def _values(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """`obj -> tuple of its field values`, hashed as the dataclass's `__hash__` hashes them."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    return lambda obj: ()


def _eq_and_hash(values: Callable[[Any], Any]) -> tuple[Callable[..., Any], Callable[..., int]]:
    """`__eq__` and `__hash__` on the field values, until `_generate` puts the dataclass's."""

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(values(self))

    return __eq__, __hash__


def _frozen(self: Any, name: str) -> bool:
    return "_frozen_spec" in type(self).__dict__ or name in self._frozen_fields


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


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._frozen_fields)
    return f"{type(self).__qualname__}({shown})"


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self._frozen_fields]


def _setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self._frozen_fields, state, strict=True):
        object.__setattr__(self, name, value)
