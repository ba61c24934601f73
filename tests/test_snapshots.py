"""Snapshots of what users see, taken before the architecture move: it must change none of it.

Two snapshots in `tests/snapshots/`:

- `public_names.json`: `anydiff.__all__`, sorted; every name must also resolve on the package.
- `prep_info.json`: for each backend (the default instance of every available backend, plus a few
  configured ones and combinators) and each of the eight `prepare_<operator>` functions (Jacobian
  and Hessian also with `batch_size=2`), the plain entries of `prep.info` (mode, strategy,
  batch_size, ...) or, when preparation raises, the exception's type name and its exact message.
  Keyed by `repr(backend)`, then operator name (`"prepare_jacobian(batch_size=2)"` for a batched one).

The snapshots were generated from the pre-move tree (commit e8304ba) and are not regenerated
from a moved tree: a difference is a visible change, to be fixed in the code. To regenerate
(only from the reference tree):

    git worktree add /tmp/anydiff_base e8304ba
    PYTHONPATH=/tmp/anydiff_base/src python tests/test_snapshots.py --regenerate
    git worktree remove --force /tmp/anydiff_base
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import anydiff as ad

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
PUBLIC_NAMES = SNAPSHOTS / "public_names.json"
PREP_INFO = SNAPSHOTS / "prep_info.json"

OPERATORS = (
    "prepare_pushforward",
    "prepare_pullback",
    "prepare_derivative",
    "prepare_gradient",
    "prepare_jacobian",
    "prepare_second_derivative",
    "prepare_hvp",
    "prepare_hessian",
)
# Also with a batch size smaller than the input, where `prep.info` reports "batch_size".
BATCHED = ("prepare_jacobian", "prepare_hessian")
BATCH_SIZE = 2
CASES = OPERATORS + tuple(f"{operator}(batch_size={BATCH_SIZE})" for operator in BATCHED)


# The functions, written once with the array API.


def vector_to_vector(x):
    xp = ad.namespace(x)
    return xp.sin(x) * x[0]


def vector_to_scalar(x):
    xp = ad.namespace(x)
    return xp.sum(xp.sin(x) ** 2)


def scalar_to_vector(x):
    xp = ad.namespace(x)
    return xp.stack([xp.sin(x), x * x, xp.exp(x)])


X_VECTOR = np.array([0.5, -1.25, 2.0])
X_SCALAR = 0.75
TANGENT = np.array([1.0, 0.5, -0.25])


def prepare(case: str, backend: Any) -> ad.Prep:
    """Prepare the operator of `case` for `backend` on that operator's fixed function and point."""
    operator, _, batched = case.partition("(")
    function = getattr(ad, operator)
    options = {"batch_size": BATCH_SIZE} if batched else {}
    if operator in ("prepare_pushforward", "prepare_pullback"):
        return function(vector_to_vector, backend, X_VECTOR, TANGENT)
    if operator in ("prepare_derivative", "prepare_second_derivative"):
        return function(scalar_to_vector, backend, X_SCALAR)
    if operator == "prepare_jacobian":
        return function(vector_to_vector, backend, X_VECTOR, **options)
    if operator == "prepare_hvp":
        return function(vector_to_scalar, backend, X_VECTOR, TANGENT)
    if operator == "prepare_hessian":
        return function(vector_to_scalar, backend, X_VECTOR, **options)
    assert operator == "prepare_gradient", case
    return function(vector_to_scalar, backend, X_VECTOR)


# The backends.


def extra_backends() -> list[Any]:
    """Configured backends and combinators; those whose library is missing are left out."""
    makers = [
        (("jax",), lambda: ad.AutoJAX(mode="forward")),
        (("torch",), lambda: ad.AutoTorch(mode="reverse")),
        (("jax",), lambda: ad.SecondOrder(ad.AutoFiniteDiff(), ad.AutoJAX())),
        (("jax", "torch"), lambda: ad.SecondOrder(ad.AutoJAX(), ad.AutoTorch())),
        (("jax",), lambda: ad.AutoSparse(ad.AutoJAX())),
        (("scipy",), lambda: ad.AutoSparse(ad.AutoFiniteDiff())),
        (("jax", "torch"), lambda: ad.MixedMode(ad.AutoJAX(), ad.AutoTorch())),
        (("jax",), lambda: ad.MixedMode(ad.AutoFiniteDiff(), ad.AutoJAX())),
    ]
    return [make() for libraries, make in makers if all(importlib.util.find_spec(name) for name in libraries)]


def backends() -> dict[str, Any]:
    """`repr(backend) -> backend` for every backend of the snapshot available here.

    Only anydiff's own: other test files register outside backends, which `available_backends` lists too.
    """
    found = [backend for backend in ad.available_backends() if type(backend).__module__.startswith("anydiff.")]
    return {repr(backend): backend for backend in found + extra_backends()}


# What is recorded.


def plain_info(prep: ad.Prep) -> dict[str, Any]:
    return {key: value for key, value in prep.info.items() if isinstance(value, (str, int, float, bool))}


def record(case: str, backend: Any) -> dict[str, Any]:
    """`{"info": {...}}`, or `{"error": {"type": ..., "message": ...}}` when preparation raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytest turns warnings into errors: the script does not
        try:
            prep = prepare(case, backend)
        except Exception as error:
            return {"error": {"type": type(error).__name__, "message": str(error)}}
    return {"info": plain_info(prep)}


def records(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {case: record(case, backend) for case in CASES} for name, backend in found.items()}


def canonical(value: Any) -> str:
    """JSON text, one entry a line: tells 1 from 1.0 and True from 1, and diffs readably."""
    return json.dumps(value, indent=1, sort_keys=True)


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def keys(path: Path) -> list[str]:
    """The entries of a snapshot, to parametrize over; none while it does not exist yet."""
    return sorted(load(path)) if path.exists() else []


# The tests.


def test_public_names_unchanged():
    assert canonical(sorted(ad.__all__)) == canonical(load(PUBLIC_NAMES))


@pytest.mark.parametrize("name", keys(PUBLIC_NAMES))
def test_public_name_resolves(name):
    assert getattr(ad, name) is not None


@pytest.fixture(scope="module")
def available():
    return backends()


@pytest.fixture(scope="module")
def current(available):
    return records(available)


def test_every_backend_has_a_snapshot(available):
    missing = sorted(set(available) - set(load(PREP_INFO)))
    assert not missing, f"backends with no snapshot (was their repr changed?): {missing}"


@pytest.mark.parametrize("backend", keys(PREP_INFO))
def test_prep_info_unchanged(backend, current):
    if backend not in current:
        pytest.skip(f"{backend}: its library is not installed here")
    expected = load(PREP_INFO)[backend]
    assert canonical(current[backend]) == canonical(expected), f"prep.info or an error message of {backend} changed"


# Regeneration, from the reference tree only.


def regenerate() -> None:
    print(f"anydiff imported from {ad.__file__}")
    SNAPSHOTS.mkdir(exist_ok=True)
    PUBLIC_NAMES.write_text(canonical(sorted(ad.__all__)) + "\n")
    found = backends()
    PREP_INFO.write_text(canonical(records(found)) + "\n")
    print(f"wrote {PUBLIC_NAMES.name} ({len(ad.__all__)} names) and {PREP_INFO.name} ({len(found)} backends):")
    for name in found:
        print(f"  {name}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit(f"usage: python {sys.argv[0]} --regenerate   (from the pre-move tree: see the docstring)")
    regenerate()
