"""The machinery behind `ad.DifferentiateWith` (see `anydiff.bridge.differentiate_with`).

`nodes.py` holds what does not depend on the calling library: the tower of functions the
substitute backend computes (the wrapped `f`, its pushforward, pullback, their derivatives, ...)
and the rules that say which node computes the derivative of which. Each calling library has one
small module that registers those rules with its own AD system: `jax.py` (a JAX primitive),
`torch.py` (a `torch.autograd.Function`), `tensorflow.py` (a `tf.custom_gradient` op) and
`autograd.py` (an autograd primitive). A caller module is imported only when an array of its
library reaches a `DifferentiateWith` function. `pair.py` builds cross-library
`SecondOrder(outer, inner)` pairs on the bridge.
"""
