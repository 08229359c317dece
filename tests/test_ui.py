"""What a user sees in the Dagster UI: the lineage and the checks, read from the webserver's
GraphQL API and photographed with headless Chromium.

One trading date is generated and run with `cei run`; `bin/cei-services --no-daemon` starts
dagster-webserver on the project. The GraphQL API must show the lineage from the landing
files through staging to the books, and the checks (blocking or not, and their results).
Chromium (Debian's `chromium`, driven over the DevTools protocol on a pipe) opens the asset
graph and an asset's checks tab once the JavaScript app has rendered them.

The screenshots are written under the test's folder; with CEI_UPDATE_SCREENSHOTS=1 they also
replace docs/screenshots/*.png:

    CEI_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_ui.py
"""

import base64
import datetime as dt
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cei_cli import cei
from services import cei_services, graphql

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
DATE = dt.date(2026, 10, 1)
pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- Chromium


def chromium_binary() -> str:
    """Debian's chromium; installed with apt-get when missing and we may (CI runs as root)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    reason = "chromium is not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
        found = shutil.which("chromium")
        if found:
            return found
        reason += f" and `apt-get install chromium` failed: {(done.stderr or done.stdout).strip()[-300:]}"
    else:
        reason += " and cannot be installed here (needs root and apt-get)"
    pytest.skip(reason)


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out)."""

    # Nothing but the page we open: no update checks, sync, metrics or safe-browsing calls.
    QUIET = ["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-default-apps", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
             "--metrics-recording-only", "--no-default-browser-check", "--hide-scrollbars"]

    def __init__(self, binary: str, width: int = 1600, height: int = 1000):
        commands_in, self._commands = os.pipe()
        self._answers, answers_out = os.pipe()

        def give_chromium_the_pipe():
            os.dup2(commands_in, 100)
            os.dup2(answers_out, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        args = [binary, "--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
                f"--window-size={width},{height}", *self.QUIET, "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses root without it
        self.process = subprocess.Popen(args, preexec_fn=give_chromium_the_pipe, close_fds=False,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_in)
        os.close(answers_out)
        self._pending = b""
        self._next_id = 0
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, page=True)

    def send(self, method: str, params: dict | None = None, page: bool = False) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._pending:
                chunk = os.read(self._answers, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed its DevTools pipe")
                self._pending += chunk
            raw, self._pending = self._pending.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url}, page=True)

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)["result"].get("value")

    def wait_for_text(self, *texts: str, timeout: float = 90) -> None:
        """Until the app has rendered every text (the page is a JavaScript app: load is not enough)."""
        probe = " && ".join(f"document.body.innerText.includes({json.dumps(t)})" for t in texts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(f"!!document.body && {probe}"):
                return
            time.sleep(0.5)
        shown = self.evaluate("document.body ? document.body.innerText.slice(0, 500) : ''")
        raise AssertionError(f"the page never showed {texts}; it shows: {shown!r}")

    def wait_until_gone(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.evaluate(f"document.body.innerText.includes({json.dumps(text)})"):
                return
            time.sleep(0.5)
        raise AssertionError(f"the page still shows {text!r} after {timeout:.0f}s")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"}, page=True)["data"]))
        return path

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._commands)
        os.close(self._answers)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- the webserver


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """The webserver on a CEI_HOME holding one generated, run trading date."""
    root = tmp_path_factory.mktemp("ui")
    home, landing = root / "home", root / "home" / "landing"
    generated = cei("generate", str(landing), "--start", DATE.isoformat(), "--days", "1", home=home)
    assert generated.returncode == 0, generated.stderr
    run = cei("run", "--date", DATE.isoformat(), home=home, landing=landing)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEI_PG_", "DAGSTER_HOME", "CEI_PROFILE"))}
    env.update(CEI_HOME=str(home), CEI_LANDING_DIR=str(landing))
    with cei_services(env, "--no-daemon") as services:
        yield {"url": services.url, "root": root}


ASSET_NODES = """
{ assetNodes {
    assetKey { path } groupName dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks {
      name blocking executionForLatestMaterialization { status evaluation { success } } } } }
} }
"""


@pytest.fixture(scope="module")
def asset_nodes(webserver):
    nodes = graphql(webserver["url"], ASSET_NODES)["assetNodes"]
    return {"/".join(n["assetKey"]["path"]): n for n in nodes}


def deps(nodes, key) -> set[str]:
    return {"/".join(d["path"]) for d in nodes[key]["dependencyKeys"]}


# --------------------------------------------------------------------------- what the UI shows


def test_the_ui_shows_one_lineage_from_the_landing_files_through_staging_to_the_books(asset_nodes):
    groups = {key: node["groupName"] for key, node in asset_nodes.items()}
    landing = {k for k, g in groups.items() if g == "landing"}
    staging = {k for k, g in groups.items() if g == "staging"}
    assert {"landing/executions", "landing/quotes", "landing/broker_positions"} <= landing
    # Every staging model reads its landing file.
    for model in staging:
        assert f"landing/{model.removeprefix('stg_')}" in deps(asset_nodes, model), model
    # The books are built from staging, and P&L from the books.
    assert groups["positions"] == "books" and "stg_executions" in deps(asset_nodes, "positions")
    assert {"positions", "market_values"} <= deps(asset_nodes, "daily_pnl")


def test_the_ui_shows_each_assets_checks_with_their_blocking_flag_and_result(asset_nodes):
    checks = {c["name"]: c for c in asset_nodes["landing/quotes"]["assetChecksOrError"]["checks"]}
    assert checks["landing_file"]["blocking"] is True
    assert checks["crossed_quotes"]["blocking"] is False, "quote quality warns, it does not block the books"
    latest = checks["landing_file"]["executionForLatestMaterialization"]
    assert latest["status"] == "SUCCEEDED" and latest["evaluation"]["success"] is True
    books_checks = {c["name"] for c in asset_nodes["daily_pnl"]["assetChecksOrError"]["checks"]}
    assert any(name.startswith("soda_") for name in books_checks), books_checks


SCORECARD_METADATA = """
{ assetNodeOrError(assetKey: {path: ["data_quality_scorecard"]}) { ... on AssetNode {
    assetMaterializations(limit: 1) { partition metadataEntries { label
      ... on IntMetadataEntry { intValue } ... on FloatMetadataEntry { floatValue } } } } } }
"""
# The scorecard job run as the daemon runs it: reconstructed from the code location, on the
# instance the webserver shows (its schedule fires the morning after; the test cannot wait).
RUN_SCORECARD = """
import sys
from cei_assets import settings
settings.configure_environment()
import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
repository = ReconstructableRepository.for_module("cei_assets.definitions", "defs")
result = dg.execute_job(repository.get_reconstructable_job("daily_scorecard"), instance=dg.DagsterInstance.get(),
                        tags={"dagster/partition": sys.argv[1]}, raise_on_error=False)
sys.exit(0 if result.success else 1)
"""


def test_the_scorecard_materializes_and_its_figures_are_on_the_asset_in_the_ui(webserver):
    import sys

    home = webserver["root"] / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CEI_PG_", "DAGSTER_HOME", "CEI_PROFILE"))}
    env.update(CEI_HOME=str(home), CEI_LANDING_DIR=str(home / "landing"))
    done = subprocess.run([sys.executable, "-c", RUN_SCORECARD, DATE.isoformat()], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    (latest,) = graphql(webserver["url"], SCORECARD_METADATA)["assetNodeOrError"]["assetMaterializations"]
    assert latest["partition"] == DATE.isoformat()
    figures = {e["label"]: e.get("intValue", e.get("floatValue")) for e in latest["metadataEntries"]}
    # The clean date's figures, as numbers the UI plots over time.
    assert figures["checks_run"] > 100 and figures["checks_failed"] == 0
    assert figures["checks_passing_pct"] == 100.0
    assert figures["open_incidents"] == 0
    assert {"data_quality_score", "analyst_hours_saved", "incidents_opened"} <= set(figures)


def test_screenshots_of_the_asset_graph_and_a_checks_tab(webserver):
    browser = Chromium(chromium_binary())
    shots = webserver["root"] / "screenshots"
    shots.mkdir()
    try:
        browser.open(f"{webserver['url']}/asset-groups")
        browser.wait_for_text("Global asset lineage", "landing", "staging", "books")
        browser.wait_until_gone("fetching statuses")  # each group then shows what is materialized
        time.sleep(2)  # the graph animates into place
        graph = browser.screenshot(shots / "asset-graph.png")

        browser.open(f"{webserver['url']}/assets/landing/quotes?view=checks")
        browser.wait_for_text("landing_file", "crossed_quotes", "This is a blocking asset check", "Passed")
        time.sleep(1)
        checks = browser.screenshot(shots / "checks-landing-quotes.png")
    finally:
        browser.close()

    for shot in (graph, checks):
        assert png_size(shot) == (1600, 1000)
        # A rendered page, not a blank or an error page: those compress to a few kilobytes.
        assert shot.stat().st_size > 40_000, shot
    if os.environ.get("CEI_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in (graph, checks):
            shutil.copy(shot, SCREENSHOTS / shot.name)
