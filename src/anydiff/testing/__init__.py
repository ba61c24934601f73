"""`anydiff.testing`: scenarios with known derivatives, a correctness test and a benchmark.

Test a backend, or your own function, against every operator::

    import anydiff as ad
    from anydiff.testing import default_scenarios, test_differentiation

    test_differentiation([ad.AutoJAX(), ad.AutoTorch()], default_scenarios())

`test_differentiation` raises one `AssertionError` with a table of everything that went wrong;
`benchmark_differentiation` times the same pairs and returns records that print as a table and
export to CSV and JSON. The command line `anydiff compare` is built on both.
"""

from .benchmark import BenchmarkRecord as BenchmarkRecord
from .benchmark import Records as Records
from .benchmark import benchmark_differentiation as benchmark_differentiation
from .correctness import Outcome as Outcome
from .correctness import test_differentiation as test_differentiation
from .scenarios import OPERATORS as OPERATORS
from .scenarios import Scenario as Scenario
from .scenarios import default_scenarios as default_scenarios
from .scenarios import sparse_scenarios as sparse_scenarios
from .scenarios import tree_scenarios as tree_scenarios
from .scenarios import with_cache as with_cache
from .scenarios import with_closure as with_closure
from .scenarios import with_constant as with_constant
from .scenarios import with_dtype as with_dtype
from .scenarios import with_kind as with_kind
from .scenarios import with_output_buffer as with_output_buffer

__all__ = [
    "OPERATORS",
    "BenchmarkRecord",
    "Outcome",
    "Records",
    "Scenario",
    "benchmark_differentiation",
    "default_scenarios",
    "sparse_scenarios",
    "test_differentiation",
    "tree_scenarios",
    "with_cache",
    "with_closure",
    "with_constant",
    "with_dtype",
    "with_kind",
    "with_output_buffer",
]
