"""The ML side of mlpq: the code that runs each job kind (specs and declarations live in ``mlpq.kinds``).

Nothing here knows about queues or databases. Importing this package (and
``context``) does not import torch; the runners do.
"""
