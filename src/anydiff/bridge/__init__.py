"""`DifferentiateWith`: one library's function inside another library's program, with derivatives.

`differentiate_with.py` holds the wrapper and finds the caller registered for the library of
`x` (`anydiff.extend.register_bridge_caller`); `nodes.py` holds the tower of derivative nodes
(the function, its pushforwards, pullbacks, Hessian-vector products, ...) that every caller's
rules evaluate through the substitute backend.
"""

from .differentiate_with import DifferentiateWith as DifferentiateWith
from .differentiate_with import callable_from as callable_from

__all__ = ["DifferentiateWith", "callable_from"]
