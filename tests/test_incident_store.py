"""The incident store: migrations, lifecycle, no duplicates, an audit log nobody can rewrite.

Each behaviour runs on the embedded SQLite store and, by URL alone, on PostgreSQL
(a throwaway database on 127.0.0.1, created and dropped here).
"""

import datetime as dt
import json
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa
from cei_cli import cei

from cei_assets.incidents import db
from cei_assets.incidents.facts import Failure, PastIncident
from cei_assets.incidents.store import (
    IncidentStateError,
    IncidentStore,
    SourcedFailure,
    UnknownIncident,
)

PG_SERVER = "postgresql+psycopg2://root@127.0.0.1:5432"


def failure(check="marks_positive", asset="marks", partition="2026-01-05", run="run-1", warn=False, at=1000.0):
    return Failure(
        kind="check", run_id=run, partition=partition, asset_key=asset, check_name=check, blocking=not warn,
        warn_only=warn, description=f"{asset}/{check} failed", metadata={"failing_rows": 3}, evaluated_at=at,
    )


def sourced(storage_id: int, **kwargs) -> SourcedFailure:
    return SourcedFailure(failure(**kwargs), f"check:{storage_id}", storage_id)


@pytest.fixture
def postgres_url():
    name = f"cei_incidents_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432: {error.orig}")
    url = f"{PG_SERVER}/{name}"
    yield url
    db.dispose_engines()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, cei_home):
    if request.param == "sqlite":
        yield f"sqlite:///{cei_home / 'incidents.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url) -> IncidentStore:
    return IncidentStore(url)


def revisions_up_to(head: str) -> list[str]:
    from alembic.script import ScriptDirectory

    return [r.revision for r in ScriptDirectory.from_config(db.alembic_config()).walk_revisions("base", head)]


def test_the_default_store_is_sqlite_next_to_the_dagster_instance(cei_home, monkeypatch):
    monkeypatch.delenv("CEI_INCIDENTS_URL", raising=False)
    store = IncidentStore.from_environment()
    assert store.engine.url.get_backend_name() == "sqlite"
    assert store.engine.url.database == str(cei_home / "incidents.db")
    assert (cei_home / "incidents.db").exists()


def test_a_fresh_database_is_migrated_to_the_newest_revision_when_opened(store):
    # 0001 is this store's; later revisions (0002, notifications) build on it.
    assert db.current_revision(store.engine) == db.head_revision()
    assert "0001" in revisions_up_to(db.head_revision())
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"incidents", "incident_failures", "audit_log", "llm_cache", "scan_cursors", db.VERSION_TABLE} <= tables


def test_migrations_go_down_and_up_again(store):
    db.downgrade(store.engine, "base")
    assert set(sa.inspect(store.engine).get_table_names()) == {db.VERSION_TABLE}
    db.upgrade(store.engine, "0001")
    assert db.current_revision(store.engine) == "0001"
    assert IncidentStore(engine=store.engine).open_incident([sourced(1)]) == 1
    db.upgrade(store.engine)  # later revisions keep what 0001 holds
    assert db.current_revision(store.engine) == db.head_revision()
    assert IncidentStore(engine=store.engine).get(1).checks == ["marks/marks_positive"]


def test_several_processes_opening_a_fresh_database_at_once_all_succeed(url):
    # The daemon, its code server and the command line may all be first; the migration serialises.
    code = (
        "import sys; from cei_assets.incidents.store import IncidentStore; "
        "store = IncidentStore(sys.argv[1]); store.audit('opened', pid=__import__('os').getpid())"
    )
    processes = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    store = IncidentStore(url)
    assert db.current_revision(store.engine) == db.head_revision()
    assert len(store.audit_entries(event="opened")) == 3


def test_an_incident_goes_open_acknowledged_resolved_and_each_step_is_audited(store):
    incident_id = store.open_incident([sourced(1)])
    incident = store.get(incident_id)
    assert (incident.status, incident.title) == ("open", "marks/marks_positive failed for 2026-01-05")
    assert incident.checks == ["marks/marks_positive"] and incident.assets == ["marks"]
    assert incident.halts

    store.acknowledge(incident_id, "ana")
    resolved = store.resolve(incident_id, "ben", "vendor resent the EOD file; reran 2026-01-05")
    assert (resolved.status, resolved.acknowledged_by, resolved.resolved_by) == ("resolved", "ana", "ben")
    assert resolved.resolution == "vendor resent the EOD file; reran 2026-01-05" and not resolved.auto_resolved

    trail = [(e.event, e.actor) for e in store.audit_entries(incident_id=incident_id)]
    assert trail == [
        ("check_halt", "cei"), ("incident_opened", "cei"), ("incident_acknowledged", "ana"), ("incident_resolved", "ben"),
    ]


def test_lifecycle_steps_that_do_not_apply_are_refused_with_the_reason(store):
    incident_id = store.open_incident([sourced(1)])
    with pytest.raises(IncidentStateError, match="needs a note"):
        store.resolve(incident_id, "ben", "  ")
    with pytest.raises(IncidentStateError, match="say who"):
        store.acknowledge(incident_id, "")
    store.acknowledge(incident_id, "ana")
    with pytest.raises(IncidentStateError, match="already acknowledged .by ana"):
        store.acknowledge(incident_id, "ben")
    store.resolve(incident_id, "ben", "fixed")
    with pytest.raises(IncidentStateError, match="already resolved"):
        store.resolve(incident_id, "ana", "again")
    with pytest.raises(IncidentStateError, match="nothing to acknowledge"):
        store.acknowledge(incident_id, "ana")
    with pytest.raises(UnknownIncident, match="no incident 99"):
        store.get(99)
    with pytest.raises(IncidentStateError, match="resolved: failures open a new incident"):
        store.add_failures(incident_id, [sourced(2)])


def test_a_failure_read_twice_is_stored_once(store):
    incident_id = store.open_incident([sourced(1), sourced(2, check="values_consistent", asset="market_values")])
    assert store.add_failures(incident_id, [sourced(1), sourced(2, check="values_consistent", asset="market_values")]) == 0
    assert store.add_failures(incident_id, [sourced(3, run="run-2")]) == 1
    incident = store.get(incident_id)
    assert [f.source_key for f in incident.failures] == ["check:1", "check:2", "check:3"]
    assert incident.run_ids == ["run-1", "run-2"]
    assert [e.event for e in store.audit_entries(event="incident_merged")] == ["incident_merged"]
    with store.engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(db.incident_failures.insert().values(
            incident_id=incident_id, source_key="check:1", kind="check", run_id="x", blocking=True,
            warn_only=False, crashed=False, description="", evaluated_at=0.0,
        ))


def test_the_audit_log_refuses_updates_and_deletes(store):
    store.audit("notification_sent", channel="#market-data", incident_id=None)
    for statement in (db.audit_log.update().values(event="tampered"), db.audit_log.delete()):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.execute(statement)
    entries = store.audit_entries()
    assert [(e.event, e.details) for e in entries] == [("notification_sent", {"channel": "#market-data"})]


def test_llm_calls_are_audited_with_their_cost_and_only_todays_count_against_the_cap(store):
    incident_id = store.open_incident([sourced(1)])
    with store.about(incident_id):  # what the describer logs while wording this incident
        store.audit("llm_call", model="claude-x", input_tokens=1200, output_tokens=400, cost_usd=0.0123,
                    cache_hit=False, fallback_reason=None)
    store.audit("llm_call", model="claude-x", cost_usd=0.02, cache_hit=False)
    store.audit("llm_call", model="claude-x", cost_usd=0.0, cache_hit=True)
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).timestamp()
    with store.engine.begin() as conn:
        conn.execute(db.audit_log.insert().values(at=yesterday, event="llm_call", cost_usd=5.0, details={}))
    assert store.llm_spend_today() == pytest.approx(0.0323)
    call = store.audit_entries(event="llm_call")[0]
    assert call.incident_id == incident_id and call.details["input_tokens"] == 1200


def test_reports_are_cached_by_the_hash_of_their_evidence(store):
    assert store.get_report("abc") is None
    store.put_report("abc", {"summary": "marks wrong"}, "claude-x")
    store.put_report("abc", {"summary": "marks wrong, 3 symbols"}, "claude-x")
    assert store.get_report("abc") == {"summary": "marks wrong, 3 symbols"}


def test_past_incidents_carry_what_resolved_them(store):
    first = store.open_incident([sourced(1)])
    store.resolve(first, "ben", "vendor resent the file")
    second = store.open_incident([sourced(2, run="run-2", check="quotes_fresh", asset="quotes", warn=True)])
    past = store.past_incidents(exclude=second)
    assert past == [PastIncident(
        id=first, title="marks/marks_positive failed for 2026-01-05", check_ids=["marks/marks_positive"],
        assets=["marks"], signature="", status="resolved", resolved_by="ben", resolution="vendor resent the file",
        opened_at=past[0].opened_at, resolved_at=past[0].resolved_at,
    )]
    assert past[0].resolved_at >= past[0].opened_at


def test_a_bad_url_is_a_clear_error(cei_home):
    with pytest.raises(db.IncidentStoreError, match="not a database URL"):
        IncidentStore("incidents.db")
    with pytest.raises(db.IncidentStoreError, match="cannot open the incident store"):
        IncidentStore("postgresql+psycopg2://nobody@127.0.0.1:1/none")


# ---------------------------------------------------------------------- the command line


def test_the_command_line_lists_shows_acknowledges_and_resolves(cei_home):
    store = IncidentStore()  # the same $CEI_HOME/incidents.db the command line opens
    warned = store.open_incident([sourced(1, check="quotes_fresh", asset="quotes", warn=True)])
    halted = store.open_incident([sourced(2, run="run-2")])
    store.set_content(
        halted, title="Bad EOD marks halt the books for 2026-01-05", signature="marks_positive|marks",
        severity="P1", team="team:market-data",
        impact={"halted": ["market_values", "pnl"], "degraded": [], "critical_path": ["marks", "market_values", "pnl"]},
        routing={"team": "team:market-data", "severity": "P1", "oncall": "ana"}, similar=[],
        report={"summary": "Three EOD marks are zero.", "root_cause": "vendor file", "evidence": ["3 rows"],
                "business_impact": "P&L halted", "recommended_actions": ["ask the vendor"],
                "similar_incidents": "none", "routing": "market data", "written_by": "template"},
    )

    listed = cei("incidents", "list", "--json", home=cei_home)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [halted, warned]
    assert set(rows[0]) == {"id", "title", "severity", "status", "team", "assets", "checks", "halted", "degraded", "report"}
    assert rows[0]["halted"] == ["market_values", "pnl"] and rows[0]["severity"] == "P1"
    assert rows[0]["report"].startswith("## Summary\nThree EOD marks are zero.")
    assert rows[1]["halted"] is None  # not described yet: unknown, not "nothing"

    shown = cei("incidents", "show", str(halted), home=cei_home)
    assert shown.returncode == 0, shown.stderr
    for text in ("Bad EOD marks halt the books", "Three EOD marks are zero", "halted: market_values, pnl",
                 "marks/marks_positive", "incident_opened"):
        assert text in shown.stdout

    assert cei("incidents", "ack", str(halted), "--by", "ana", home=cei_home).returncode == 0
    done = cei("incidents", "resolve", str(halted), "--by", "ben", "--note", "vendor resent marks", home=cei_home)
    assert done.returncode == 0, done.stderr
    assert json.loads(cei("incidents", "list", "--json", "--status", "resolved", home=cei_home).stdout)[0]["id"] == halted

    again = cei("incidents", "ack", str(halted), "--by", "ana", home=cei_home)
    assert again.returncode == 2 and "is resolved" in again.stderr
    missing = cei("incidents", "show", "42", home=cei_home)
    assert missing.returncode == 2 and "no incident 42" in missing.stderr
    assert [e.event for e in store.audit_entries(incident_id=halted)][-2:] == ["incident_acknowledged", "incident_resolved"]


def test_a_plain_postgresql_url_uses_the_installed_driver(postgres_url):
    store = IncidentStore(postgres_url.replace("postgresql+psycopg2://", "postgresql://"))
    assert store.open_incident([sourced(1)]) == 1
