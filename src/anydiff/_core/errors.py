"""The error hierarchy of anydiff (API.md section 7), and what backends share to explain library errors."""

from __future__ import annotations

__all__ = [
    "AnyDiffError",
    "BackendNotInstalledError",
    "FunctionNotDifferentiableError",
    "PreparationMismatchError",
    "ProgramSizeWarning",
    "UnsupportedError",
    "numpy_operand_error",
    "raised_by_operator",
]


class AnyDiffError(Exception):
    """Base class of every error anydiff raises on purpose."""


class BackendNotInstalledError(AnyDiffError, ImportError):
    """The library behind a backend is not installed; the message names the `pip install` extra."""


class PreparationMismatchError(AnyDiffError, ValueError):
    """A prepared call received arguments that differ from those the prep was built for."""


class UnsupportedError(AnyDiffError, NotImplementedError):
    """The backend cannot do this operator or feature; the message names the alternative."""


class FunctionNotDifferentiableError(AnyDiffError, TypeError):
    """`f` used something the backend cannot trace; the message says how to write `f` instead."""


class ProgramSizeWarning(UserWarning):
    """`f` traced to a program above the backend's `max_program_size`, so it runs uncompiled.

    Issued once per operator, function and backend; the message names the size and the cause
    (usually a Python loop that tracing unrolls). Silence it with
    `warnings.filterwarnings("ignore", category=ad.ProgramSizeWarning)`.
    """


def numpy_operand_error(operator: str, library: str, detail: str) -> FunctionNotDifferentiableError:
    """The error for a NumPy array that `f` captures meeting the arrays `library` differentiates.

    For backends whose arrays do not mix with NumPy's (`detail` is the library's own message);
    it shows the two ways to hand the array to `f` as the library's own.
    """
    return FunctionNotDifferentiableError(
        f"{operator}: a NumPy array meets the {library} arrays `f` is differentiated on "
        f"({detail.strip().splitlines()[0]}). A NumPy array that `f` takes from outside (a global "
        "or closure variable, such as `data` in `x - data` or `data * x`) does not mix with them "
        f"in this operation. Pass it as a context, `f(x, data)` called as `ad.{operator}(f, "
        f"backend, x, ..., ad.Constant(data))`, which anydiff converts to {library} arrays, or "
        "convert it inside `f`: `data = xp.asarray(data)` with `xp = ad.namespace(x)`."
    )


_OPERATOR_INSTRUCTIONS = ("BINARY_", "INPLACE_", "COMPARE_OP")
_NOT_OPERATORS = ("BINARY_SUBSCR", "BINARY_SLICE")  # indexing


def raised_by_operator(exc: BaseException, library: str) -> bool:
    """Whether `exc` was raised by an operator (`a - b`, `a * b`, `a < b`) of the code calling
    into `library`, rather than by a call (`numpy.sin(x)`).

    The innermost frame of the traceback outside `library`'s modules is the line of `f` that
    failed; its current instruction tells the two apart. Used to explain a library's error about
    converting its arrays to NumPy, which both cause.
    """
    import dis

    caller = None
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module != library and not module.startswith(library + "."):
            caller = tb
        tb = tb.tb_next
    if caller is None:
        return False
    for instruction in dis.get_instructions(caller.tb_frame.f_code):
        if instruction.offset == caller.tb_lasti:
            name = instruction.opname
            return name.startswith(_OPERATOR_INSTRUCTIONS) and name not in _NOT_OPERATORS
    return False
