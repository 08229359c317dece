"""Revisions of the incident store's schema, one file each (``0001_...``, ``0002_...``)."""
