"""Benchmarks of the platform: synthetic data at scale and the harnesses that time it.

Run ``.venv/bin/python -m bench.validation`` for the validation benchmark (issue 3); its
results are written to ``docs/benchmarks.md``.
"""
