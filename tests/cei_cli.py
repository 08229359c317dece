"""Running the `cei` command line as a user would: a subprocess with its own CEI_HOME."""

import os
import subprocess
import sys
from pathlib import Path

CEI = str(Path(sys.executable).with_name("cei"))


def cei(*args: str, home: Path, landing: Path | None = None, extra_env: dict | None = None, timeout: int = 900):
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "CEI_WAREHOUSE", "CEI_WAREHOUSE_URL", "CEI_LANDING_DIR")}
    env["CEI_HOME"] = str(home)
    if landing is not None:
        env["CEI_LANDING_DIR"] = str(landing)
    env.update(extra_env or {})
    return subprocess.run([CEI, *args], env=env, capture_output=True, text=True, timeout=timeout)
