"""`load_paddle`: the one place that imports Paddle, for `arrays.py`, `namespace.py` and `impl.py`."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

__all__ = ["load_paddle"]


def load_paddle() -> Any:
    """`import paddle`, safely after TensorFlow and leaving the process as it was.

    - Loading Paddle's `libpaddle.so` after TensorFlow's libraries crashes the process (Paddle
      3.3.1 with TensorFlow 2.21: a segmentation fault, their native symbols clash): on Linux
      it is loaded with `RTLD_DEEPBIND`, which makes it resolve its symbols in its own
      libraries first.
    - Importing Paddle warns when it finds no `ccache` (for C++ extensions it would build).
    - It configures the root logger (level INFO, a stderr handler), after which every library's
      INFO messages are printed: the root logger is restored.
    """
    loaded = sys.modules.get("paddle")
    if loaded is not None:
        return loaded
    import logging  # here: `import anydiff` does not pay its few milliseconds

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    flags = sys.getdlopenflags() if hasattr(sys, "getdlopenflags") else None
    try:
        if flags is not None and hasattr(os, "RTLD_DEEPBIND"):
            sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import paddle
    finally:
        if flags is not None:
            sys.setdlopenflags(flags)
        root.setLevel(level)
        root.handlers[:] = handlers
    return paddle
