"""A bad day end to end, on real processes, as a deployment lives it.

The test starts everything itself: a throwaway PostgreSQL database for Dagster's storage and the
incident store (the production profile), a local server speaking the Slack Web API, and
`bin/cei-services` (dagster-daemon and dagster-webserver) with the incident sensor ticking every
2 s. The landing day carries a blocking fault: one EOD mark 100 times too high.

An operator types `cei run --date D --queue`: the run goes through the daemon's run queue, the
blocking checks on the EOD marks stop it before the P&L, and the command says which check failed.
Then, with nobody calling anything: the daemon's incident sensor opens an incident and the owning
team's Slack channel gets the alert. The webserver's GraphQL API, which the UI draws from, shows
the lineage from the landing file to the P&L, the failed blocking check on its asset for that
date, and no P&L for the date. Ctrl-C stops every service cleanly.

The deployment starts once for the file and the Ctrl-C test stops it; a test that runs after that
one (in another order, or picked on the command line) finds the services started again on the same
instance, so no test depends on the order the tests run in.
"""

import contextlib
import datetime as dt
import json
import re
import subprocess
import time

import pytest
from cei_cli import CEI
from fake_slack import FakeSlack
from services import assert_stopped_cleanly, cei_services, clean_env, graphql
from throwaway_postgres import throwaway_database

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 10, 1)
FAULT = "eod_mark_decimal_shift"  # blocking: a held security's mark is 100 times too high
FAULTY_ASSET = ["landing", "eod_prices"]
FAILED_CHECK = "eod_matches_last_quote"
TEAM_CHANNEL = "#cei-market-data"  # routing.yaml: market-data owns the EOD marks
TOKEN = "xoxb-cei-end-to-end"
# What the suite's own environment may hold that would change where alerts and reports go.
_NOT_INHERITED = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CEI_SLACK_WEBHOOK_URL", "CEI_NOTIFICATIONS_FILE",
                  "CEI_ROUTING_FILE", "CEI_ONCALL_FILE", "CEI_DAGSTER_UI_URL")


def wait_for(what: str, probe, timeout: float = 180, every: float = 1.0):
    """``probe()``'s first true answer; fails with ``what`` when it never comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = probe()
        if answer:
            return answer
        time.sleep(every)
    pytest.fail(f"{what}: not seen within {timeout:.0f} s")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    root = tmp_path_factory.mktemp("end_to_end")
    home, feeds = root / "home", root / "feeds"
    generated = subprocess.run(
        [CEI, "generate", str(feeds), "--start", DAY.isoformat(), "--days", "1", "--seed", "8", "--fault", FAULT,
         "--symbols", "6", "--quotes-per-symbol", "30", "--orders-per-day", "12"],
        env=clean_env(home), capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stderr
    # The security whose mark the generator shifted.
    symbol = json.loads((feeds / "_generator.json").read_text())["fault"]["target"]["symbol"]

    slack = FakeSlack(token=TOKEN).start()
    try:
        with throwaway_database() as postgres, contextlib.ExitStack() as running:
            env = clean_env(home, **postgres, CEI_PG_PASSWORD="", CEI_SLACK_BOT_TOKEN=TOKEN,
                            CEI_SLACK_API_URL=slack.api_url, CEI_INCIDENT_SENSOR_INTERVAL="2")
            for name in _NOT_INHERITED:
                env.pop(name, None)
            # The services do not know the feeds' folder: `--landing` must travel with the run.
            services = running.enter_context(cei_services(env))
            run = subprocess.run([CEI, "run", "--date", DAY.isoformat(), "--queue", "--landing", str(feeds)],
                                 env=env, capture_output=True, text=True, timeout=600)
            # Services started again (see the module's docstring) are stopped with the first ones.
            yield {"home": home, "env": env, "slack": slack, "services": services, "run": run, "symbol": symbol,
                   "start_services": lambda: running.enter_context(cei_services(env))}
    finally:
        slack.stop()


@pytest.fixture
def deployment(deployed):
    """The deployment with its services running, started again if the Ctrl-C test stopped them."""
    if deployed["services"].returncode is not None:
        deployed["services"] = deployed["start_services"]()
    return deployed


@pytest.fixture(scope="module")
def stopped_services(deployed):
    """The deployment's services after a Ctrl-C: their output and exit code, their sessions."""
    services = deployed["services"]
    services.stop()
    return services


# --------------------------------------------------------------------------- the operator's command


def test_cei_run_queue_goes_through_the_daemons_queue_and_names_the_failed_check(deployment):
    run, home = deployment["run"], deployment["home"]
    assert run.returncode == 1, run.stdout + run.stderr
    queued = re.search(r"^queued run ([0-9a-f-]{36}); waiting for the daemon$", run.stdout, re.MULTILINE)
    assert queued, run.stdout
    named = rf"^  - check landing/eod_prices / {FAILED_CHECK}: .*{deployment['symbol']}.* \(failed\)$"
    assert re.search(named, run.stdout, re.MULTILINE), run.stdout
    assert re.search(r"^  FAIL eod_prices_rules$", run.stdout, re.MULTILINE), f"each step is printed as it finishes:\n{run.stdout}"

    events = graphql(deployment["services"].url, RUN_EVENTS, {"id": queued.group(1)})["runOrError"]
    kinds = [event["__typename"] for event in events["eventConnection"]["events"]]
    assert events["status"] == "FAILURE"
    assert "RunEnqueuedEvent" in kinds and "RunStartEvent" in kinds, kinds
    assert kinds.index("RunEnqueuedEvent") < kinds.index("RunStartingEvent") < kinds.index("RunStartEvent"), kinds
    assert re.search(r"QueuedRunCoordinatorDaemon.*Launched 1 run", (home / "logs" / "daemon.log").read_text())


RUN_EVENTS = """
query Run($id: ID!) { runOrError(runId: $id) { ... on Run {
  status eventConnection(afterCursor: null) { events { __typename } } } } }
"""


def test_a_queued_run_that_no_daemon_serves_says_so_and_how_to_start_it_instead_of_hanging(tmp_path):
    home = tmp_path / "home"
    env = clean_env(home)
    (home / "landing").mkdir(parents=True)  # the run never starts: its files are not read
    run = subprocess.run([CEI, "run", "--date", DAY.isoformat(), "--queue", "--wait-timeout", "1"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "queued run" in run.stdout
    assert "dagster-daemon is not running" in run.stdout and "make services" in run.stdout, run.stdout


# --------------------------------------------------------------------------- what the daemon does on its own


def _incidents(deployment) -> list[dict]:
    listed = subprocess.run([CEI, "incidents", "list", "--json"], env=deployment["env"], capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def test_the_daemons_incident_sensor_opens_an_incident_and_the_owning_team_gets_a_slack_alert(deployment):
    check = f"{'/'.join(FAULTY_ASSET)}/{FAILED_CHECK}"

    def opened():
        return [i for i in _incidents(deployment) if check in i["checks"]]

    (incident,) = wait_for("an incident for the failed check, opened by the daemon's sensor", opened, every=2)
    assert incident["severity"] == "P1" and incident["team"] == "market-data"
    assert "daily_pnl" in incident["halted"]
    daemon_log = (deployment["home"] / "logs" / "daemon.log").read_text()
    assert re.search(rf"incident_sensor - .*opened incident\(s\) (\d+, )*{incident['id']}\b", daemon_log), \
        "the daemon's sensor, not a command, opened it"

    slack = deployment["slack"]

    def alerted():
        return [call for call in slack.calls("chat.postMessage")
                if call.body.get("channel") == TEAM_CHANNEL and FAILED_CHECK in call.block_text()]

    (alert,) = wait_for(f"a chat.postMessage to {TEAM_CHANNEL} naming {FAILED_CHECK}", alerted)
    assert alert.headers["Authorization"] == f"Bearer {TOKEN}"
    assert f"Incident #{incident['id']}" in alert.block_text()
    assert DAY.isoformat() in alert.block_text()


# --------------------------------------------------------------------------- what the UI shows


ASSET_NODES = "{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }"

CHECK_ON_ASSET = """
query Check($asset: AssetKeyInput!, $check: String!, $partition: String!) {
  assetNodeOrError(assetKey: $asset) { ... on AssetNode {
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }
  assetCheckExecutions(assetKey: $asset, checkName: $check, partition: $partition, limit: 1) {
    status partition evaluation { success severity description } }
}
"""

MATERIALIZATIONS = """
query Materializations($asset: AssetKeyInput!, $partition: String!) {
  assetNodeOrError(assetKey: $asset) { ... on AssetNode { assetMaterializations(partitions: [$partition]) { partition } } } }
"""


def test_the_ui_shows_the_lineage_from_the_faulty_landing_file_through_staging_to_the_pnl(deployment):
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(deployment["services"].url, ASSET_NODES)["assetNodes"]}
    upstream_of = {key: {"/".join(d["path"]) for d in node["dependencyKeys"]} for key, node in nodes.items()}
    closure, frontier = set(), ["daily_pnl"]
    while frontier:
        for parent in upstream_of[frontier.pop()] - closure:
            closure.add(parent)
            frontier.append(parent)
    assert "landing/eod_prices" in closure
    # landing -> staging -> books, each in its group.
    assert "landing/eod_prices" in upstream_of["stg_eod_prices"] and nodes["stg_eod_prices"]["groupName"] == "staging"
    assert "stg_eod_prices" in upstream_of["market_values"] and nodes["market_values"]["groupName"] == "books"
    assert "market_values" in upstream_of["daily_pnl"]


def test_the_ui_shows_the_blocking_check_failed_on_its_asset_for_the_date_and_no_pnl_for_it(deployment):
    url, day = deployment["services"].url, DAY.isoformat()
    shown = graphql(url, CHECK_ON_ASSET, {"asset": {"path": FAULTY_ASSET}, "check": FAILED_CHECK, "partition": day})
    checks = {c["name"]: c for c in shown["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    assert checks[FAILED_CHECK]["blocking"] is True
    (execution,) = shown["assetCheckExecutions"]
    assert execution["status"] == "FAILED" and execution["partition"] == day
    assert execution["evaluation"]["success"] is False and execution["evaluation"]["severity"] == "ERROR"
    assert deployment["symbol"] in execution["evaluation"]["description"]

    for halted in ("stg_eod_prices", "daily_pnl"):
        built = graphql(url, MATERIALIZATIONS, {"asset": {"path": [halted]}, "partition": day})
        assert built["assetNodeOrError"]["assetMaterializations"] == [], f"{halted} must not be built for {day}"
    # The file itself loaded: the check stopped what reads it, not the landing step.
    loaded = graphql(url, MATERIALIZATIONS, {"asset": {"path": FAULTY_ASSET}, "partition": day})
    assert loaded["assetNodeOrError"]["assetMaterializations"] == [{"partition": day}]


# --------------------------------------------------------------------------- stopping


def test_ctrl_c_stops_the_daemon_and_the_webserver_cleanly(stopped_services):
    assert_stopped_cleanly(stopped_services)
