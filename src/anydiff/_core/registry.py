"""The registry from backend types to the code that implements them, imported on first use."""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

from .backend import AbstractBackend
from .errors import BackendNotInstalledError

if TYPE_CHECKING:
    from .backend_impl import BackendImpl

__all__ = [
    "available_backends",
    "bridge_callers",
    "check_available",
    "implementation",
    "register_backend",
    "register_bridge_caller",
    "registered_backends",
]

# backend type -> (implementation class or "module:Class", the import name of its library)
_REGISTRY: dict[type, tuple[type[BackendImpl] | str, str | None]] = {}


def register_backend(backend_type: type, impl: type[BackendImpl] | str, library: str | None = None) -> None:
    """`register_backend(backend_type, impl, library=None)`: make a backend type usable.

    Args:
        backend_type: a subclass of `anydiff.AbstractBackend` (frozen dataclass of options).
        impl: a subclass of `anydiff.BackendImpl`, or `"module:Class"` to import it lazily.
        library: the import name of the AD library it needs, so that `available_backends` can
            tell whether it is installed without importing it.
    """
    if not (isinstance(backend_type, type) and issubclass(backend_type, AbstractBackend)):
        raise TypeError(
            f"register_backend: `backend_type` must be a subclass of `anydiff.AbstractBackend`; got {backend_type!r}."
        )
    _REGISTRY[backend_type] = (impl, library)
    implementation.cache_clear()


# calling library (the top-level module of its arrays) -> the module of its `DifferentiateWith` caller
_CALLERS: dict[str, str] = {}


def register_bridge_caller(library: str, module: str) -> None:
    """`register_bridge_caller(library, module)`: let `library`'s programs call a `DifferentiateWith`.

    Args:
        library: the top-level module of the calling library's arrays (`"jax"`).
        module: the import name of the module that teaches the library the bridge's derivative
            rules, imported when a `DifferentiateWith` first meets that library's arrays. It
            defines `owns(x) -> bool`, `asarray(a)`, `call(node, args)` and `transparent`
            (the backend types whose `f` the library differentiates itself); see
            `anydiff.bridge.nodes`.
    """
    _CALLERS[library] = module


def bridge_callers() -> dict[str, str]:
    """The registered `DifferentiateWith` callers: library -> module name."""
    return dict(_CALLERS)


def registered_backends() -> dict[type, str | None]:
    """Every registered backend type, with the import name of the library it needs (`None`: none)."""
    return {backend_type: library for backend_type, (_, library) in _REGISTRY.items()}


def _load(target: type[BackendImpl] | str, backend: AbstractBackend) -> type[BackendImpl]:
    if not isinstance(target, str):
        return target
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "anydiff":
            raise
        extra = type(backend).extra
        raise BackendNotInstalledError(
            f"{type(backend).__name__} needs the `{exc.name}` package, which is not installed "
            f"here. Install it with `pip install 'anydiff[{extra}]'`."
        ) from None
    return getattr(module, class_name)


@functools.lru_cache(maxsize=256)
def implementation(backend: AbstractBackend) -> BackendImpl:
    """The implementation object of `backend`, importing its library on first use."""
    for tp in type(backend).__mro__:
        entry = _REGISTRY.get(tp)
        if entry is not None:
            return _load(entry[0], backend)(backend)
    raise TypeError(
        f"{backend!r} is not a backend anydiff knows: pass a backend object such as "
        "`ad.AutoJAX()`, or register its type with `ad.register_backend`."
    )


def check_available(backend: AbstractBackend) -> bool:
    """`check_available(backend) -> bool`: whether the backend's library imports and runs here."""
    try:
        return implementation(backend).available()
    except BackendNotInstalledError:
        return False


def available_backends() -> list[AbstractBackend]:
    """`available_backends() -> list`: a default instance of every backend whose library is installed.

    Looks for the libraries without importing them.
    """
    from importlib.util import find_spec  # 0.3 ms that `import anydiff` need not pay

    found = []
    for backend_type, (_, library) in _REGISTRY.items():
        if library is not None and find_spec(library) is None:
            continue
        try:
            found.append(backend_type())
        except TypeError:  # a combinator such as SecondOrder, which needs its parts
            continue
    return found
