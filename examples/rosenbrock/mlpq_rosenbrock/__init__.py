"""An example mlpq job kind from outside mlpq: Rosenbrock's function minimised with a torch.optim optimiser."""
