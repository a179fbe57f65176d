"""Celery workers pinned to one device, and the glue that runs job code against the ledger."""
