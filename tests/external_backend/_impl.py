"""`AutoTorchFunc`'s implementation: the primitives `jvp` and `vjp`, one native route, one error hook.

Every operator without a native route (pushforward, pullback, jacobian, hvp, hessian, ...) takes
its generic route, written on the two primitives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.func

from anydiff.extend import GRADIENT, BackendImpl, FunctionNotDifferentiableError, Kernels, OutputSpec, array_kinds


class TorchFuncImpl(BackendImpl):
    # anydiff converts `x`, tangents and contexts to torch tensors, and the results back
    kind = array_kinds()["torch"]

    # -- the primitives: stacked tangents in, stacked products out ------------------------------

    def jvp(self, f: Callable[..., Any], x: Any, tangents: Any, contexts: tuple) -> tuple[Any, Any]:
        def at(t: Any) -> Any:
            return torch.func.jvp(lambda x: f(x, *contexts), (x,), (t,))[1]

        return f(x, *contexts), torch.func.vmap(at)(tangents)

    def vjp(self, f: Callable[..., Any], x: Any, contexts: tuple) -> tuple[Any, Callable[[Any], Any]]:
        y, pull = torch.func.vjp(lambda x: f(x, *contexts), x)
        return y, torch.func.vmap(lambda u: pull(u)[0])

    # -- an optional native route: the library's own gradient ----------------------------------

    def native_gradient(self, f: Any, x: Any, tangents: None, contexts: tuple, spec: OutputSpec) -> Kernels:
        grad_and_value = torch.func.grad_and_value(f)  # differentiates the first argument, `x`

        def gradient(x: Any, *contexts: Any) -> Any:
            return grad_and_value(x, *contexts)[0]

        def value_and_gradient(x: Any, *contexts: Any) -> tuple[Any, Any]:
            g, y = grad_and_value(x, *contexts)
            return y, g

        return Kernels(gradient, value_and_gradient, {"mode": "reverse", "route": "torch.func.grad_and_value"})

    native = {GRADIENT: native_gradient}

    # -- an optional hook: explain the library's errors ----------------------------------------

    def translate_error(self, exc: Exception, operator: str) -> Exception | None:
        message = str(exc)
        if isinstance(exc, RuntimeError) and ("numpy()" in message or ".item()" in message):
            return FunctionNotDifferentiableError(
                f"{operator}: `f` took a value out of a tensor that `torch.func` differentiates "
                f"({message.splitlines()[0]}). Write `f` with `xp = ad.namespace(x)` and `xp.` "
                "functions, without `.numpy()`, `.item()` or `float(...)`."
            )
        return None
