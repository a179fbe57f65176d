"""mlpq: a distributed job service for small PyTorch experiments."""

__version__ = "0.1.0"
