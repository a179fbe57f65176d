"""``mlpq ui``: a web app over the ledger, read through ``Client``."""
