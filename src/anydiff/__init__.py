"""anydiff: one interface to every automatic-differentiation system in Python.

Write `f` once with the array API (`xp = ad.namespace(x)`), pick a backend object, call an
operator::

    import anydiff as ad
    g = ad.gradient(f, ad.AutoJAX(), x)

`import anydiff` imports no AD library; each backend's library is imported on first use.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from ._core.arrays import namespace as namespace
from ._core.backend import AbstractBackend as AbstractBackend
from ._core.backend_impl import BackendImpl as BackendImpl
from ._core.contexts import Cache as Cache
from ._core.contexts import Constant as Constant
from ._core.errors import AnyDiffError as AnyDiffError
from ._core.errors import BackendNotInstalledError as BackendNotInstalledError
from ._core.errors import FunctionNotDifferentiableError as FunctionNotDifferentiableError
from ._core.errors import PreparationMismatchError as PreparationMismatchError
from ._core.errors import ProgramSizeWarning as ProgramSizeWarning
from ._core.errors import UnsupportedError as UnsupportedError
from ._core.prep import Prep as Prep
from ._core.registry import available_backends as available_backends
from ._core.registry import check_available as check_available
from ._core.registry import register_backend as register_backend
from ._core.trees import Args as Args
from ._core.trees import ravel as ravel
from ._core.trees import register_dataclass as register_dataclass
from ._core.trees import register_pytree_node as register_pytree_node
from ._libraries.autograd import AutoAutograd as AutoAutograd
from ._libraries.casadi import AutoCasADi as AutoCasADi
from ._libraries.finitediff import AutoFiniteDiff as AutoFiniteDiff
from ._libraries.jax import AutoJAX as AutoJAX
from ._libraries.mindspore import AutoMindSpore as AutoMindSpore
from ._libraries.mlx import AutoMLX as AutoMLX
from ._libraries.mygrad import AutoMyGrad as AutoMyGrad
from ._libraries.numdifftools import AutoNumdifftools as AutoNumdifftools
from ._libraries.paddle import AutoPaddle as AutoPaddle
from ._libraries.pytensor import AutoPyTensor as AutoPyTensor
from ._libraries.sympy import AutoSymPy as AutoSymPy
from ._libraries.tensorflow import AutoTensorFlow as AutoTensorFlow
from ._libraries.tinygrad import AutoTinygrad as AutoTinygrad
from ._libraries.torch import AutoTorch as AutoTorch
from .combinators import AutoSparse as AutoSparse
from .combinators import MixedMode as MixedMode
from .combinators import SecondOrder as SecondOrder
from .first_order.derivative import derivative as derivative
from .first_order.derivative import prepare_derivative as prepare_derivative
from .first_order.derivative import value_and_derivative as value_and_derivative
from .first_order.gradient import gradient as gradient
from .first_order.gradient import prepare_gradient as prepare_gradient
from .first_order.gradient import value_and_gradient as value_and_gradient
from .first_order.jacobian import jacobian as jacobian
from .first_order.jacobian import prepare_jacobian as prepare_jacobian
from .first_order.jacobian import value_and_jacobian as value_and_jacobian
from .first_order.pullback import prepare_pullback as prepare_pullback
from .first_order.pullback import pullback as pullback
from .first_order.pullback import value_and_pullback as value_and_pullback
from .first_order.pushforward import prepare_pushforward as prepare_pushforward
from .first_order.pushforward import pushforward as pushforward
from .first_order.pushforward import value_and_pushforward as value_and_pushforward
from .second_order.hessian import hessian as hessian
from .second_order.hessian import prepare_hessian as prepare_hessian
from .second_order.hessian import value_gradient_and_hessian as value_gradient_and_hessian
from .second_order.hvp import gradient_and_hvp as gradient_and_hvp
from .second_order.hvp import hvp as hvp
from .second_order.hvp import prepare_hvp as prepare_hvp
from .second_order.second_derivative import prepare_second_derivative as prepare_second_derivative
from .second_order.second_derivative import second_derivative as second_derivative
from .second_order.second_derivative import (
    value_derivative_and_second_derivative as value_derivative_and_second_derivative,
)

if _TYPE_CHECKING:
    from ._libraries.jax.sparsity import JaxprSparsityDetector as JaxprSparsityDetector
    from .bridge import DifferentiateWith as DifferentiateWith
    from .scipy import hessian_operator as hessian_operator
    from .scipy import jacobian_operator as jacobian_operator
    from .sparse import DenseSparsityDetector as DenseSparsityDetector
    from .sparse import GreedyColoring as GreedyColoring
    from .sparse import KnownSparsity as KnownSparsity
    from .sparse import OptimalColoring as OptimalColoring
    from .sparse import TracerSparsityDetector as TracerSparsityDetector
    from .sparse import coloring as coloring
    from .sparse import hessian_sparsity as hessian_sparsity
    from .sparse import jacobian_sparsity as jacobian_sparsity

# `import anydiff` costs NumPy and a few milliseconds: what needs more is loaded on first use. The
# sparsity tools import SciPy (0.2-0.5 s), the bridge its tower of nodes (15 ms), the SciPy
# adapters 6 ms and the version `importlib.metadata` (50 ms).
_SPARSE = frozenset(
    {
        "DenseSparsityDetector",
        "GreedyColoring",
        "KnownSparsity",
        "OptimalColoring",
        "TracerSparsityDetector",
        "coloring",
        "hessian_sparsity",
        "jacobian_sparsity",
    }
)


def __getattr__(name: str) -> _Any:
    if name in _SPARSE:
        from . import sparse

        return getattr(sparse, name)
    if name == "DifferentiateWith":
        from .bridge import DifferentiateWith

        return DifferentiateWith
    if name in ("hessian_operator", "jacobian_operator"):
        from . import scipy

        return getattr(scipy, name)
    if name == "JaxprSparsityDetector":
        from ._libraries.jax.sparsity import JaxprSparsityDetector

        return JaxprSparsityDetector
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("anydiff")
        except PackageNotFoundError:  # running from a source tree that is not installed
            return "0+unknown"
    raise AttributeError(f"module 'anydiff' has no attribute {name!r}")


__all__ = [
    "AbstractBackend",
    "AnyDiffError",
    "Args",
    "AutoAutograd",
    "AutoCasADi",
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoMLX",
    "AutoMindSpore",
    "AutoMyGrad",
    "AutoNumdifftools",
    "AutoPaddle",
    "AutoPyTensor",
    "AutoSparse",
    "AutoSymPy",
    "AutoTensorFlow",
    "AutoTinygrad",
    "AutoTorch",
    "BackendImpl",
    "BackendNotInstalledError",
    "Cache",
    "Constant",
    "DenseSparsityDetector",
    "DifferentiateWith",
    "FunctionNotDifferentiableError",
    "GreedyColoring",
    "JaxprSparsityDetector",
    "KnownSparsity",
    "MixedMode",
    "OptimalColoring",
    "Prep",
    "PreparationMismatchError",
    "ProgramSizeWarning",
    "SecondOrder",
    "TracerSparsityDetector",
    "UnsupportedError",
    "available_backends",
    "check_available",
    "coloring",
    "derivative",
    "gradient",
    "gradient_and_hvp",
    "hessian",
    "hessian_sparsity",
    "hvp",
    "jacobian",
    "jacobian_sparsity",
    "namespace",
    "prepare_derivative",
    "prepare_gradient",
    "prepare_hessian",
    "prepare_hvp",
    "prepare_jacobian",
    "prepare_pullback",
    "prepare_pushforward",
    "prepare_second_derivative",
    "pullback",
    "pushforward",
    "ravel",
    "register_backend",
    "register_dataclass",
    "register_pytree_node",
    "second_derivative",
    "value_and_derivative",
    "value_and_gradient",
    "value_and_jacobian",
    "value_and_pullback",
    "value_and_pushforward",
    "value_derivative_and_second_derivative",
    "value_gradient_and_hessian",
]
