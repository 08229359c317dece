"""Slack alerts for incidents: at once for P1/P2, one message per incident kept up to date,
rate limits honoured, nothing lost while Slack is down, files when Slack is not configured.

Everything goes through the official slack_sdk clients to a local server that speaks the Slack
Web API (tests/fake_slack.py); the incidents live in a real incident store (SQLite).
"""

import datetime as dt
import json
import threading
import time
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from cei_cli import cei
from fake_slack import FakeSlack
from test_incident_store import postgres_url  # noqa: F401 - a fixture: a throwaway PostgreSQL database

from cei_assets.incidents.facts import Failure
from cei_assets.incidents.store import IncidentStore, SourcedFailure
from cei_assets.notifications.dispatch import flush_outbox, notify, notify_changes
from cei_assets.notifications.outbox import Outbox

TOKEN = "xoxb-cei-test"
UI = "http://dagster.fund.internal:3000"
NEW_YORK = ZoneInfo("America/New_York")
DAY = "2026-10-01"

POLICY = """
immediate: [P1, P2]
default_channel: "#cei-alerts"
digest: {channel: "#cei-digest"}
suppression: {default: 4h}
mentions: {"team:market-data": S0MARKET, maya.chen: U0MAYA}
"""
QUIET_HOURS = """
quiet_hours: {start: "22:00", end: "06:30", timezone: America/New_York, allow: [P1]}
"""


@pytest.fixture
def slack():
    server = FakeSlack(token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def policy_file(cei_home, monkeypatch):
    cei_home.mkdir(parents=True, exist_ok=True)
    path = cei_home / "notifications.yaml"
    path.write_text(POLICY)
    monkeypatch.setenv("CEI_NOTIFICATIONS_FILE", str(path))
    monkeypatch.setenv("CEI_DAGSTER_UI_URL", UI)
    for name in ("CEI_SLACK_BOT_TOKEN", "CEI_SLACK_WEBHOOK_URL", "CEI_SLACK_API_URL", "CEI_INCIDENTS_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def slack_env(slack, policy_file, monkeypatch):
    monkeypatch.setenv("CEI_SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("CEI_SLACK_API_URL", slack.api_url)
    return slack


@pytest.fixture
def store(cei_home) -> IncidentStore:
    return IncidentStore(f"sqlite:///{cei_home / 'incidents.db'}")


def failure(check="marks_positive", asset="landing/eod_prices", run="run-0001", warn=False, at=None, rows=None):
    return Failure(
        kind="check", run_id=run, partition=DAY, asset_key=asset, check_name=check, blocking=not warn,
        warn_only=warn, description=f"3 of 16 EOD marks fail {check}; symbols: NVDA, ORCL",
        metadata={"failing_count": 3, "sample_failing_rows": rows or [{"symbol": "NVDA", "price": 0.0}]},
        evaluated_at=time.time() if at is None else at,
    )


_storage_ids = iter(range(1, 10_000))


def open_incident(store, *, severity="P1", team="market-data", channel="#cei-market-data", failures=None,
                  title="Zero EOD marks on 2026-10-01", now=None) -> int:
    """An incident as the sensor leaves it: failures stored, then described (routing, impact, report)."""
    failures = failures or [failure()]
    incident_id = store.open_incident([SourcedFailure(f, f"check:{next(_storage_ids)}") for f in failures], now=now)
    open_incident_content(store, incident_id, severity=severity, team=team, channel=channel, title=title)
    return incident_id


def open_incident_content(store, incident_id, *, severity="P1", team="market-data", channel="#cei-market-data",
                          title="Zero EOD marks on 2026-10-01"):
    store.set_content(
        incident_id, title=title, signature="marks|zero", severity=severity, team=team,
        impact={"root_assets": ["landing/eod_prices"], "halted": ["stg_eod_prices", "market_values", "daily_pnl"],
                "degraded": ["risk_report"], "unaffected": [], "owners": {"landing/eod_prices": ["team:market-data"]},
                "teams": [team], "business_processes": ["EOD valuation"], "criticality": "critical",
                "critical_path": ["landing/eod_prices", "daily_pnl"]},
        routing={"team": team, "severity": severity, "oncall": "maya.chen", "runbook": "docs/checks.md#the-rules",
                 "slack_channel": channel, "suggested_assignee": None, "reasons": []},
        similar=[],
        report={"summary": "Three EOD marks are zero, so market values and P&L are held for 2026-10-01.",
                "root_cause": "The vendor file carried zero prices.", "evidence": ["3 rows with price 0"],
                "business_impact": "P&L not published.", "recommended_actions": ["Reload the vendor file."],
                "similar_incidents": "none", "routing": "market-data", "written_by": "template"},
    )


def alert_in_slack(slack) -> tuple[str, str]:
    """The channel id and ts Slack gave the one top-level message it holds."""
    [key] = [key for key, message in slack.messages.items() if not message.body.get("thread_ts")]
    return key


def posts(slack, *, top_level=True):
    return [r for r in slack.calls("chat.postMessage") if bool(r.body.get("thread_ts")) is not top_level]


# ---------------------------------------------------------------------- the alert


def test_a_p1_alert_arrives_in_the_team_channel_with_its_blocks(slack_env, store):
    incident_id = open_incident(store)

    notify("opened", store.get(incident_id), store_engine=store.engine)

    [post] = slack_env.calls("chat.postMessage")
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    assert post.body["channel"] == "#cei-market-data"
    assert post.body["text"].startswith(f"[P1] CEI incident #{incident_id}: Zero EOD marks")
    assert post.blocks[0]["type"] == "header" and post.blocks[0]["text"]["text"].endswith(
        "P1 · Zero EOD marks on 2026-10-01")
    seen = post.block_text()
    # What failed: asset, check, partition, the one-sentence description.
    assert "`landing/eod_prices` › `marks_positive` (2026-10-01, blocking): 3 of 16 EOD marks fail" in seen
    assert "`stg_eod_prices`, `market_values`, `daily_pnl`" in seen  # halted
    assert "`risk_report`" in seen  # degraded
    assert "<!subteam^S0MARKET>" in seen and "<@U0MAYA>" in seen  # owners and on-call, mentioned
    assert "Three EOD marks are zero, so market values and P&L are held" in seen  # the report's summary
    assert f"{UI}/runs/run-0001" in seen
    assert f"{UI}/assets/landing/eod_prices?partition=2026-10-01" in seen
    [sent] = store.audit_entries(incident_id=incident_id, event="notification_sent")
    assert sent.details["kind"] == "alert" and sent.details["via"] == "slack_api"


def test_a_merged_failure_updates_the_alert_and_is_said_in_its_thread(slack_env, store):
    incident_id = open_incident(store)
    notify("opened", store.get(incident_id), store_engine=store.engine)
    [alert] = slack_env.calls("chat.postMessage")
    channel_id, ts = alert_in_slack(slack_env)

    store.add_failures(incident_id, [SourcedFailure(failure("price_move_data_error"), "check:merged-1")])
    notify("merged", store.get(incident_id), store_engine=store.engine)

    [update] = slack_env.calls("chat.update")
    assert (update.body["channel"], update.body["ts"]) == (channel_id, ts)
    assert "`price_move_data_error`" in update.block_text() and "`marks_positive`" in update.block_text()
    [reply] = posts(slack_env, top_level=False)
    assert reply.body["thread_ts"] == ts and reply.body["channel"] == channel_id
    assert "landing/eod_prices/price_move_data_error" in reply.body["text"]
    assert len(posts(slack_env)) == 1  # never a second alert for the same incident


def test_a_resolution_updates_the_alert(slack_env, store):
    incident_id = open_incident(store)
    notify("opened", store.get(incident_id), store_engine=store.engine)
    channel_id, ts = alert_in_slack(slack_env)

    store.resolve(incident_id, "ana.lima", "vendor resent the file; marks reloaded")
    notify("resolved", store.get(incident_id), store_engine=store.engine)

    [update] = slack_env.calls("chat.update")
    assert (update.body["channel"], update.body["ts"]) == (channel_id, ts)
    assert "Resolved · P1" in update.blocks[0]["text"]["text"]
    assert "by ana.lima" in update.block_text() and "vendor resent the file; marks reloaded" in update.block_text()
    assert update.body["text"].endswith("(resolved)")
    [reply] = posts(slack_env, top_level=False)
    assert reply.body["thread_ts"] == ts and "Resolved by ana.lima" in reply.body["text"]


def test_deciding_the_same_event_twice_sends_it_once(slack_env, store):
    incident_id = open_incident(store)
    for _ in range(2):
        notify("opened", store.get(incident_id), store_engine=store.engine)
    store.resolve(incident_id, "ana.lima", "fixed")
    for _ in range(2):
        notify("resolved", store.get(incident_id), store_engine=store.engine)

    assert len(posts(slack_env)) == 1
    assert len(slack_env.calls("chat.update")) == 1
    assert len(posts(slack_env, top_level=False)) == 1


# ---------------------------------------------------------------------- rate limits


def test_a_rate_limited_alert_is_retried_after_exactly_the_servers_retry_after(slack_env, store):
    slack_env.rate_limit(times=1, retry_after=2)
    incident_id = open_incident(store)

    notify("opened", store.get(incident_id), store_engine=store.engine)

    refused, accepted = slack_env.calls("chat.postMessage", answered=False)
    assert refused.status == 429 and accepted.status == 200
    waited = accepted.at - refused.at
    assert 2.0 <= waited < 2.8, waited  # the server's 2 s, without slack_sdk's random extra second
    assert Outbox(store.engine).rows(status="delivered")[0].incident_id == incident_id


def test_a_retry_after_too_long_to_wait_for_is_honoured_by_the_outbox(slack_env, store):
    slack_env.rate_limit(times=1, retry_after=120)
    incident_id = open_incident(store)
    started = time.time()

    notify("opened", store.get(incident_id), store_engine=store.engine, now=started)

    assert time.time() - started < 5  # a sensor tick is not held for two minutes
    [row] = Outbox(store.engine).rows(status="pending")
    assert row.not_before == pytest.approx(started + 120) and "Retry-After 120" in row.last_error
    flush_outbox(store_engine=store.engine, now=started + 60)
    assert slack_env.calls("chat.postMessage") == []  # not before Slack said
    flush_outbox(store_engine=store.engine, now=started + 121)
    assert len(slack_env.calls("chat.postMessage")) == 1


# ---------------------------------------------------------------------- Slack down


def test_with_slack_down_the_alert_waits_in_the_outbox_and_goes_once_when_it_is_back(slack_env, store):
    incident_id = open_incident(store)
    slack_env.stop()

    notify("opened", store.get(incident_id), store_engine=store.engine)  # never raises
    store.resolve(incident_id, "cei", "checks passed again", auto=True)
    notify("resolved", store.get(incident_id), store_engine=store.engine)

    waiting = Outbox(store.engine).rows(status="pending")
    assert [r.kind for r in waiting] == ["alert", "update", "reply"]
    assert "unreachable" in waiting[0].last_error
    assert slack_env.requests == []

    slack_env.start()
    # Two flushes at once (the sensor's tick and `cei notify flush`), then another one.
    threads = [threading.Thread(target=flush_outbox, kwargs={"store_engine": store.engine}) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush_outbox(store_engine=store.engine)

    assert len(posts(slack_env)) == 1  # exactly once
    [update] = slack_env.calls("chat.update")  # in order: the alert first, then its update
    channel_id, ts = alert_in_slack(slack_env)
    assert (update.body["channel"], update.body["ts"]) == (channel_id, ts)
    assert len(posts(slack_env, top_level=False)) == 1
    assert Outbox(store.engine).rows(status=("pending", "sending")) == []
    assert len(store.audit_entries(event="notification_sent")) == 3


def test_on_postgresql_by_its_url_alone_the_outbox_also_delivers_once(slack_env, postgres_url):  # noqa: F811
    store = IncidentStore(postgres_url)
    incident_id = open_incident(store)
    slack_env.stop()
    notify("opened", store.get(incident_id), store_engine=store.engine)
    slack_env.start()

    threads = [threading.Thread(target=flush_outbox, kwargs={"store_engine": store.engine}) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(posts(slack_env)) == 1
    assert [r.status for r in Outbox(store.engine).rows()] == ["delivered"]


def test_cei_notify_flush_delivers_what_waits(slack, policy_file, store, cei_home):
    incident_id = open_incident(store)  # opened by the sensor; Slack was not reachable then
    env = {"CEI_SLACK_BOT_TOKEN": TOKEN, "CEI_SLACK_API_URL": slack.api_url,
           "CEI_NOTIFICATIONS_FILE": str(policy_file)}

    first = cei("notify", "flush", "--json", home=cei_home, extra_env=env, timeout=120)
    second = cei("notify", "flush", home=cei_home, extra_env=env, timeout=120)
    status = cei("notify", "status", home=cei_home, extra_env=env, timeout=120)

    assert first.returncode == 0, first.stderr
    assert len(json.loads(first.stdout)["delivered"]) == 1
    assert second.returncode == 0 and "0 delivered" in second.stdout
    assert "the outbox is empty" in status.stdout
    [post] = posts(slack)
    assert post.body["text"].startswith(f"[P1] CEI incident #{incident_id}")


def test_a_store_notified_for_the_first_time_leaves_events_older_than_a_day_to_the_digest(slack_env, store):
    long_ago = time.time() - 3 * 86400
    open_incident(store, now=long_ago)  # before notifications were deployed
    recent = open_incident(store, failures=[failure("fx_rate_move", "landing/fx_rates")])

    notify_changes(store)

    [post] = posts(slack_env)
    assert post.body["text"].startswith(f"[P1] CEI incident #{recent}")


# ---------------------------------------------------------------------- what goes when


def test_p3_and_p4_wait_for_the_digest(slack_env, store):
    incident_id = open_incident(store, severity="P3", failures=[failure("quotes_fresh", "landing/quotes", warn=True)])

    notify("opened", store.get(incident_id), store_engine=store.engine)

    assert slack_env.requests == []
    [held] = store.audit_entries(incident_id=incident_id, event="notification_held")
    assert "P3 waits for the daily digest" in held.details["reason"]


def test_an_incident_whose_severity_is_unknown_alerts_at_once(slack_env, store):
    incident_id = store.open_incident([SourcedFailure(failure(), "check:undescribed")])
    store.set_describe_error(incident_id, "RuntimeError: the asset graph could not be read")

    notify("opened", store.get(incident_id), store_engine=store.engine)

    [post] = slack_env.calls("chat.postMessage")
    assert post.body["channel"] == "#cei-alerts"  # no routing yet: the default channel
    assert "severity unknown" in post.blocks[0]["text"]["text"]
    assert "describing the incident failed" in post.block_text()

    open_incident_content(store, incident_id)  # described on a later tick
    notify_changes(store)
    notify_changes(store)

    [update] = slack_env.calls("chat.update")  # edited once to what is now known
    assert update.blocks[0]["text"]["text"].endswith("P1 · Zero EOD marks on 2026-10-01")
    assert len(posts(slack_env)) == 1


def test_the_same_checks_failing_again_within_the_window_reply_in_the_earlier_thread(slack_env, store):
    first = open_incident(store)
    notify("opened", store.get(first), store_engine=store.engine)
    store.resolve(first, "ana.lima", "reloaded")
    notify("resolved", store.get(first), store_engine=store.engine)
    channel_id, ts = alert_in_slack(slack_env)

    second = open_incident(store, failures=[failure(run="run-0002")])
    notify("opened", store.get(second), store_engine=store.engine)

    assert len(posts(slack_env)) == 1  # no second alert
    repeat = posts(slack_env, top_level=False)[-1]
    assert repeat.body["thread_ts"] == ts and repeat.body["channel"] == channel_id
    assert f"incident #{second}" in repeat.body["text"] and "suppression window of 4h" in repeat.body["text"]
    [held] = store.audit_entries(incident_id=second, event="notification_held")
    assert held.details["reason"].startswith(f"suppressed: the same checks were alerted by incident {first}")


def test_quiet_hours_hold_a_p2_until_they_end_but_a_p1_goes_at_once(slack_env, store, policy_file):
    policy_file.write_text(POLICY + QUIET_HOURS)
    night = dt.datetime(2026, 10, 1, 23, 15, tzinfo=NEW_YORK).timestamp()
    morning = dt.datetime(2026, 10, 2, 6, 30, tzinfo=NEW_YORK).timestamp()
    p2 = open_incident(store, severity="P2", failures=[failure("fx_rate_move", "landing/fx_rates")])
    p1 = open_incident(store, severity="P1", channel="#cei-fund-operations", team="fund-operations")

    notify("opened", store.get(p2), store_engine=store.engine, now=night)
    notify("opened", store.get(p1), store_engine=store.engine, now=night)

    assert [p.body["channel"] for p in posts(slack_env)] == ["#cei-fund-operations"]
    [held] = Outbox(store.engine).rows(status="pending")
    assert held.incident_id == p2 and held.not_before == morning
    flush_outbox(store_engine=store.engine, now=morning - 60)
    assert len(posts(slack_env)) == 1
    flush_outbox(store_engine=store.engine, now=morning)
    assert [p.body["channel"] for p in posts(slack_env)] == ["#cei-fund-operations", "#cei-market-data"]


# ---------------------------------------------------------------------- driven by the incident sensor


def test_the_sensor_notifies_what_the_audit_log_says_happened_once(slack_env, store):
    incident_id = open_incident(store)
    warning = open_incident(store, severity="P4", failures=[failure("quotes_fresh", "landing/quotes", warn=True)])

    notify_changes(store)  # the sensor's tick
    store.acknowledge(incident_id, "maya.chen")  # `cei incidents ack`, another process
    notify_changes(store)
    notify_changes(store)  # nothing new: nothing sent

    assert len(posts(slack_env)) == 1 and posts(slack_env)[0].body["channel"] == "#cei-market-data"
    [update] = slack_env.calls("chat.update")
    assert "Acknowledged by maya.chen" in update.block_text()
    [reply] = posts(slack_env, top_level=False)
    assert "Acknowledged by maya.chen" in reply.body["text"]
    assert store.audit_entries(incident_id=warning, event="notification_sent") == []


def test_a_real_sensor_tick_after_a_failed_run_alerts_the_owning_team(slack_env, cei_home, monkeypatch):
    from incident_location import FAULT_TAG, daily_job, defs

    from cei_assets.incidents.store import IncidentStoreResource
    from sensors.check_failures import incident_sensor

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    resource = IncidentStoreResource(url=f"sqlite:///{cei_home / 'incidents.db'}", settle_seconds=0)
    (cei_home / "dagster").mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(cei_home / "dagster")) as instance:
        run = daily_job().execute_in_process(instance=instance, partition_key="2026-01-05", raise_on_error=False,
                                             tags={FAULT_TAG: "bad_marks"})
        context = dg.build_sensor_context(instance=instance, definitions=defs, resources={"incidents": resource})
        incident_sensor(context)

    [incident] = resource.store().list_incidents()
    assert incident.severity in ("P1", "P2")
    [post] = slack_env.calls("chat.postMessage")
    assert post.body["channel"] == "#cei-market-data"
    assert "`marks` › `marks_positive` (2026-01-05, blocking)" in post.block_text()
    assert f"{UI}/runs/{run.run_id}" in post.block_text()


# ---------------------------------------------------------------------- other deliveries


def test_with_no_slack_configured_alerts_are_written_to_files_and_stdout(policy_file, store, cei_home, capsys):
    incident_id = open_incident(store)

    notify("opened", store.get(incident_id), store_engine=store.engine)
    store.resolve(incident_id, "ana.lima", "reloaded")
    notify("resolved", store.get(incident_id), store_engine=store.engine)

    written = sorted((cei_home / "notifications" / "incidents").glob(f"incident-{incident_id}-*.md"))
    assert [p.name.rsplit("-", 1)[-1] for p in written] == ["alert.md", "update.md", "reply.md"]
    alert = written[0].read_text()
    assert alert.startswith("# :red_circle: P1 · Zero EOD marks on 2026-10-01")
    assert f"[Open the run]({UI}/runs/run-0001)" in alert
    out = capsys.readouterr().out
    assert "P1 · Zero EOD marks on 2026-10-01" in out and "Resolved by ana.lima: reloaded" in out
    assert Outbox(store.engine).rows(status="pending") == []


def test_an_incoming_webhook_posts_the_alert_and_later_events_as_lines(slack, policy_file, store, monkeypatch):
    monkeypatch.setenv("CEI_SLACK_WEBHOOK_URL", slack.webhook_url)
    incident_id = open_incident(store)

    notify("opened", store.get(incident_id), store_engine=store.engine)
    store.resolve(incident_id, "ana.lima", "reloaded")
    notify("resolved", store.get(incident_id), store_engine=store.engine)

    alert, line = slack.calls("webhook")
    assert alert.blocks[0]["text"]["text"].endswith("P1 · Zero EOD marks on 2026-10-01")
    assert line.body["text"] == f"CEI incident #{incident_id}: :white_check_mark: Resolved by ana.lima: reloaded"
    assert slack.calls("chat.update") == []  # a webhook cannot edit: it is not tried


def test_an_alert_that_cannot_be_stored_is_written_to_a_file_not_lost(policy_file, cei_home, monkeypatch):
    monkeypatch.setenv("CEI_INCIDENTS_URL", "not a database url")
    incident = {"id": 7, "title": "Zero EOD marks", "severity": "P1", "status": "open", "team": "market-data",
                "assets": ["landing/eod_prices"], "checks": ["landing/eod_prices/marks_positive"],
                "halted": ["daily_pnl"], "degraded": [], "report": {"summary": "Marks are zero."}}

    notify("opened", incident)  # no exception

    [kept] = (cei_home / "notifications" / "undelivered").glob("incident-7-opened-*.md")
    text = kept.read_text()
    assert "P1 · Zero EOD marks" in text and "Marks are zero." in text and "Not sent: IncidentStoreError" in text
