"""What every benchmark's report shares: its section of ``docs/benchmarks.md`` and the machine.

Each benchmark owns one section of the file, between an HTML comment pair such as
``<!-- validation-bench:start -->`` and ``<!-- validation-bench:end -->``; a rerun replaces
its own section and leaves the others as they are. Absolute times only mean something with
the machine they came from, so every section states it (``machine_info``).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

_MARKER = re.compile(r"<!-- ([\w.-]+):start -->")

# The libraries whose versions move the benchmarks' figures.
PACKAGES = ("duckdb", "pandas", "numpy", "pyarrow", "great_expectations", "pandera", "matplotlib")


def section_markers(section: str) -> tuple[str, str]:
    """The start and end markers of a section: it opens with its start marker."""
    match = _MARKER.match(section.lstrip())
    if match is None:
        raise ValueError("a benchmark section must open with its marker, e.g. <!-- name:start -->")
    name = match.group(1)
    end = f"<!-- {name}:end -->"
    if end not in section:
        raise ValueError(f"the section opened by {match.group(0)} does not end with {end}")
    return match.group(0), end


def write_section(path: Path, section: str) -> None:
    """Put the section between its markers in ``path``, or append it; the rest of the file stays."""
    start_marker, end_marker = section_markers(section)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        start, end = text.find(start_marker), text.find(end_marker)
        if start != -1 and end != -1 and end > start:
            text = text[:start] + section.rstrip("\n") + text[end + len(end_marker):]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        text = "# Benchmarks\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def machine_info(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """CPU, core count, RAM, OS, Python and the versions of ``packages`` on this machine."""
    from importlib import metadata

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kib / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": ram, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", **versions}
