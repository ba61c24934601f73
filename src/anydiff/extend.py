"""`anydiff.extend`: the public API for adding an AD library to anydiff.

Every built-in library folder (`anydiff/_libraries/<lib>/`) is written with these names alone,
exactly as an outside package would be. A backend is

- a backend object: a frozen, keyword-only dataclass subclassing `AbstractBackend`, made with
  `@backend_dataclass` (or `dataclasses.dataclass`);
- an implementation: a `BackendImpl` subclass with the primitives `jvp` and/or `vjp` (each is
  derived from the other when missing) and, optionally, a `native` table of faster routes of its
  library keyed by the operator records (`GRADIENT`, `HESSIAN`, ...); every operator without a
  native route takes its generic route, written on the primitives;
- an array kind (`ArrayKind`, `register_array_kind`) when the library has arrays of its own;
- registration: `register_backend(AutoMine, "mypackage.impl:MineImpl", library="mine")`.

See docs/new-backend.md for a worked example.
"""

from __future__ import annotations

from ._core.arrays import ArrayKind as ArrayKind
from ._core.arrays import ArrayLike as ArrayLike
from ._core.arrays import Switch as Switch
from ._core.arrays import array_kind as array_kind
from ._core.arrays import array_kinds as array_kinds
from ._core.arrays import converter as converter
from ._core.arrays import csr_rows as csr_rows
from ._core.arrays import cumulative as cumulative
from ._core.arrays import dtype_name as dtype_name
from ._core.arrays import itemsize as itemsize
from ._core.arrays import namespace as namespace
from ._core.arrays import register_array_kind as register_array_kind
from ._core.arrays import register_namespace as register_namespace
from ._core.arrays import sparse_builder as sparse_builder
from ._core.backend import AbstractBackend as AbstractBackend
from ._core.backend import Mode as Mode
from ._core.backend import backend_dataclass as backend_dataclass
from ._core.backend import check_mode as check_mode
from ._core.backend_impl import BackendImpl as BackendImpl
from ._core.contexts import Cache as Cache
from ._core.contexts import Constant as Constant
from ._core.contexts import check_contexts as check_contexts
from ._core.errors import AnyDiffError as AnyDiffError
from ._core.errors import BackendNotInstalledError as BackendNotInstalledError
from ._core.errors import FunctionNotDifferentiableError as FunctionNotDifferentiableError
from ._core.errors import PreparationMismatchError as PreparationMismatchError
from ._core.errors import UnsupportedError as UnsupportedError
from ._core.errors import numpy_operand_error as numpy_operand_error
from ._core.errors import raised_by_operator as raised_by_operator
from ._core.kernels import Kernels as Kernels
from ._core.kernels import OutputSpec as OutputSpec
from ._core.kernels import SparseLayout as SparseLayout
from ._core.kernels import basis as basis
from ._core.kernels import basis_rows as basis_rows
from ._core.kernels import device as device
from ._core.kernels import flat_size as flat_size
from ._core.kernels import jacobian_batch as jacobian_batch
from ._core.kernels import stack as stack
from ._core.kernels import tangent_batch as tangent_batch
from ._core.kernels import unstack as unstack
from ._core.kernels import unstacked as unstacked
from ._core.kernels import use_forward as use_forward
from ._core.operator import Operator as Operator
from ._core.prep import Prep as Prep
from ._core.registry import implementation as implementation
from ._core.registry import register_backend as register_backend
from ._core.registry import register_bridge_caller as register_bridge_caller
from ._core.registry import registered_backends as registered_backends
from ._core.trees import register_foreign_nodes as register_foreign_nodes
from ._core.trees import register_leaf_advice as register_leaf_advice
from ._core.trees import register_split as register_split
from ._core.trees import register_tree_compiler as register_tree_compiler
from ._core.trees import register_tree_kernels as register_tree_kernels
from .first_order.derivative import DERIVATIVE as DERIVATIVE
from .first_order.gradient import GRADIENT as GRADIENT
from .first_order.jacobian import JACOBIAN as JACOBIAN
from .first_order.pullback import PULLBACK as PULLBACK
from .first_order.pushforward import PUSHFORWARD as PUSHFORWARD
from .second_order.hessian import HESSIAN as HESSIAN
from .second_order.hvp import HVP as HVP
from .second_order.hvp import products as hvp_products
from .second_order.second_derivative import SECOND_DERIVATIVE as SECOND_DERIVATIVE

__all__ = [
    "DERIVATIVE",
    "GRADIENT",
    "HESSIAN",
    "HVP",
    "JACOBIAN",
    "PULLBACK",
    "PUSHFORWARD",
    "SECOND_DERIVATIVE",
    "AbstractBackend",
    "AnyDiffError",
    "ArrayKind",
    "ArrayLike",
    "BackendImpl",
    "BackendNotInstalledError",
    "Cache",
    "Constant",
    "FunctionNotDifferentiableError",
    "Kernels",
    "Mode",
    "Operator",
    "OutputSpec",
    "Prep",
    "PreparationMismatchError",
    "SparseLayout",
    "Switch",
    "UnsupportedError",
    "array_kind",
    "array_kinds",
    "backend_dataclass",
    "basis",
    "basis_rows",
    "check_contexts",
    "check_mode",
    "converter",
    "csr_rows",
    "cumulative",
    "device",
    "dtype_name",
    "flat_size",
    "hvp_products",
    "implementation",
    "itemsize",
    "jacobian_batch",
    "namespace",
    "numpy_operand_error",
    "raised_by_operator",
    "register_array_kind",
    "register_backend",
    "register_bridge_caller",
    "register_foreign_nodes",
    "register_leaf_advice",
    "register_split",
    "register_tree_compiler",
    "register_tree_kernels",
    "register_namespace",
    "registered_backends",
    "sparse_builder",
    "stack",
    "tangent_batch",
    "unstack",
    "unstacked",
    "use_forward",
]
