"""The base generator: flow matching, fixed-NFE ODE solving, networks, training and inversion."""
