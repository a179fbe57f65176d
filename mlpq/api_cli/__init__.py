"""The Python API (``api``) and the click CLI (``cli``) on top of it."""
