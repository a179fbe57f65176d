"""Imported by Python at start-up when this folder is on PYTHONPATH: adds the test-only ``fault`` job kind."""

from tests.jobkinds.fault_kind import register

register()
