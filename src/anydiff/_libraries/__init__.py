"""The built-in libraries, one folder each; importing this package registers them all.

Adding a library is one folder here and one line below. The lines keep this order, which is the
order of `ad.available_backends()`: finite differences first, the reference of every comparison.
"""

# ruff: isort: skip_file
from . import finitediff as finitediff
from . import jax as jax
from . import torch as torch
from . import mlx as mlx
from . import tinygrad as tinygrad
from . import sympy as sympy
from . import casadi as casadi
from . import pytensor as pytensor
from . import tensorflow as tensorflow
from . import autograd as autograd
from . import numdifftools as numdifftools
from . import mygrad as mygrad
from . import mindspore as mindspore  # before Paddle: see mindspore/load.py (libdnnl)
from . import paddle as paddle
