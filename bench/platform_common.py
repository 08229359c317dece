"""What the platform benchmarks share: the test suite's local servers, the machine's load, the plots.

The benchmarks talk to Slack and to the LLM exactly as production does, through the official
clients, pointed at the same local servers the tests use (``tests/fake_slack.py``,
``tests/fake_anthropic.py``, and the small incident code location ``tests/incident_location.py``).
They are imported from ``tests/`` rather than copied, so there is one of each.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"


def tests_module(name: str):
    """A module of ``tests/`` (not a package: pytest puts the folder on the path, and so do we)."""
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    return importlib.import_module(name)


def load_average() -> str:
    """The 1-minute load average and the core count, to state next to absolute times."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def pyplot():
    """matplotlib's pyplot without a display, or None when the ``bench`` extra is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


NO_PLOT = "No plot: matplotlib is not installed (`pip install -c constraints.txt -e '.[bench]'`)."
