"""`load_mindspore`: the one place that imports MindSpore, for `arrays.py`, `namespace.py` and `impl.py`."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from typing import Any

from anydiff.extend import UnsupportedError

__all__ = ["load_mindspore"]


def _import() -> Any:
    try:
        return importlib.import_module("mindspore")
    except ImportError as exc:
        if "undefined symbol" in str(exc) and "paddle" in sys.modules:
            raise UnsupportedError(
                "MindSpore cannot load in a process that loaded PaddlePaddle first: both ship a "
                f"`libdnnl.so.3`, and MindSpore's kernels do not run on Paddle's ({exc}). Use "
                "`ad.AutoMindSpore()` (or `import mindspore`) before Paddle, or run them in "
                "separate processes."
            ) from None
        raise


_READY: list[Any] = []  # the module, once its first operator call has been made


def load_mindspore() -> Any:
    """`import mindspore`, on CPU, with its operators working under NumPy 2.

    - MindSpore logs to stderr at WARNING and above by default: unless the user chose a level
      (`GLOG_v`), only its errors are printed (`GLOG_v=3` while it is imported, then unset
      again: Paddle's glog reads the same variable as a verbosity, and would print more).
    - Without a device chosen, its kernels run on CPU (`mindspore.set_device("CPU")`); a process
      that imported MindSpore before anydiff keeps its own choice.
    - MindSpore 2.10.0's operator parser (`py_parse.cc`) is built against NumPy 1.x: the first
      operator taking a Python number (`x * 2.0`, `x + y`) in a process tries to load NumPy's C
      API, which NumPy 2 refuses, and raises `SystemError` ("returned a result with an exception
      set"), once. That first call is made here, its error dropped; every operator works after
      it, except that NumPy scalars other than `numpy.float64` (a Python float) are no operands
      (`x * np.int64(2)` raises `TypeError`): `ad.namespace(x)`'s functions convert them.
    - PaddlePaddle and MindSpore ship different `libdnnl.so.3` builds: once Paddle's is loaded,
      MindSpore's CPU kernels cannot load (`undefined symbol: dnnl_...`), while Paddle loads
      after MindSpore. That case raises `ad.UnsupportedError` naming the fix.
    """
    mindspore: Any = sys.modules.get("mindspore")
    if _READY and mindspore is _READY[0]:
        return mindspore
    level = os.environ.get("GLOG_v")
    if level is None:  # for MindSpore alone: Paddle's glog reads `GLOG_v` as a verbosity to raise
        os.environ["GLOG_v"] = "3"
    try:
        if mindspore is None or not hasattr(mindspore, "Tensor"):
            mindspore = _import()
            with contextlib.suppress(RuntimeError, ValueError):
                mindspore.set_device("CPU")  # refused once a kernel has run: a device was chosen
        one = mindspore.Tensor(1.0, mindspore.float64)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemError):
            one * one  # noqa: B018 (the first operator call, whose NumPy error is dropped)
    finally:
        if level is None:
            os.environ.pop("GLOG_v", None)
    _READY.append(mindspore)
    return mindspore
