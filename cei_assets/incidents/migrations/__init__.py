"""Alembic migrations of the incident store; run in code by ``cei_assets.incidents.db``."""
