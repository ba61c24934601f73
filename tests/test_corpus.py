"""The corpus of realistic functions (tests/corpus.py) on every installed backend (issue 17).

Every (function, backend, operator) gives the right result, against the corpus's independent
references, or raises an `ad.AnyDiffError` subclass whose message says why; never a wrong number
or a library's raw error. Operators: `gradient`, `pullback` and (where the Hessian has a closed
form) `hvp` for scalar functions; `jacobian`, `pushforward` and `pullback` for the others.

    pytest tests/test_corpus.py                                   # a fixed slice, about a minute
    ANYDIFF_FULL_MATRIX=1 pytest tests/test_corpus.py             # everything (several minutes)
    ANYDIFF_FULL_MATRIX=1 ANYDIFF_WRITE_MATRIX=1 pytest tests/test_corpus.py

The last form rewrites the generated function × backend table of docs/backends.md from the run;
the full run without it fails when that table is out of date.

Tolerances: exact derivatives agree with the references to 1e-8 (relative to the largest
reference entry); finite differences and numdifftools to 1e-5 on first derivatives and 1e-4 on
Hessian-vector products (differences of differences); MLX to 1e-5, since it computes `exp`, `sin`
and `cos` of float64 arrays in float32 arithmetic; MyGrad's Hessian-vector products are
differences of its exact gradients, 1e-5; MindSpore to 1e-5, since it rounds a Python float
operand to float32 (`0.2 * x` of a float64 tensor).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import anydiff as ad
from anydiff.testing.correctness import to_numpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CORPUS, Entry  # noqa: E402
from generated import FULL, check_or_write

# ProgramSizeWarning is the guard at work (the RK4 loop runs uncompiled on JAX): tested elsewhere.
# numdifftools evaluates `f` at large steps too, where the RK4 loop overflows; it discards those.
pytestmark = [
    pytest.mark.filterwarnings("ignore::anydiff.ProgramSizeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

# anydiff's own backends (packages registered by other tests, such as tests/external_backend, are not
# anydiff's to check, and their errors not its to explain)
BACKENDS = [b for b in ad.available_backends() if type(b).__module__.startswith("anydiff.")]
DIFFERENCES = {"AutoFiniteDiff", "AutoNumdifftools"}


def operators(entry: Entry) -> list[str]:
    if entry.scalar:
        return ["gradient", "pullback"] + (["hvp"] if entry.hessian is not None else [])
    return ["jacobian", "pushforward", "pullback"]


def tolerance(backend: ad.AbstractBackend, operator: str) -> float:
    name = type(backend).__name__
    if name in DIFFERENCES:
        return 1e-4 if operator == "hvp" else 1e-5
    if name == "AutoMLX" or (name == "AutoMyGrad" and operator == "hvp"):
        return 1e-5
    if name == "AutoMindSpore":  # MindSpore rounds a Python float operand to float32 (`0.2 * x`)
        return 1e-5
    return 1e-8


def compute(entry: Entry, backend: ad.AbstractBackend, operator: str) -> tuple[np.ndarray, np.ndarray]:
    """`(what the backend computes, the reference)` for one operator."""
    x = entry.x
    seeds = np.random.default_rng(len(entry.name))
    J = np.asarray(entry.jacobian(x))
    if operator in ("gradient", "jacobian"):
        return to_numpy(getattr(ad, operator)(entry.f, backend, x)), J
    if operator == "pushforward":
        t = seeds.standard_normal(x.shape)
        return to_numpy(ad.pushforward(entry.f, backend, x, t)), J @ t
    if operator == "pullback":
        u = seeds.standard_normal(np.shape(entry.value(x)))
        want = u * J if entry.scalar else u @ J
        return to_numpy(ad.pullback(entry.f, backend, x, u)), want
    v = seeds.standard_normal(x.shape)
    return to_numpy(ad.hvp(entry.f, backend, x, v)), entry.hessian(x) @ v  # type: ignore[misc]


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape or not np.all(np.isfinite(got)):
        return np.inf
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))


#: (function, backend repr) -> {operator: "works" or the refusal's "Error: message"}
RECORDED: dict[tuple[str, str], dict[str, str]] = {}


def cases() -> list:
    found = []
    for i, entry in enumerate(CORPUS):
        for j, backend in enumerate(BACKENDS):
            for k, operator in enumerate(operators(entry)):
                if FULL or ((i + j) % 5 == 0 and k == 0):
                    found.append(pytest.param(entry, backend, operator, id=f"{entry.name}-{backend!r}-{operator}"))
    return found


def test_the_corpus_is_large_and_its_references_agree():
    """At least 15 functions; the references agree with a complex step wherever `f` allows one."""
    assert len(CORPUS) >= 15
    for entry in CORPUS:
        want = np.asarray(entry.value(entry.x))
        np.testing.assert_allclose(np.asarray(entry.f(entry.x)), want, rtol=1e-12, atol=1e-12)
        if entry.name in ("huber_loss", "logsumexp", "cross_entropy", "spd_solve", "gather_products"):
            continue  # `abs`, `max` or an integer index: no complex step through them
        from corpus import complex_jacobian

        np.testing.assert_allclose(complex_jacobian(entry.f, entry.x), entry.jacobian(entry.x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(("entry", "backend", "operator"), cases())
def test_right_or_refused_with_a_reason(entry, backend, operator):
    key = (entry.name, repr(backend))
    try:
        got, want = compute(entry, backend, operator)
    except ad.AnyDiffError as exc:
        message = str(exc).strip()
        assert len(message) > 40, f"a refusal must say why: {message!r}"
        RECORDED.setdefault(key, {})[operator] = f"{type(exc).__name__}: {message.splitlines()[0]}"
        return
    error = relative_error(got, want)
    assert error <= tolerance(backend, operator), f"{entry.name} on {backend!r}, {operator}: relative error {error:.2e}"
    RECORDED.setdefault(key, {})[operator] = "works"


# -- the generated table in docs/backends.md -------------------------------------------------------


def render(recorded: dict[tuple[str, str], dict[str, str]]) -> str:
    """One row per function, one column per backend: ✓, or numbered refusals explained below.

    A reason is given once for the operators that share it (its message without the operator's
    name), cut to its first 240 characters.
    """
    names = [type(b).__name__.removeprefix("Auto") for b in BACKENDS]
    lines = ["| function | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    reasons: list[str] = []
    for entry in CORPUS:
        cells = []
        for backend in BACKENDS:
            outcome = recorded[(entry.name, repr(backend))]
            by_reason: dict[str, list[str]] = {}
            for op, why in outcome.items():
                if why != "works":
                    by_reason.setdefault(why.replace(f": {op}: ", ": ", 1), []).append(op)
            if not by_reason:
                cells.append("✓")
                continue
            marks = []
            for why, ops in by_reason.items():
                why = why if len(why) <= 240 else why[:239] + "…"
                reasons.append(f"{entry.name} on `{backend!r}` ({', '.join(ops)}): {why}")
                marks.append(str(len(reasons)))
            refused = sum(len(ops) for ops in by_reason.values())
            cells.append(f"{'partly' if refused < len(outcome) else 'refused'} ({', '.join(marks)})")
        lines.append(f"| {entry.name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"{n}. " + markdown_text(text) for n, text in enumerate(reasons, 1)]
    return "\n".join(lines)


def markdown_text(text: str) -> str:
    """`text` with the characters Markdown would read as table cells, links or HTML escaped."""
    for character in "\\|[]<>":
        text = text.replace(character, "\\" + character)
    return text


def test_generated_table_matches_the_run():
    """After the full run: the committed table is this run's (or is rewritten with ANYDIFF_WRITE_MATRIX=1)."""
    if not FULL:
        pytest.skip("the table is generated by the full run: ANYDIFF_FULL_MATRIX=1")
    missing = [(e.name, repr(b)) for e in CORPUS for b in BACKENDS if (e.name, repr(b)) not in RECORDED]
    if missing:
        pytest.skip(f"{len(missing)} pairs were not run in this session (e.g. {missing[0]})")
    check_or_write("backends.md", "corpus table", render(RECORDED))
