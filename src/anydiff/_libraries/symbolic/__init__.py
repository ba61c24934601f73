"""What the symbolic libraries (SymPy, CasADi, PyTensor) share: tracing `f` onto symbolic arrays,
differentiating the expressions, compiling them at prepare time. Registers no backend."""
