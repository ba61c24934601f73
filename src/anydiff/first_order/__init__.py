"""First-order operators: pushforward, pullback, derivative, gradient, jacobian."""
