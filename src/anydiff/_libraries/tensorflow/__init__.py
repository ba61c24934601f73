"""TensorFlow: `AutoTensorFlow` and its registration.

Imports no TensorFlow library: `impl.py` does, on the backend's first use.
"""

from __future__ import annotations

from typing import ClassVar

from anydiff.extend import (
    AbstractBackend,
    Mode,
    backend_dataclass,
    check_mode,
    register_array_kind,
    register_backend,
    register_bridge_caller,
)

from .arrays import TENSORFLOW

__all__ = ["AutoTensorFlow"]


@backend_dataclass
class AutoTensorFlow(AbstractBackend):
    """`AutoTensorFlow(mode=None, function=True, max_program_size=2000)`: differentiate with TensorFlow.

    Args:
        mode: `None` chooses per operator, `"forward"` (`tf.autodiff.ForwardAccumulator`) or
            `"reverse"` (`tf.GradientTape`) forces one.
        function: run every derivative as a TensorFlow graph (`tf.function`), traced on its
            first call for that call's input signature and then called through its concrete
            function; `False` runs eagerly (slower, but `f` may use Python branches on values).
        max_program_size: the most operations `f`'s graph may have for the derivative to run as
            a graph (counted while tracing `f` once, stopping past the limit); a larger one runs
            eagerly, as with `function=False`, with an `ad.ProgramSizeWarning` and
            `prep.info["compiled"] = False`. A Python loop is unrolled by tracing: an RK4
            integration of 500 steps traces to about 21 500 operations, and its gradient took
            over a minute to trace and optimise as a graph. `None`: always a graph.

    `ad.namespace(tensor)` gives `f` an array-API namespace over TensorFlow. Python numbers
    among the contexts are constants of the graph: a new value traces the graph again.
    """

    mode: Mode | None = None
    function: bool = True
    max_program_size: int | None = 2000
    extra: ClassVar[str] = "tensorflow"

    def __post_init__(self) -> None:
        check_mode(self, self.mode)


register_array_kind(TENSORFLOW)
register_backend(AutoTensorFlow, "anydiff._libraries.tensorflow.impl:TensorFlowImpl", library="tensorflow")
register_bridge_caller("tensorflow", "anydiff._libraries.tensorflow.bridge")
