"""The daily digest: once per schedule tick, the day's counters, a section per team, open
incidents by severity, failing sample rows; a quiet day in one line.

The schedule is evaluated as the daemon evaluates it (build_schedule_context on a real
instance) and the run it requests is executed from the code location; the digest goes through
slack_sdk to the local Slack server (tests/fake_slack.py).
"""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from cei_cli import cei
from fake_slack import FakeSlack
from scorecard_location import execute_in_location, run_daily, write_breaks

from cei_assets.incidents.facts import Failure
from cei_assets.incidents.store import IncidentStore, SourcedFailure
from cei_assets.notifications.digest import daily_digest_schedule
from cei_assets.scorecard import activity_window

TOKEN = "xoxb-cei-test"
NEW_YORK = ZoneInfo("America/New_York")
THURSDAY, FRIDAY, MONDAY = "2026-10-01", "2026-10-02", "2026-10-05"


@pytest.fixture
def slack(cei_home, monkeypatch):
    server = FakeSlack(token=TOKEN).start()
    monkeypatch.setenv("CEI_SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("CEI_SLACK_API_URL", server.api_url)
    for name in ("CEI_NOTIFICATIONS_FILE", "CEI_SLACK_WEBHOOK_URL", "CEI_INCIDENTS_URL"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.stop()


@pytest.fixture
def instance(cei_home, monkeypatch):
    monkeypatch.setenv("CEI_WAREHOUSE", str(cei_home / "warehouse.duckdb"))
    (cei_home / "dagster").mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(cei_home / "dagster")) as instance:
        yield instance


@pytest.fixture
def store(cei_home) -> IncidentStore:
    return IncidentStore(f"sqlite:///{cei_home / 'incidents.db'}")


def add_incident(store, *, opened_at, severity, team, title, check="prices_positive", detected_after=120.0,
                 rows=None, resolved_after=None, acknowledged_by=None):
    failure = Failure(kind="check", run_id="run-earlier", partition=THURSDAY, asset_key="eod_prices",
                      check_name=check, blocking=True, warn_only=False, description=f"{check} failed",
                      metadata={"failing_count": 2, "sample_failing_rows": rows} if rows else {},
                      evaluated_at=opened_at - detected_after)
    incident_id = store.open_incident([SourcedFailure(failure, f"check:{title}")], now=opened_at)
    store.set_content(incident_id, title=title, signature=check, severity=severity, team=team,
                      impact=None, routing=None, similar=None, report=None)
    if acknowledged_by:
        store.acknowledge(incident_id, acknowledged_by, now=opened_at + 60)
    if resolved_after is not None:
        store.resolve(incident_id, "ana.lima", "reloaded", now=opened_at + resolved_after)
    return incident_id


def tick(instance, when: dt.datetime):
    """One evaluation of the digest schedule, and the run it asks for, as the daemon does both."""
    request = daily_digest_schedule(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    if isinstance(request, dg.SkipReason):
        return request
    result = execute_in_location("daily_digest", instance, run_config=request.run_config, tags=request.tags)
    assert result.success
    return request


def digests(slack):
    return [r for r in slack.calls("chat.postMessage") if r.body["channel"] == "#cei-digest"]


def test_a_digest_arrives_once_per_schedule_tick_with_the_right_counters(slack, instance, store, cei_home):
    from scorecard_location import FAILING_ROWS

    run_daily(instance, THURSDAY, "bad_prices")  # 2 checks run, the blocking price check fails
    start, _ = activity_window(dt.date.fromisoformat(THURSDAY))
    p1 = add_incident(store, opened_at=start + 19 * 3600, severity="P1", team="market-data",
                      title="Zero EOD marks", detected_after=180, rows=FAILING_ROWS)
    add_incident(store, opened_at=start + 10 * 3600, severity="P3", team="fund-operations",
                 title="Stale marks", check="prices_fresh", detected_after=60, resolved_after=3600)
    p2 = add_incident(store, opened_at=start - 86400, severity="P2", team="fund-operations",
                      title="Cash break since Wednesday", acknowledged_by="jonas.berg")
    write_breaks(cei_home / "warehouse.duckdb", THURSDAY,
                 [("ACC-US", True, 100.0), ("ACC-EU", True, -50.0), ("ACC-US", False, None)])

    friday_morning = dt.datetime(2026, 10, 2, 7, 0, tzinfo=NEW_YORK)
    request = tick(instance, friday_morning)
    tick(instance, friday_morning)  # the same tick again (a retried run): no second digest

    assert request.run_key == f"digest-{THURSDAY}"
    [digest] = digests(slack)
    text = digest.block_text()
    assert digest.blocks[0]["text"]["text"] == f"CEI daily digest · {THURSDAY}"
    assert "*Checks* 2 run · 1 failed (1 blocking, 0 warnings) · 50.0% passing · data-quality score 25.0" in text
    assert "*Incidents* 2 opened · 1 resolved · open: P1 1 · P2 1 · P3 0 · P4 0" in text
    assert "*Breaks* 3 (2 P&L breaks, net P&L impact 45.00 USD) · value 155.00 USD" in text
    assert "*Time to detect* 2 min · *to resolve* 60 min" in text
    # A section per team, with what failed for it.
    assert "*fund-operations* · 1 opened · 1 resolved · 1 open" in text
    assert "*market-data* · 1 opened · 0 resolved · 1 open" in text
    assert "`eod_prices` › `prices_positive` (blocking): 2 of 16 EOD marks are zero or negative" in text
    # Open incidents, most severe first.
    ranked = text.index(f"P1 #{p1} Zero EOD marks"), text.index(f"P2 #{p2} Cash break since Wednesday")
    assert ranked[0] < ranked[1] and "acknowledged by jonas.berg" in text
    # The failing sample rows, as a small table (file and line left to the incident's page).
    assert "symbol | price | vendor" in text and "NVDA   | 0.0   | BLOOMBERG" in text

    tick(instance, dt.datetime(2026, 10, 5, 7, 0, tzinfo=NEW_YORK))  # Monday: Friday's digest
    assert [d.blocks[0]["text"]["text"] for d in digests(slack)][1] == f"CEI daily digest · {FRIDAY}"


def test_a_quiet_day_says_so_in_one_line(slack, instance):
    run_daily(instance, MONDAY)  # every check passes; no incident, no break

    tick(instance, dt.datetime(2026, 10, 6, 7, 0, tzinfo=NEW_YORK))

    [digest] = digests(slack)
    line = f"Quiet day on {MONDAY}: 3 checks passed, no incidents, no breaks, nothing open."
    assert digest.body["text"] == line
    assert digest.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": line}}]


def test_a_day_without_any_check_result_is_not_called_quiet(slack, instance):
    tick(instance, dt.datetime(2026, 10, 6, 7, 0, tzinfo=NEW_YORK))  # nothing ran for Monday

    [digest] = digests(slack)
    assert "Quiet day" not in digest.body["text"]
    assert "No check ran for this date" in digest.block_text()


def test_no_digest_on_an_exchange_holiday_and_monday_reports_friday(instance):
    holiday = daily_digest_schedule(dg.build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 26, 7, 0, tzinfo=NEW_YORK)))
    assert isinstance(holiday, dg.SkipReason)
    after = daily_digest_schedule(dg.build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 27, 7, 0, tzinfo=NEW_YORK)))
    assert after.run_config["ops"]["send_daily_digest"]["config"]["date"] == "2026-11-25"  # the Wednesday before


def test_the_command_prints_or_sends_the_digest_to_files_when_slack_is_not_configured(cei_home, monkeypatch):
    for name in ("CEI_SLACK_BOT_TOKEN", "CEI_SLACK_WEBHOOK_URL", "CEI_SLACK_API_URL", "CEI_NOTIFICATIONS_FILE"):
        monkeypatch.delenv(name, raising=False)

    shown = cei("digest", "--date", THURSDAY, "--json", home=cei_home)
    sent = cei("digest", "--date", THURSDAY, "--send", home=cei_home)
    again = cei("digest", "--date", THURSDAY, "--send", home=cei_home)
    bad = cei("digest", "--date", "2026-10-03", home=cei_home)

    assert shown.returncode == 0, shown.stderr
    figures = json.loads(shown.stdout)
    assert figures["checks_run"] == 0 and figures["quiet"] is False and figures["breaks"] is None
    assert sent.returncode == 0, sent.stderr
    written = (cei_home / "notifications" / f"digest-{THURSDAY}.md").read_text()
    assert f"# CEI daily digest · {THURSDAY}" in written and "No check ran for this date" in written
    assert f"No check ran for this date" in sent.stdout  # and on stdout
    assert again.returncode == 0 and "already sent: not sent again" in again.stdout
    assert bad.returncode == 2 and "not a trading day" in bad.stderr
