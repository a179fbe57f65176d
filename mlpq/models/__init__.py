"""The ML side of mlpq: job specifications and the code that runs them.

Nothing here knows about queues or databases. Importing this package (and
``specs``, ``registry``, ``context``) does not import torch; the runners do.
"""
