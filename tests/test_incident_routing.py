"""Routing is deterministic and configured in YAML: severity matrix, on-call rotation, runbooks,
channels, the suggested assignee from history; and similar incidents are ranked offline."""

import datetime as dt
import textwrap
from zoneinfo import ZoneInfo

import pytest

from cei_assets.incidents.compose import describe_incident
from cei_assets.incidents.config_files import IncidentConfigError
from cei_assets.incidents.facts import Failure, PastIncident, SimilarIncident
from cei_assets.incidents.impact import assess_impact
from cei_assets.incidents.routing import load_oncall, load_routing, route, suggest_assignee
from cei_assets.incidents.similar import failure_signature, rank_similar

DAY = "2026-10-01"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def asset_graph():
    from cei_assets.definitions import defs

    return defs.resolve_asset_graph()


def check(asset, name, *, blocking=True, warn=False, metadata=None, at=None) -> Failure:
    return Failure(kind="check", run_id="run-1", partition=DAY, asset_key=asset, check_name=name, blocking=blocking,
                   warn_only=warn, description=f"{name} failed", metadata=metadata or {},
                   evaluated_at=(at or dt.datetime(2026, 10, 1, 22, 0, tzinfo=dt.timezone.utc)).timestamp())


def routed(failures, asset_graph, *, similar=(), at=None, routing_file=None, oncall_file=None):
    impact = assess_impact(failures, asset_graph)
    return route(failures, impact, list(similar), routing_config=load_routing(routing_file),
                 oncall_config=load_oncall(oncall_file), at=at, asset_graph=asset_graph)


def write(tmp_path, name, text) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# -------------------------------------------------------------------------------- severity


@pytest.mark.parametrize("failure, severity, team", [
    (check("landing/eod_prices", "price_move_data_error"), "P1", "market-data"),  # halts the P&L
    (check("landing/broker_trades", "landing_file"), "P1", "trading-ops"),  # halts the reconciliation, P&L
    (check("recon_pnl", "published_pnl_is_change_in_value_and_cash"), "P2", "fund-operations"),  # high, halts nothing
    (check("landing/quotes", "landing_file"), "P3", "market-data"),  # halts stg_quotes (medium)
    (check("landing/eod_prices", "price_move_unexplained", blocking=False, warn=True), "P3", "market-data"),
    (check("landing/quotes", "stale_feed", blocking=False, warn=True), "P4", "market-data"),
], ids=["blocking-critical", "blocking-critical-recon", "blocking-high", "blocking-medium", "warning-critical",
        "warning-medium"])
def test_severity_comes_from_the_matrix_of_effect_and_criticality(asset_graph, failure, severity, team):
    routing = routed([failure], asset_graph)
    assert (routing.severity, routing.team) == (severity, team)
    assert any(reason.startswith(f"{severity}:") for reason in routing.reasons)


def test_the_matrix_is_configuration(asset_graph, tmp_path, monkeypatch):
    import yaml

    data = yaml.safe_load(open(load_routing().source).read())
    data["severity"]["degrades"]["medium"] = "P2"
    monkeypatch.setenv("CEI_ROUTING_FILE", write(tmp_path, "routing.yaml", yaml.safe_dump(data)))
    assert routed([check("landing/quotes", "stale_feed", blocking=False, warn=True)], asset_graph).severity == "P2"


# -------------------------------------------------------------------------------- on call


ONCALL = """\
    timezone: America/New_York
    handover: "09:00"
    rotations:
      market-data:
        start: 2026-01-05
        people: [ana, ben, cleo]
      trading-ops:
        start: 2026-01-05
        every_days: 14
        people: [dev, eve]
    overrides:
      - team: market-data
        person: zoe
        from: 2026-12-24 09:00
        to: 2026-12-26 09:00
"""


@pytest.mark.parametrize("team, local, person", [
    ("market-data", "2026-01-05 08:59", None),  # before the rotation starts
    ("market-data", "2026-01-05 09:00", "ana"),
    ("market-data", "2026-01-12 08:59", "ana"),
    ("market-data", "2026-01-12 09:00", "ben"),
    ("market-data", "2026-01-19 12:00", "cleo"),
    ("market-data", "2026-01-26 09:00", "ana"),  # round again
    ("market-data", "2026-03-09 09:30", "ana"),  # week 9, the day after daylight saving starts:
    ("market-data", "2026-03-09 08:30", "cleo"),  # the handover is still at 09:00 on the wall clock
    ("market-data", "2026-12-25 03:00", "zoe"),  # an override
    ("market-data", "2026-12-26 09:00", "cleo"),  # the override is over: week 50
    ("trading-ops", "2026-01-18 23:00", "dev"),  # fortnightly
    ("trading-ops", "2026-01-19 09:00", "eve"),
    ("fund-operations", "2026-06-01 12:00", None),  # no rotation
])
def test_the_on_call_person_follows_the_weekly_rotation(tmp_path, team, local, person):
    oncall = load_oncall(write(tmp_path, "oncall.yaml", ONCALL))
    at = dt.datetime.fromisoformat(local).replace(tzinfo=NEW_YORK)
    assert oncall.on_call(team, at) == person


def test_the_on_call_person_is_who_was_on_call_when_the_failure_happened(asset_graph, tmp_path):
    oncall_file = write(tmp_path, "oncall.yaml", ONCALL)
    failure = check("landing/eod_prices", "price_move_data_error",
                    at=dt.datetime(2026, 1, 12, 13, 30, tzinfo=dt.timezone.utc))  # 08:30 in New York
    routing = routed([failure], asset_graph, oncall_file=oncall_file,
                     at=dt.datetime(2026, 1, 12, 13, 30, tzinfo=dt.timezone.utc))
    assert routing.oncall == "ana" and routing.slack_channel == "#cei-market-data"


def test_a_team_without_anyone_on_call_is_still_routed_and_says_so(asset_graph, tmp_path):
    oncall_file = write(tmp_path, "oncall.yaml", "timezone: UTC\nrotations: {}\n")
    routing = routed([check("landing/eod_prices", "price_move_data_error")], asset_graph, oncall_file=oncall_file)
    assert routing.oncall is None and routing.team == "market-data"
    assert any("no one is on call for market-data" in r for r in routing.reasons)


# -------------------------------------------------------------------------------- runbooks, channels


@pytest.mark.parametrize("failure, runbook", [
    (check("landing/executions", "landing_file"), "README.md#how-the-daily-graph-runs"),
    (check("landing/eod_prices", "price_move_data_error", metadata={"rule": "price_move: {flags: [decimal_shift]}"}),
     "docs/checks.md#the-rules"),
    (check("recon_breaks", "no_duplicated_or_unbooked_fills", metadata={"dagster_dbt/failed_row_count": 2}),
     "docs/reconciliation.md#blocking-or-warning"),
    (check("positions", "soda_failed_rows_rolls_forward"), "README.md#books-and-pl"),
    (check("landing/executions", "value_range_fee"), "README.md#checks-and-fail-closed-gating"),
], ids=["landing_file", "market_data", "reconciliation", "soda", "row_rule"])
def test_the_runbook_is_chosen_by_check_family(asset_graph, failure, runbook):
    assert routed([failure], asset_graph).runbook == runbook


def test_a_team_without_a_channel_goes_to_the_default_teams_channel(asset_graph, tmp_path):
    text = open(load_routing().source).read().replace(
        '  market-data:\n    slack_channel: "#cei-market-data"\n', "")
    routing_file = write(tmp_path, "routing.yaml", text)
    routing = routed([check("landing/eod_prices", "price_move_data_error")], asset_graph, routing_file=routing_file)
    assert routing.team == "market-data" and routing.slack_channel == "#cei-fund-operations"
    assert any("has no Slack channel" in r for r in routing.reasons)


# -------------------------------------------------------------------------------- invalid configuration


@pytest.mark.parametrize("name, text, key, words", [
    ("routing.yaml", "severity.halts.critical: P9", "severity.halts.critical", "'P9' is not one of P1, P2, P3, P4"),
    ("routing.yaml", "teams.trading-ops.slack_channel: null", "teams.trading-ops.slack_channel", "is missing"),
    ("routing.yaml", "default_team: risk", "default_team", "'risk' is not one of the teams"),
    ("routing.yaml", "runbooks.landing_files: x", "runbooks.landing_files", "is not a check family"),
    ("routing.yaml", "suggested_assignee.min_score: lots", "suggested_assignee.min_score", "must be a number"),
    ("routing.yaml", "escalation: {}", "escalation", "unknown key"),
    ("oncall.yaml", "rotations.market-data.people: []", "rotations.market-data.people", "must not be empty"),
    ("oncall.yaml", "rotations.market-data.start: soon", "rotations.market-data.start", "must be a date"),
    ("oncall.yaml", "rotations.market-data.every_days: 0", "rotations.market-data.every_days", "at least 1"),
    ("oncall.yaml", "timezone: Mars/Olympus_Mons", "timezone", "not a known time zone"),
    ("oncall.yaml", "handover: '25:00'", "handover", "not a time of day"),
])
def test_an_invalid_config_fails_at_load_naming_the_file_and_the_key(tmp_path, name, text, key, words):
    import yaml

    from cei_assets.incidents.config_files import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / name).read_text())
    dotted, _, value = text.partition(": ")
    *path, last = dotted.split(".")
    node = data
    for part in path:
        node = node[part]
    node[last] = yaml.safe_load(value)
    config = tmp_path / name
    config.write_text(yaml.safe_dump(data))

    with pytest.raises(IncidentConfigError) as error:
        (load_routing if name == "routing.yaml" else load_oncall)(config)
    assert str(error.value).startswith(f"{config}: {key}: ")
    assert words in str(error.value)


def test_a_config_file_that_is_not_yaml_names_the_file_and_line(tmp_path):
    config = write(tmp_path, "routing.yaml", "teams:\n  market-data: [\n")
    with pytest.raises(IncidentConfigError, match=r"routing\.yaml: is not valid YAML at line 3"):
        load_routing(config)


def test_an_override_that_ends_before_it_starts_is_refused(tmp_path):
    text = ONCALL.replace("to: 2026-12-26 09:00", "to: 2026-12-23 09:00")
    with pytest.raises(IncidentConfigError, match=r"oncall\.yaml: overrides\[0\]\.to: must be after from"):
        load_oncall(write(tmp_path, "oncall.yaml", text))


def test_describing_an_incident_with_a_broken_routing_file_fails_with_the_file_and_key(asset_graph, tmp_path,
                                                                                       monkeypatch):
    broken = write(tmp_path, "routing.yaml", open(load_routing().source).read().replace("critical: P1", "critical: P0"))
    monkeypatch.setenv("CEI_ROUTING_FILE", broken)
    with pytest.raises(IncidentConfigError, match=r"routing\.yaml: severity\.halts\.critical: 'P0'"):
        describe_incident([check("landing/eod_prices", "price_move_data_error")], asset_graph, store=None)


# -------------------------------------------------------------------------------- history


def past(id, checks, assets, signature, *, by=None, resolution=None, opened=1_780_000_000.0, resolved=True):
    return PastIncident(id=id, title=f"incident {id}", check_ids=checks, assets=assets, signature=signature,
                        status="resolved" if resolved else "open", resolved_by=by, resolution=resolution,
                        opened_at=opened, resolved_at=opened + 3600 if resolved else None)


FEE_META = {"rule": "value_range: {column: fee, min: 0}", "engine": "sql", "failing_count": 3, "total_count": 53,
            "threshold": {"column": "fee", "min": 0},
            "sample_failing_rows": [{"exec_id": "EX-1", "account": "ACC-EQ-LS", "fee": -1.5, "_source_line": 2}],
            "affected": {"account": ["ACC-EQ-LS"], "symbol": ["NVDA"]}}


def test_a_signature_keeps_the_shape_of_a_failure_not_its_numbers():
    today = check("landing/executions", "value_range_fee", metadata=FEE_META)
    other_day = check("landing/executions", "value_range_fee", metadata={
        **FEE_META, "failing_count": 7, "total_count": 61,
        "sample_failing_rows": [{"exec_id": "EX-9", "account": "ACC-EU-LS", "fee": -9.0, "_source_line": 40}],
        "affected": {"account": ["ACC-EU-LS"], "symbol": ["SAP"]}})
    signature = failure_signature([today])
    assert signature == failure_signature([other_day])
    tokens = signature.split()
    assert {"check:landing/executions/value_range_fee", "rule:value_range", "family:row_rule", "col:fee",
            "asset:landing/executions", "effect:halts"} <= set(tokens)
    assert not any(t for t in tokens if "ACC-" in t or "-1.5" in t or "NVDA" in t)
    assert failure_signature([check("landing/executions", "value_range_fee", metadata={
        **FEE_META, "rule": "value_range: {column: price, min: 0}", "threshold": {"column": "price", "min": 0},
        "sample_failing_rows": [{"exec_id": "EX-1", "price": -3}]})]) != signature


def test_similar_incidents_are_ranked_by_check_asset_and_signature():
    failure = check("landing/executions", "value_range_fee", metadata=FEE_META)
    signature = failure_signature([failure])
    history = [
        past(1, ["landing/quotes/stale_feed"], ["landing/quotes"], "check:landing/quotes/stale_feed rule:stale_feed"),
        past(2, ["landing/executions/required_fields"], ["landing/executions"],
             "asset:landing/executions family:row_rule kind:check effect:halts rule:null_tolerance",
             by="sam.oduya", resolution="the OMS dropped a column; resent"),
        past(3, ["landing/executions/value_range_fee"], ["landing/executions"], signature,
             by="priya.raman", resolution="fees exported with the wrong sign; OMS export fixed"),
        past(4, ["landing/executions/value_range_fee"], ["landing/executions"], signature, resolved=False,
             opened=1_790_000_000.0),
    ]
    ranked = rank_similar([failure], history, signature=signature)
    assert [s.id for s in ranked] == [3, 4, 2]  # same score: the resolved one first; unrelated 1 is left out
    assert ranked[0].score == 1.0 and ranked[0].resolution.startswith("fees exported")
    assert 0 < ranked[2].score < ranked[1].score


def test_the_suggested_assignee_resolved_the_most_similar_incidents(asset_graph):
    similar = [
        SimilarIncident(1, "a", 0.9, "priya.raman", "fixed"),
        SimilarIncident(2, "b", 0.8, "sam.oduya", "fixed"),
        SimilarIncident(3, "c", 0.7, "sam.oduya", "fixed"),
        SimilarIncident(4, "d", 0.95, "cei", "the checks passed again"),  # CEI's own resolutions do not count
        SimilarIncident(5, "e", 0.1, "ana.lima", "fixed"),  # too dissimilar
        SimilarIncident(6, "f", 0.6, "ana.lima", "fixed"),
    ]
    config = load_routing()
    assert suggest_assignee(similar, config)[0] == "sam.oduya"
    assert suggest_assignee(similar[:1] + similar[5:], config)[0] == "priya.raman"  # tie: the more similar
    assert suggest_assignee(similar[3:5], config) == (None, None)
    routing = routed([check("landing/executions", "value_range_fee")], asset_graph, similar=similar)
    assert routing.suggested_assignee == "sam.oduya"
    assert any("resolved 2 of the similar incidents" in r for r in routing.reasons)
