"""Benchmarks of the platform: synthetic data at scale and the harnesses that time it.

``.venv/bin/python -m bench`` runs every benchmark in turn (``bench/__main__.py``); each writes
its own section of ``docs/benchmarks.md``.
"""
