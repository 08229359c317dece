"""The incident sensor against a real Dagster instance: what becomes an incident, once.

Runs execute the small books chain of ``incident_location`` (marks -> market_values -> pnl,
quotes aside) in this process on a SQLite instance in a temporary DAGSTER_HOME; the sensor is
evaluated as the daemon would, from its saved cursor.
"""

import datetime as dt
import json
import threading
import time
import uuid
from dataclasses import dataclass, field

import dagster as dg
import pytest
import sqlalchemy as sa
from incident_location import FAULT_TAG, RELEASE_TAG, daily_job, defs
from test_incident_store import postgres_url  # noqa: F401 - a fixture: a throwaway PostgreSQL database

from asset_checks.gating import record_override
from cei_assets.incidents import db
from cei_assets.incidents.store import IncidentStore, IncidentStoreResource
from sensors.check_failures import incident_sensor, parse_cursor, scan

D1, D2, D3 = "2026-01-05", "2026-01-06", "2026-01-07"


@dataclass
class Books:
    """A Dagster instance running the test books, and the incident sensor watching it."""

    instance: dg.DagsterInstance
    resource: IncidentStoreResource
    cursor: str | None = None
    runs: list[str] = field(default_factory=list)

    @property
    def store(self) -> IncidentStore:
        return self.resource.store()

    def run(self, partition: str, *faults: str, select: list[str] | None = None, **tags) -> str:
        result = daily_job().execute_in_process(
            instance=self.instance, partition_key=partition, raise_on_error=False,
            tags={FAULT_TAG: ",".join(faults), **tags},
            asset_selection=[dg.AssetKey(a) for a in select] if select else None,
        )
        self.runs.append(result.run_id)
        return result.run_id

    def tick(self, cursor: str | None = "saved") -> str:
        """One sensor evaluation, as the daemon runs it; keeps the cursor it returns."""
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor if cursor == "saved" else cursor,
            definitions=defs, resources={"incidents": self.resource},
        )
        result = incident_sensor(context)
        self.cursor = result.cursor
        return result.cursor

    def incidents(self):
        return sorted(self.store.list_incidents(), key=lambda i: i.id)


@pytest.fixture
def books(cei_home, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)  # reports from the template, offline
    home = cei_home / "dagster"
    home.mkdir(parents=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield Books(instance, IncidentStoreResource(url=f"sqlite:///{cei_home / 'incidents.db'}", settle_seconds=0))


def failures_of(incident):
    return sorted((f.failure.check_id, f.failure.partition) for f in incident.failures)


def test_a_failed_blocking_check_opens_one_incident_that_halts(books):
    run_id = books.run(D1, "bad_marks")
    books.tick()
    [incident] = books.incidents()
    assert incident.status == "open" and incident.halts
    [stored] = incident.failures
    f = stored.failure
    assert (f.check_id, f.partition, f.run_id) == ("marks/marks_positive", D1, run_id)
    assert f.blocking and not f.warn_only and not f.crashed
    assert f.description == "3 of 16 marks are zero or negative; symbols: NVDA, ORCL, YHOO"
    assert f.metadata == {"failing_rows": 3}
    assert stored.source_key.startswith("check:") and stored.storage_id is not None
    events = [e.event for e in books.store.audit_entries(incident_id=incident.id)]
    assert events[:2] == ["check_halt", "incident_opened"]
    # Described when opened: lineage impact from the asset graph, routing, the report.
    assert incident.halted == ["market_values", "pnl"] and incident.degraded == []
    assert incident.team == "market-data" and incident.severity in ("P1", "P2", "P3", "P4")
    assert incident.routing["team"] == incident.team and incident.routing["severity"] == incident.severity
    report = incident.report_markdown()
    for section in ("## Summary", "## Likely root cause", "## Business impact", "## Recommended actions",
                    "## Similar incidents", "## Routing"):
        assert section in report


def test_a_warning_opens_one_incident_that_degrades_without_halting(books):
    books.run(D1, "warn")
    books.tick()
    [incident] = books.incidents()
    [stored] = incident.failures
    assert stored.failure.check_id == "pnl/pnl_reasonable"
    assert stored.failure.warn_only and not stored.failure.blocking
    assert not incident.halts
    assert incident.halted == [] and incident.report is not None  # degrades what it feeds, halts nothing
    assert "check_warning" in [e.event for e in books.store.audit_entries(incident_id=incident.id)]


def test_failures_of_one_run_are_one_incident(books):
    # market values and quotes are unrelated in the lineage: only the run ties them.
    books.run(D1, "bad_values", "stale_quotes")
    books.tick()
    [incident] = books.incidents()
    assert failures_of(incident) == [("market_values/values_consistent", D1), ("quotes/quotes_fresh", D1)]


def test_a_failure_downstream_of_an_open_incident_joins_it_and_unrelated_ones_do_not(books):
    books.run(D1, "bad_marks")
    books.tick()
    # Later runs: market values rebuilt alone for the same date (downstream: joins), the same
    # failure for another date (new incident), quotes for the same date (not downstream: new).
    books.run(D1, "bad_values", select=["market_values"])
    books.run(D2, "bad_values", select=["market_values"])
    books.run(D1, "stale_quotes", select=["quotes"])
    books.tick()
    cascade, other_date, quotes = books.incidents()
    assert failures_of(cascade) == [("market_values/values_consistent", D1), ("marks/marks_positive", D1)]
    assert failures_of(other_date) == [("market_values/values_consistent", D2)]
    assert failures_of(quotes) == [("quotes/quotes_fresh", D1)]
    assert [e.event for e in books.store.audit_entries(incident_id=cascade.id)].count("incident_merged") == 1
    # Re-described with both failures: one root (marks), the rest of the chain halted.
    assert cascade.impact["root_assets"] == ["marks"] and cascade.halted == ["market_values", "pnl"]


def test_reference_data_is_upstream_of_every_date(books):
    books.run(D1, "bad_securities")
    books.tick()
    books.run(D2, "bad_values", select=["market_values"])
    books.tick()
    [incident] = books.incidents()
    assert failures_of(incident) == [("market_values/values_consistent", D2), ("securities/securities_complete", None)]


def test_the_same_asset_failing_again_within_the_window_joins_its_incident(books):
    books.run(D1, "bad_marks")
    books.run(D1, "bad_marks")
    books.tick()
    [incident] = books.incidents()
    assert len(incident.failures) == 2 and len(incident.run_ids) == 2


def test_outside_the_window_the_same_failure_is_a_new_incident(books):
    books.resource = IncidentStoreResource(url=books.resource.url, settle_seconds=0, window_hours=0)
    books.run(D1, "bad_marks")
    time.sleep(0.01)
    books.run(D1, "bad_marks")
    books.tick()
    assert [len(i.failures) for i in books.incidents()] == [1, 1]


def test_a_second_tick_adds_nothing_and_a_replay_from_scratch_neither(books):
    books.run(D1, "bad_marks")
    books.run(D2, "warn")
    first = books.tick()
    audit = len(books.store.audit_entries())
    assert len(books.incidents()) == 2
    assert books.tick() == first
    books.tick(cursor=None)  # a lost cursor rereads the whole event log
    assert len(books.incidents()) == 2
    assert sum(len(i.failures) for i in books.incidents()) == 2
    assert len(books.store.audit_entries()) == audit


def test_a_check_still_planned_is_waited_on_then_counted(books, tmp_path):
    release = tmp_path / "release"
    run_id = str(uuid.uuid4())
    runner = threading.Thread(target=_run_with_id, args=(books, run_id, D1, release))
    runner.start()
    try:
        _wait_for_step_start(books.instance, run_id, "pnl_pnl_reasonable")
        books.tick()
        assert books.incidents() == []  # planned, evaluating: not a failure yet
    finally:
        release.touch()
        runner.join(timeout=60)
    books.tick()
    [incident] = books.incidents()
    assert failures_of(incident) == [("pnl/pnl_reasonable", D1)]
    assert incident.failures[0].failure.description == "P&L moved 7.2 sigma"


def _run_with_id(books: Books, run_id: str, partition: str, release) -> None:
    daily_job().execute_in_process(
        instance=dg.DagsterInstance.from_ref(books.instance.get_ref()), partition_key=partition, run_id=run_id,
        raise_on_error=False, tags={FAULT_TAG: "slow", RELEASE_TAG: str(release)},
    )


def _wait_for_step_start(instance, run_id: str, step: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.event_log_entry.dagster_event.step_key == step
               for r in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records):
            return
        time.sleep(0.05)
    raise AssertionError(f"step {step} of run {run_id} never started")


def test_a_check_whose_step_crashed_counts_as_failed(books):
    run_id = books.run(D1, "crash_check")
    books.tick()
    [incident] = books.incidents()
    [stored] = incident.failures
    f = stored.failure
    assert (f.check_id, f.kind, f.crashed, f.blocking, f.run_id) == (
        "market_values/values_consistent", "check", True, True, run_id)
    assert f.description == (
        "market value = quantity x mark: did not complete: step market_values_values_consistent failed: "
        "RuntimeError: check query failed: table books.market_values is locked"
    )


def test_a_run_failing_on_a_step_error_opens_an_incident_on_that_step(books):
    books.run(D1, "boom")
    books.tick()
    [incident] = books.incidents()
    # Only the step error: the checks downstream of it never started, they did not fail.
    [stored] = incident.failures
    f = stored.failure
    assert (f.kind, f.asset_key, f.step_key, f.partition) == ("step_error", "market_values", "market_values", D1)
    assert f.description == "step market_values failed: RuntimeError: market values: division by zero in FX conversion"
    assert f.blocking and incident.halts


def test_a_run_that_fails_before_any_step_opens_an_incident(books):
    run = books.instance.create_run_for_job(daily_job(), tags={"dagster/partition": D1})
    books.instance.report_run_failed(run, "run worker exited unexpectedly")
    books.tick()
    [incident] = books.incidents()
    [stored] = incident.failures
    assert (stored.failure.kind, stored.failure.partition) == ("run_failure", D1)
    assert "run worker exited unexpectedly" in stored.failure.description


def test_passing_again_resolves_the_incident_with_a_note(books):
    books.run(D1, "bad_marks")
    books.run(D2, "bad_marks")
    books.tick()
    first, second = books.incidents()
    fixed = books.run(D1)  # the vendor resent D1's marks; D2 is still wrong
    books.tick()
    first, second = books.incidents()
    assert first.status == "resolved" and first.auto_resolved and first.resolved_by == "cei"
    assert first.resolution == f"Resolved automatically: marks/marks_positive passed again for {D1} (run {fixed[:8]})."
    assert second.status == "open"
    assert [e.actor for e in books.store.audit_entries(incident_id=first.id, event="incident_resolved")] == ["cei"]


def test_a_step_error_clears_when_the_step_succeeds_again(books):
    books.run(D1, "boom")
    books.tick()
    books.run(D1)
    books.tick()
    [incident] = books.incidents()
    assert incident.status == "resolved"
    assert "step market_values succeeded for 2026-01-05" in incident.resolution


def test_an_override_is_audited_on_the_incident_and_does_not_resolve_it(books):
    books.run(D1, "bad_marks")
    books.tick()
    graph = defs.resolve_asset_graph()
    key = dg.AssetCheckKey(dg.AssetKey("marks"), "marks_positive")
    record_override(books.instance, graph, key, dt.date(2026, 1, 5),
                    "vendor confirmed the zero marks are delisted symbols", "ana")
    books.tick()
    [incident] = books.incidents()
    assert incident.status == "open"
    [override] = books.store.audit_entries(incident_id=incident.id, event="override")
    assert override.actor == "ana"
    assert override.details["reason"] == "vendor confirmed the zero marks are delisted symbols"
    assert override.details["check"] == "marks/marks_positive"


def test_the_cursor_survives_a_restart(books):
    books.run(D1, "bad_marks")
    saved = books.tick()
    assert parse_cursor(saved) > 0
    books.run(D2, "warn")
    # A new process: a new instance object, a new store, the sensor resumed from the saved cursor.
    restarted = Books(dg.DagsterInstance.from_ref(books.instance.get_ref()),
                      IncidentStoreResource(url=books.resource.url, settle_seconds=0), cursor=saved)
    after = restarted.tick()
    assert parse_cursor(after) > parse_cursor(saved)
    assert [failures_of(i) for i in restarted.incidents()] == [
        [("marks/marks_positive", D1)], [("pnl/pnl_reasonable", D2)],
    ]
    restarted.tick(cursor=saved)  # the restarted daemon replays a tick it had not saved
    assert len(restarted.incidents()) == 2 and sum(len(i.failures) for i in restarted.incidents()) == 2


def test_recent_events_are_reread_until_settled_without_doubling(books):
    books.resource = IncidentStoreResource(url=books.resource.url, settle_seconds=3600)
    books.run(D1, "bad_marks")
    first = books.tick()
    assert parse_cursor(first) == -1  # nothing is an hour old: the cursor stays put
    books.tick()
    [incident] = books.incidents()
    assert len(incident.failures) == 1


def test_an_incident_the_describer_cannot_word_is_kept_audited_and_described_later(books):
    def broken(*args, **kwargs):
        raise RuntimeError("routing.yaml: team 'market-data' has no channel")

    def tick(describer=None):
        return scan(books.instance, defs.resolve_asset_graph(), books.store, None, settle_seconds=0,
                    describer=describer)

    def time_passes():
        with books.store.engine.begin() as conn:
            conn.execute(sa.update(db.incidents).values(describe_after=0))

    books.run(D1, "bad_marks")
    assert tick(broken).describe_errors == [1]
    [incident] = books.incidents()
    assert incident.describe_error == "RuntimeError: routing.yaml: team 'market-data' has no channel"
    assert incident.title == "marks/marks_positive failed for 2026-01-05" and incident.content_pending
    assert tick(broken).describe_errors == []  # not due yet: retries back off
    time_passes()
    assert tick(broken).describe_errors == [1]
    [entry] = books.store.audit_entries(incident_id=incident.id, event="describe_failed")  # once per error
    assert entry.details["error"] == "RuntimeError: routing.yaml: team 'market-data' has no channel"

    time_passes()  # the operator fixed the configuration
    assert tick().described == [1]
    [incident] = books.incidents()
    assert incident.describe_error is None and not incident.content_pending and incident.report is not None


def test_an_unreadable_event_is_audited_once_and_does_not_stop_the_ones_after_it(books):
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

    with books.instance.event_log_storage.index_connection() as conn:
        conn.execute(SqlEventLogStorageTable.insert().values(
            run_id="", event="{not json", dagster_event_type="ASSET_CHECK_EVALUATION", timestamp=sa.func.now(),
        ))
    books.run(D1, "bad_marks")
    books.resource = IncidentStoreResource(url=books.resource.url, settle_seconds=3600)  # every tick rereads
    books.tick()
    books.tick()
    [incident] = books.incidents()
    assert failures_of(incident) == [("marks/marks_positive", D1)]
    [entry] = books.store.audit_entries(event="event_unreadable")
    assert entry.details["storage_id"] == 1 and entry.details["error"]


def test_on_postgresql_the_same_sensor_works_by_configuration_alone(cei_home, postgres_url, monkeypatch):
    # Dagster's storage and the incident store in one PostgreSQL database, as a deployment may do.
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    home = cei_home / "dagster"
    home.mkdir(parents=True)
    storage = {"storage": {"postgres": {"postgres_url": postgres_url}}}
    with dg.instance_for_test(temp_dir=str(home), overrides=storage) as instance:
        books = Books(instance, IncidentStoreResource(url=postgres_url, settle_seconds=0))
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        books.run(D1, "bad_marks", "stale_quotes")
        books.run(D2, "crash_check")
        books.tick()
        books.tick(cursor=None)
        first, second = books.incidents()
        assert failures_of(first) == [("marks/marks_positive", D1), ("quotes/quotes_fresh", D1)]
        assert failures_of(second) == [("market_values/values_consistent", D2)] and second.failures[0].failure.crashed
        books.run(D1)
        books.tick()
        assert [i.status for i in books.incidents()] == ["resolved", "open"]


@pytest.mark.slow
def test_a_bad_eod_mark_on_the_real_books_is_one_incident_halting_what_the_lineage_says(cei_home, tmp_path):
    from cei_cli import cei

    from cei_assets.definitions import defs as cei_defs
    from cei_assets.sample_data import generate_landing

    day = "2026-10-01"
    landing = tmp_path / "landing"
    generate_landing(landing, dt.date(2026, 10, 1), 1, seed=8, symbols=8, quotes_per_symbol=120, orders_per_day=12,
                     fault="eod_mark_decimal_shift", fault_date=dt.date(2026, 10, 1))
    assert cei("run", "--date", day, home=cei_home, landing=landing).returncode == 1
    scanned = cei("incidents", "scan", "--json", home=cei_home, extra_env={"ANTHROPIC_API_KEY": ""})
    assert scanned.returncode == 0, scanned.stderr
    [incident] = json.loads(cei("incidents", "list", "--json", home=cei_home).stdout)
    assert incident["assets"] == ["landing/eod_prices"]
    assert set(incident["checks"]) == {"landing/eod_prices/eod_matches_last_quote",
                                       "landing/eod_prices/price_move_data_error"}
    graph = cei_defs.resolve_asset_graph()
    downstream = dg.AssetSelection.assets("landing/eod_prices").downstream().resolve(graph)
    assert incident["halted"] == sorted(k.to_user_string() for k in downstream if k.to_user_string() != "landing/eod_prices")
    assert "daily_pnl" in incident["halted"]
    assert cei("incidents", "scan", home=cei_home).returncode == 0
    assert len(json.loads(cei("incidents", "list", "--json", home=cei_home).stdout)) == 1
