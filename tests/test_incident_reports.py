"""The incident report: the LLM words it when it can, the template whenever it cannot.

The LLM is reached through the official ``anthropic`` SDK pointed at a local server that speaks
the Messages API (tests/fake_anthropic.py); nothing is patched. The failures are real check
results: generated landing data with three fees made negative and one order booked to an
account that does not exist, judged by the shipped rules on DuckDB.
"""

import csv
import datetime as dt
import json

import duckdb
import pytest

from asset_checks.engine import run_rules, table_context
from asset_checks.rules import load_rules
from cei_assets.ingestion import ensure_raw_table, load_dataset
from cei_assets.incidents.compose import IncidentSettings, describe_incident
from cei_assets.incidents.facts import Failure, PastIncident, Report
from cei_assets.incidents.llm import LLMSettings, load_prices
from cei_assets.incidents.reports import routing_section
from cei_assets.landing import ALL_DATASETS, DATASETS_BY_NAME
from cei_assets.sample_data.generator import ACCOUNTS, generate_landing
from fake_anthropic import FakeAnthropic

DAY = dt.date(2026, 10, 1)
REAL_ACCOUNTS = [a.account for a in ACCOUNTS]
UNKNOWN_ACCOUNT = "ACC-EQ-LS-2019"  # an account the fund closed; an order still names it
SECTIONS = ("summary", "root_cause", "evidence", "business_impact", "recommended_actions", "similar_incidents",
            "routing")


class MemoryStore:
    """The incident store's report interface, in memory (the real one is cei_assets.incidents.store)."""

    def __init__(self, spent_today: float = 0.0):
        self.cache: dict[str, dict] = {}
        self.audits: list[tuple[str, dict]] = []
        self.spent_today = spent_today

    def get_report(self, evidence_hash):
        return self.cache.get(evidence_hash)

    def put_report(self, evidence_hash, report, model):
        self.cache[evidence_hash] = dict(report)

    def llm_spend_today(self):
        return self.spent_today + sum(d.get("cost_usd") or 0.0 for e, d in self.audits if e == "llm_call")

    def audit(self, event, **details):
        self.audits.append((event, details))

    def llm_calls(self) -> list[dict]:
        return [d for e, d in self.audits if e == "llm_call"]


@pytest.fixture(scope="module")
def asset_graph():
    from cei_assets.definitions import defs

    return defs.resolve_asset_graph()


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    """One generated trading date; fees of one fill per account made negative, an order's account renamed."""
    root = tmp_path_factory.mktemp("landing") / "landing"
    generate_landing(root, DAY, 1, symbols=8, quotes_per_symbol=2, orders_per_day=24)

    def rewrite(name, change):
        path = root / DAY.isoformat() / f"{name}.csv"
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        change(rows)
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def negative_fees(rows):
        seen = set()
        for row in rows:
            if row["account"] not in seen:
                seen.add(row["account"])
                row["fee"] = "-" + row["fee"]

    rewrite("executions", negative_fees)
    rewrite("orders", lambda rows: rows[0].update(account=UNKNOWN_ACCOUNT))
    return root


@pytest.fixture(scope="module")
def failures(landing):
    """The failed checks of executions and orders, as the incident sensor reads them."""
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    for dataset in ALL_DATASETS:
        ensure_raw_table(conn, dataset)
    for name in ("accounts", "securities", "orders", "executions"):
        dataset = DATASETS_BY_NAME[name]
        assert load_dataset(conn, dataset, landing, DAY if dataset.daily else None).ok
    found = []
    rules = load_rules()
    for table, keys in (("executions", ("exec_id",)), ("orders", ("order_id",))):
        ctx = table_context(conn, table, f"raw.{table}", DAY, keys)
        for outcome in run_rules(conn, ctx, rules[table]):
            if not outcome.passed:
                found.append(Failure(
                    kind="check", run_id="5f1c2d3e-0000-4000-8000-000000000001", partition=DAY.isoformat(),
                    asset_key=f"landing/{table}", check_name=outcome.check_name, blocking=outcome.blocking,
                    warn_only=outcome.severity == "WARN", description=outcome.description,
                    metadata=json.loads(json.dumps(outcome.metadata(), default=str)),
                    evaluated_at=dt.datetime(2026, 10, 1, 22, 5, tzinfo=dt.timezone.utc).timestamp(),
                    step_key=f"landing__{table}_rules",
                ))
    conn.close()
    names = {f.check_name for f in found}
    assert {"value_range_fee", "known_accounts"} <= names, names
    return found


@pytest.fixture
def llm_env(monkeypatch, landing, cei_home):
    """LLM settings from the environment, as a deployment sets them; the landing root holds the accounts."""
    monkeypatch.setenv("CEI_LANDING_DIR", str(landing))
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CEI_LLM_MODEL", "CEI_LLM_TIMEOUT_SECONDS",
                 "CEI_LLM_MAX_RETRIES", "CEI_LLM_DAILY_BUDGET_USD", "CEI_LLM_PRICES_FILE", "CEI_LLM_MAX_OUTPUT_TOKENS"):
        monkeypatch.delenv(name, raising=False)

    def configure(server: FakeAnthropic | None = None, **env):
        if server is not None:
            monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
            monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url)
        monkeypatch.setenv("CEI_LLM_TIMEOUT_SECONDS", "5")
        monkeypatch.setenv("CEI_LLM_MAX_RETRIES", "1")
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))

    return configure


def describe(failures, asset_graph, store, **kwargs):
    return describe_incident(list(failures), asset_graph, store=store, **kwargs)


def assert_every_section(report: Report) -> None:
    for name in SECTIONS:
        value = getattr(report, name)
        assert value, f"section {name} is empty"
        if isinstance(value, list):
            assert all(isinstance(item, str) and item.strip() for item in value), name
    markdown = report.to_markdown()
    for heading in ("## Summary", "## Likely root cause", "## Business impact", "## Recommended actions",
                    "## Similar incidents", "## Routing"):
        assert heading in markdown


def assert_no_account_identifier(bodies: list[str]) -> None:
    assert bodies, "no request was captured"
    for body in bodies:
        for account in [*REAL_ACCOUNTS, UNKNOWN_ACCOUNT]:
            assert account not in body, f"{account} was sent to the LLM"


# --------------------------------------------------------------------------------------------


def test_a_good_answer_becomes_the_report_with_every_section(failures, asset_graph, llm_env):
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        llm_env(server)
        content = describe(failures, asset_graph, store)

    report = content.report
    assert report.written_by == "llm" and report.model == "claude-sonnet-4-5" and report.fallback_reason is None
    assert_every_section(report)
    # The model saw placeholders; the report kept in the firm names the real accounts again.
    assert "ACCOUNT_" not in report.summary
    assert any(account in report.summary for account in REAL_ACCOUNTS)
    # Routing is decided by code and worded by the template, whoever wrote the rest.
    assert report.routing == routing_section({"routing": content.routing.to_dict()})
    assert content.routing.severity == "P1" and content.routing.team == "trading-ops"

    (request,) = server.requests
    body = request["body"]
    assert body["model"] == "claude-sonnet-4-5"
    assert body["tool_choice"] == {"type": "tool", "name": "write_incident_report"}
    assert [t["name"] for t in body["tools"]] == ["write_incident_report"]
    assert set(body["tools"][0]["input_schema"]["properties"]) == set(SECTIONS) - {"routing"}
    assert "temperature" not in body and body["max_tokens"] == 2000
    prompt = body["messages"][0]["content"]
    assert "value_range_fee" in prompt and "known_accounts" in prompt and "sample_failing_rows" in prompt
    assert "ACCOUNT_1" in prompt  # redacted, not dropped

    (call,) = store.llm_calls()
    price = load_prices()["claude-sonnet-4-5"]
    assert call["cache_hit"] is False and call["fallback_reason"] is None
    assert call["input_tokens"] > 0 and call["output_tokens"] == 420
    assert call["cost_usd"] == pytest.approx(price.cost(call["input_tokens"], call["output_tokens"]))
    assert call["evidence_hash"] in store.cache


@pytest.mark.parametrize("mode, env, requests, words", [
    ("delay", {"CEI_LLM_TIMEOUT_SECONDS": "0.4", "CEI_LLM_MAX_RETRIES": "1"}, 2, "timed out"),
    ("overloaded", {"CEI_LLM_MAX_RETRIES": "2"}, 3, "overloaded (529 overloaded_error, after 2 retries)"),
    ("server_error", {"CEI_LLM_MAX_RETRIES": "0"}, 1, "500 api_error"),
    ("malformed", {}, 1, "answer is invalid"),
    ("garbage", {}, 1, "no write_incident_report call"),
    ("cut_off", {}, 1, "cut off at the output token limit"),
], ids=["timeout", "overloaded_529", "api_error", "malformed", "not_json", "max_tokens"])
def test_when_the_api_fails_the_template_writes_every_section_and_says_why(
        failures, asset_graph, llm_env, mode, env, requests, words):
    store = MemoryStore()
    with FakeAnthropic(mode, delay_seconds=3) as server:
        llm_env(server, **env)
        content = describe(failures, asset_graph, store)
        assert len(server.requests) == requests  # the SDK's own retries, as configured
        assert_no_account_identifier(server.bodies)

    report = content.report
    assert report.written_by == "template" and words in report.fallback_reason
    assert_every_section(report)
    assert "value_range_fee" in report.root_cause + " ".join(report.evidence)
    (call,) = store.llm_calls()
    assert call["fallback_reason"] == report.fallback_reason and call["cache_hit"] is False
    if mode in ("malformed", "garbage", "cut_off"):
        # An answer that does not validate was still paid for: its tokens count against the budget.
        assert call["output_tokens"] == 420 and call["cost_usd"] > 0
    else:
        assert call["cost_usd"] == 0
    assert not store.cache  # nothing invalid is cached


def test_without_an_api_key_nothing_is_sent_and_the_template_writes_the_report(failures, asset_graph, llm_env):
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        llm_env(None, ANTHROPIC_BASE_URL=server.base_url)
        content = describe(failures, asset_graph, store)
        assert server.requests == []
    assert content.report.written_by == "template"
    assert content.report.fallback_reason == "no API key (ANTHROPIC_API_KEY is not set)"
    assert_every_section(content.report)
    # The template runs in the firm: it shows the real accounts of the sample rows.
    assert any(account in " ".join(content.report.evidence) for account in REAL_ACCOUNTS)
    (call,) = store.llm_calls()
    assert call["fallback_reason"] == content.report.fallback_reason and call["input_tokens"] == 0


@pytest.mark.parametrize("spent, budget", [(5.0, "5"), (0.0, "0.001")], ids=["spent", "this_call_would_exceed"])
def test_over_the_daily_budget_nothing_is_sent(failures, asset_graph, llm_env, spent, budget):
    store = MemoryStore(spent_today=spent)
    with FakeAnthropic("good") as server:
        llm_env(server, CEI_LLM_DAILY_BUDGET_USD=budget)
        content = describe(failures, asset_graph, store)
        assert server.requests == []
    assert content.report.written_by == "template"
    assert "over the daily LLM budget" in content.report.fallback_reason
    assert_every_section(content.report)


def test_the_same_evidence_is_answered_from_the_cache_without_a_second_request(failures, asset_graph, llm_env):
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        llm_env(server)
        first = describe(failures, asset_graph, store)
        second = describe(list(reversed(failures)), asset_graph, store)  # the same facts, in another order
        assert len(server.requests) == 1
    assert second.report == first.report and second.report.written_by == "llm"
    assert [c["cache_hit"] for c in store.llm_calls()] == [False, True]
    hit = store.llm_calls()[1]
    assert hit["cost_usd"] == 0 and hit["evidence_hash"] == store.llm_calls()[0]["evidence_hash"]


def test_the_cache_key_changes_with_the_evidence(failures, asset_graph, llm_env):
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        llm_env(server)
        describe(failures, asset_graph, store)
        describe(failures[:1], asset_graph, store)
        assert len(server.requests) == 2
    first, second = store.llm_calls()
    assert first["evidence_hash"] != second["evidence_hash"]


def test_no_account_identifier_reaches_the_llm_while_the_facts_do(failures, asset_graph, llm_env):
    history = [PastIncident(
        id=7, title="landing/executions value_range_fee failed for 2026-09-14",
        check_ids=["landing/executions/value_range_fee"], assets=["landing/executions"],
        signature="check:landing/executions/value_range_fee rule:value_range",
        status="resolved", resolved_by="maya.chen",
        resolution=f"{REAL_ACCOUNTS[1]} fees were booked with the wrong sign; the OMS export was fixed and resent",
        opened_at=1789000000.0, resolved_at=1789003600.0,
    )]
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        llm_env(server)
        content = describe(failures, asset_graph, store, history=history)
        body = server.bodies[0]
    assert_no_account_identifier([body])
    # Each account became a placeholder: sample rows, affected accounts, free text, the past resolution.
    assert {f"ACCOUNT_{n}" for n in range(1, len(REAL_ACCOUNTS) + 2)} <= set(_placeholders(body))
    assert "maya.chen" not in body  # people's names are a configured field too
    assert "fee" in body and "value_range: {column: fee, min: 0}" in body
    assert content.similar[0].id == 7 and content.routing.suggested_assignee == "maya.chen"


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"\bACCOUNT_\d+\b", text)


def test_a_report_that_states_another_severity_is_rejected(failures, asset_graph, llm_env):
    from fake_anthropic import good_report

    answer = good_report("")
    answer["summary"] = "A P3 problem: some fees are negative; nothing urgent."
    store = MemoryStore()
    with FakeAnthropic("good", answer=answer) as server:
        llm_env(server)
        content = describe(failures, asset_graph, store)
    assert content.routing.severity == "P1"
    assert content.report.written_by == "template"
    assert "states severity P3, but routing decided P1" in content.report.fallback_reason


def test_a_json_report_in_text_is_accepted_when_it_validates(failures, asset_graph, llm_env):
    store = MemoryStore()
    with FakeAnthropic("text_json") as server:
        llm_env(server)
        content = describe(failures, asset_graph, store)
    assert content.report.written_by == "llm"
    assert_every_section(content.report)


@pytest.mark.parametrize("env, words", [
    ({"CEI_LLM_TIMEOUT_SECONDS": "soon"}, "CEI_LLM_TIMEOUT_SECONDS='soon' is not a number"),
    ({"CEI_LLM_MAX_RETRIES": "-1"}, "CEI_LLM_MAX_RETRIES='-1' must be a whole number of at least 0"),
    ({"CEI_LLM_MODEL": "claude-unpriced-9"}, "no price for model claude-unpriced-9"),
])
def test_an_unusable_llm_setting_falls_back_to_the_template_and_names_it(failures, asset_graph, llm_env, env, words):
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        llm_env(server, **env)
        content = describe(failures, asset_graph, store)
        assert server.requests == []
    assert content.report.written_by == "template" and words in content.report.fallback_reason
    assert_every_section(content.report)
    assert store.llm_calls()[0]["fallback_reason"] == content.report.fallback_reason


def test_settings_can_be_given_as_a_resource_instead_of_the_environment(failures, asset_graph, llm_env):
    llm_env(None)  # nothing in the environment
    store = MemoryStore()
    with FakeAnthropic("good") as server:
        settings = IncidentSettings(llm=LLMSettings(api_key="sk-ant-test", base_url=server.base_url,
                                                    model="claude-haiku-4-5", max_retries=0))
        content = describe(failures, asset_graph, store, settings=settings)
        assert server.requests[0]["body"]["model"] == "claude-haiku-4-5"
    assert content.report.written_by == "llm" and content.report.model == "claude-haiku-4-5"


def test_everything_but_the_wording_is_deterministic(failures, asset_graph, llm_env):
    llm_env(None)
    first = describe(failures, asset_graph, MemoryStore())
    second = describe(list(reversed(failures)), asset_graph, MemoryStore())
    assert (first.title, first.signature, first.impact, first.routing, first.similar) == \
           (second.title, second.signature, second.impact, second.routing, second.similar)
    assert first.report == second.report  # the template too


def test_with_the_real_incident_store_the_cache_audit_and_daily_spend_hold_together(failures, asset_graph, llm_env,
                                                                                    cei_home):
    from cei_assets.incidents.store import IncidentStore

    store = IncidentStore(f"sqlite:///{cei_home / 'incidents.db'}")
    with FakeAnthropic("good") as server:
        llm_env(server)
        first = describe(failures, asset_graph, store)
        again = describe(failures, asset_graph, store)
        assert len(server.requests) == 1
        calls = [e.details for e in store.audit_entries(event="llm_call")]
        assert [c["cache_hit"] for c in calls] == [False, True]
        spent = store.llm_spend_today()
        assert spent == pytest.approx(calls[0]["cost_usd"]) and spent > 0

        # The spend recorded today is what the budget is held against.
        llm_env(server, CEI_LLM_DAILY_BUDGET_USD=f"{spent * 1.5:.6f}")
        capped = describe(failures[:1], asset_graph, store)
        assert len(server.requests) == 1
    assert first.report.written_by == again.report.written_by == "llm"
    assert capped.report.written_by == "template" and "over the daily LLM budget" in capped.report.fallback_reason


def test_a_deadline_bounds_the_llm_call_and_too_little_time_skips_it(failures, asset_graph, llm_env):
    import time

    import anthropic  # noqa: F401  (imported once, as in a long-running sensor process)

    store = MemoryStore()
    with FakeAnthropic("delay", delay_seconds=8) as server:
        llm_env(server, CEI_LLM_TIMEOUT_SECONDS="20", CEI_LLM_MAX_RETRIES="0")
        deadline = time.monotonic() + 4.5
        bounded = describe(failures, asset_graph, store, deadline=deadline)
        overrun = time.monotonic() - deadline
        assert len(server.requests) == 1
        skipped = describe(failures, asset_graph, store, deadline=time.monotonic() + 1.0)
        assert len(server.requests) == 1  # no request when the time left is too short
    assert overrun < 0.5  # the deadline held: not the configured 20 s, nor the server's 8 s
    assert bounded.report.written_by == "template" and "timed out" in bounded.report.fallback_reason
    assert skipped.report.written_by == "template" and "no time left for the LLM" in skipped.report.fallback_reason
    assert_every_section(skipped.report)
