"""Second-order operators: second_derivative, hvp, hessian, and the `SecondOrder` pair."""
