"""Sensors of the CEI code location.

- ``check_failures``: the incident sensor (failed checks and failed runs become incidents)
- ``outcomes``: what the Dagster instance recorded since a cursor, read in one query per page
"""
