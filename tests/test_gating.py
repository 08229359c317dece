"""Fail-closed across runs: a failed blocking check holds the books until it passes or is overridden.

The fault is an FX cross pair inconsistent with its USD legs: blocking (a rate cannot be trusted)
yet safe to release, since the books value through the USD legs only, so after the override the
books build and every downstream check passes.
"""

import datetime as dt
import json

import pytest
from cei_cli import cei

from cei_assets.sample_data import generate_landing

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 10, 1)


@pytest.fixture(scope="module")
def failed_day(tmp_path_factory):
    root = tmp_path_factory.mktemp("gating")
    landing, home = root / "landing", root / "home"
    generate_landing(landing, DAY, 1, seed=21, symbols=8, quotes_per_symbol=120, orders_per_day=12,
                     fault="fx_cross_inconsistent", fault_date=DAY)
    first = cei("run", "--date", DAY.isoformat(), home=home, landing=landing)
    return {"landing": landing, "home": home, "first": first}


def status(failed_day):
    result = cei("status", "--date", DAY.isoformat(), "--json", home=failed_day["home"])
    return json.loads(result.stdout)


def materialized(report, key):
    return next(a["materialized"] for a in report["assets"] if a["key"] == key)


def test_an_inconsistent_fx_cross_fails_its_blocking_check_and_the_pnl_is_not_built(failed_day):
    assert failed_day["first"].returncode == 1
    assert "landing/fx_rates" in failed_day["first"].stdout
    report = status(failed_day)
    failed = [c for c in report["checks"] if c["passed"] is False and c["blocking"]]
    assert any(c["asset"] == "landing/fx_rates" and c["severity"] == "ERROR" for c in failed)
    assert not materialized(report, "daily_pnl")
    assert not materialized(report, "market_values")


def test_a_later_run_of_only_the_downstream_assets_is_refused_then_proceeds_after_an_override(failed_day):
    home, landing = failed_day["home"], failed_day["landing"]
    refused = cei("run", "--date", DAY.isoformat(), "--select", "group:staging+", home=home, landing=landing)
    assert refused.returncode == 1
    assert "refused to build 2026-10-01" in refused.stdout
    failed = [c for c in status(failed_day)["checks"]
              if c["passed"] is False and c["blocking"] and c["asset"] == "landing/fx_rates"]
    assert failed
    for check in failed:
        assert check["name"] in refused.stdout
        released = cei("override", "--date", DAY.isoformat(), "--check", check["name"], "--asset", check["asset"],
                       "--reason", "EURGBP is not used for valuation (USD legs are); vendor asked to resend",
                       home=home, extra_env={"CEI_OPERATOR": "ops.lead"})
        assert released.returncode == 0, released.stdout + released.stderr

    proceeded = cei("run", "--date", DAY.isoformat(), "--select", "group:staging+", home=home, landing=landing)
    assert proceeded.returncode == 0, proceeded.stdout
    report = status(failed_day)
    assert materialized(report, "daily_pnl")
    overridden = [c for c in report["checks"] if c["asset"] == "landing/fx_rates" and c["name"] == failed[0]["name"]]
    assert overridden[0]["passed"] is True
    assert overridden[0]["description"].startswith("OVERRIDDEN by ops.lead")
    assert overridden[0]["metadata"]["reason"].startswith("EURGBP is not used")


def test_an_override_of_a_check_that_did_not_fail_is_refused(failed_day):
    result = cei("override", "--date", DAY.isoformat(), "--check", "landing_file", "--asset", "landing/orders",
                 "--reason", "nothing to release", home=failed_day["home"])
    assert result.returncode == 2
    assert "nothing to override" in result.stderr
