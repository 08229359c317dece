"""The data-quality scorecard of one trading date: computed once, for the asset and the digest.

The ``data_quality_scorecard`` asset records these figures as numeric metadata (the Dagster
UI plots them across partitions) and the daily digest quotes the same ``Scorecard``. Where
each figure comes from, and the formulas, are in docs/notifications.md ("The scorecard").

- **Checks** of the date: the latest evaluation of every asset check for the partition, as
  ``cei status`` shows it (``cei_assets.status``); checks not evaluated are not counted.
- **Activity window** of trading date D: from D 00:00 to the next trading date 00:00, New York
  time; weekends and holidays belong to the trading date before them, so windows tile time
  without gaps or overlaps. Incidents opened and resolved are counted in it; "open" means
  open at its end (or now, if that is earlier).
- **Breaks**: ``reconciliation.recon_breaks`` of D in the warehouse, valued in USD at D's
  closing rates (``books.fx_rates_usd``) from each account's base currency.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from cei_assets import status as check_results
from cei_assets.trading_calendar import sessions

FIRM_TIMEZONE = "America/New_York"
SEVERITIES = ("P1", "P2", "P3", "P4")

# The quality score weighs a blocking check three times a warning: a failed blocking check
# holds the books, a warning concerns other consumers (README: "Blocking" and "warnings").
BLOCKING_WEIGHT = 3.0
WARNING_WEIGHT = 1.0

# Analyst time the automation replaces, in minutes (estimates; docs/notifications.md says why).
MINUTES_PER_CHECK = 2.0  # verifying one rule on one table of one day by hand
MINUTES_PER_BREAK = 15.0  # finding, classifying and valuing one reconciliation break by hand
MINUTES_PER_INCIDENT = 30.0  # triage: what broke, what it halts, who owns it, the first write-up
HOURS_SAVED_FORMULA = (
    f"(checks run × {MINUTES_PER_CHECK:g} min + breaks × {MINUTES_PER_BREAK:g} min "
    f"+ incidents opened × {MINUTES_PER_INCIDENT:g} min) / 60"
)


@dataclass
class Scorecard:
    date: dt.date
    window_start: float
    window_end: float
    checks_run: int = 0
    checks_passed: int = 0
    blocking_failed: int = 0
    warnings_failed: int = 0
    pass_share: float | None = None  # 0..1, None when no check ran
    quality_score: float | None = None  # 0..100
    incidents_opened: int = 0
    incidents_resolved: int = 0
    open_by_severity: dict[str, int] = field(default_factory=dict)  # P1..P4 and "unknown"
    mttd_minutes: float | None = None
    mttr_minutes: float | None = None
    breaks: int | None = None  # None: no reconciliation of the date in the warehouse
    pnl_breaks: int | None = None
    break_value_usd: float | None = None  # sum of |impact| of every break, in USD
    pnl_break_total_usd: float | None = None  # net P&L impact of the P&L breaks, in USD
    unvalued_breaks: int = 0  # breaks with an impact but no USD rate for their account's currency
    failed_checks: list[dict] = field(default_factory=list)  # asset, name, blocking, description

    @property
    def checks_failed(self) -> int:
        return self.blocking_failed + self.warnings_failed

    @property
    def open_incidents(self) -> int:
        return sum(self.open_by_severity.values())

    @property
    def analyst_hours_saved(self) -> float:
        minutes = (self.checks_run * MINUTES_PER_CHECK + (self.breaks or 0) * MINUTES_PER_BREAK
                   + self.incidents_opened * MINUTES_PER_INCIDENT)
        return round(minutes / 60.0, 2)

    @property
    def quiet(self) -> bool:
        """Checks ran and nothing needs a person: no failed check, no incident, no break. A day
        without any check result is not quiet: the daily run may not have happened."""
        return (self.checks_run > 0 and self.checks_failed == 0 and self.incidents_opened == 0 and self.open_incidents == 0
                and not self.breaks)

    def metadata(self) -> dict[str, Any]:
        """Numeric metadata for the Dagster UI's plots; a figure without a value is left out
        (a gap in the plot), never written as 0."""
        meta: dict[str, Any] = {
            "checks_run": dg.MetadataValue.int(self.checks_run),
            "checks_failed": dg.MetadataValue.int(self.checks_failed),
            "blocking_checks_failed": dg.MetadataValue.int(self.blocking_failed),
            "warnings": dg.MetadataValue.int(self.warnings_failed),
            "incidents_opened": dg.MetadataValue.int(self.incidents_opened),
            "incidents_resolved": dg.MetadataValue.int(self.incidents_resolved),
            "open_incidents": dg.MetadataValue.int(self.open_incidents),
            "analyst_hours_saved": dg.MetadataValue.float(self.analyst_hours_saved),
        }
        for severity in (*SEVERITIES, "unknown"):
            if severity != "unknown" or self.open_by_severity.get("unknown"):
                meta[f"open_incidents_{severity.lower()}"] = dg.MetadataValue.int(self.open_by_severity.get(severity, 0))
        optional = {
            "checks_passing_pct": None if self.pass_share is None else round(100.0 * self.pass_share, 2),
            "data_quality_score": self.quality_score,
            "mttd_minutes": self.mttd_minutes,
            "mttr_minutes": self.mttr_minutes,
            "break_value_usd": self.break_value_usd,
            "pnl_break_total_usd": self.pnl_break_total_usd,
        }
        for key, value in optional.items():
            if value is not None and math.isfinite(value):
                meta[key] = dg.MetadataValue.float(round(float(value), 2))
        if self.breaks is not None:
            meta["breaks"] = dg.MetadataValue.int(self.breaks)
            meta["pnl_breaks"] = dg.MetadataValue.int(self.pnl_breaks or 0)
        meta["formulas"] = dg.MetadataValue.md(self.formulas_markdown())
        return meta

    def formulas_markdown(self) -> str:
        start = _local(self.window_start)
        end = _local(self.window_end)
        lines = [
            f"Trading date {self.date}; incidents counted from {start} to {end} ({FIRM_TIMEZONE}).",
            "",
            "- checks_passing_pct = checks passed / checks run × 100",
            f"- data_quality_score = 100 × Σ weight × passed / Σ weight (blocking {BLOCKING_WEIGHT:g}, "
            f"warning {WARNING_WEIGHT:g})",
            "- mttd_minutes = mean(incident opened − start of the run that revealed its first failure)",
            "- mttr_minutes = mean(incident resolved − incident opened), incidents resolved in the window",
            "- break_value_usd = Σ |impact_base| × USD rate of the account's base currency; "
            "pnl_break_total_usd = Σ impact_base of the breaks that explain P&L",
            f"- analyst_hours_saved = {HOURS_SAVED_FORMULA}",
        ]
        if self.breaks is None:
            lines.append("\nNo reconciliation of this date in the warehouse: breaks not counted.")
        if self.unvalued_breaks:
            lines.append(f"\n{self.unvalued_breaks} break(s) with no USD rate for their account's currency "
                         "are counted but not valued.")
        return "\n".join(lines)


def asset_graph_of(context) -> Any:
    """The code location's asset graph, from an asset or op context.

    Every run a deployment launches (schedule, UI, daemon) is reconstructed from its code
    location and knows it. A job executed detached from it (``dg.materialize``) knows only its
    own assets, and would count a fraction of the checks as if they were all: refused, saying so.
    """
    try:
        return context.repository_def.asset_graph
    except Exception:  # "No repository definition was set on the step context"
        raise dg.DagsterInvariantViolationError(
            "the scorecard and the digest count the checks of their whole code location, and this run "
            "was not started from one: launch it from the code location (its schedule, the Dagster UI, "
            "`dagster job launch`) or use `cei digest --date D`"
        ) from None


def activity_window(day: dt.date, calendar: str | None = None) -> tuple[float, float]:
    """[D 00:00, next trading date 00:00) in New York time, as unix seconds."""
    all_sessions = sessions(calendar)
    i = bisect.bisect_right(all_sessions, day)
    following = all_sessions[i] if i < len(all_sessions) else day + dt.timedelta(days=1)
    zone = ZoneInfo(FIRM_TIMEZONE)
    start = dt.datetime.combine(day, dt.time(0), zone).timestamp()
    end = dt.datetime.combine(following, dt.time(0), zone).timestamp()
    return start, end


def compute_scorecard(day: dt.date, *, instance: dg.DagsterInstance, asset_graph, store=None, warehouse=None,
                      now: float | None = None) -> Scorecard:
    """Every figure of trading date ``day``. ``store``: the incident store (None: no incident
    figures); ``warehouse``: the WarehouseResource (None: no break figures)."""
    now = time.time() if now is None else now
    start, end = activity_window(day)
    card = Scorecard(date=day, window_start=start, window_end=end)
    _check_figures(card, check_results.check_status(instance, asset_graph, day))
    if store is not None:
        _incident_figures(card, store, instance, min(end, now))
    if warehouse is not None:
        _break_figures(card, warehouse)
    return card


def _check_figures(card: Scorecard, rows: list[dict]) -> None:
    weight_total = weight_passed = 0.0
    for row in rows:
        if row["passed"] is None:
            continue  # not evaluated for the date (not run, still planned, or halted upstream)
        card.checks_run += 1
        weight = BLOCKING_WEIGHT if row["blocking"] else WARNING_WEIGHT
        weight_total += weight
        if row["passed"]:
            card.checks_passed += 1
            weight_passed += weight
            continue
        if row["blocking"] and row.get("severity") != "WARN":
            card.blocking_failed += 1
        else:
            card.warnings_failed += 1
        card.failed_checks.append({"asset": row["asset"], "name": row["name"], "blocking": row["blocking"],
                                   "severity": row.get("severity"), "description": row.get("description") or ""})
    if card.checks_run:
        card.pass_share = card.checks_passed / card.checks_run
        card.quality_score = round(100.0 * weight_passed / weight_total, 2)


def _incident_figures(card: Scorecard, store, instance: dg.DagsterInstance, at: float) -> None:
    from cei_assets.incidents import db

    incidents, failures = db.incidents, db.incident_failures
    start, end = card.window_start, card.window_end
    with store.engine.connect() as conn:
        opened = conn.execute(
            sa.select(incidents.c.id, incidents.c.opened_at)
            .where(incidents.c.opened_at >= start, incidents.c.opened_at < end)
        ).all()
        resolved = conn.execute(
            sa.select(incidents.c.opened_at, incidents.c.resolved_at)
            .where(incidents.c.resolved_at >= start, incidents.c.resolved_at < end)
        ).all()
        open_at = conn.execute(
            sa.select(incidents.c.severity, sa.func.count())
            .where(incidents.c.opened_at < at,
                   sa.or_(incidents.c.resolved_at.is_(None), incidents.c.resolved_at >= at))
            .group_by(incidents.c.severity)
        ).all()
        first_failures = {}
        if opened:
            for incident_id, run_id, evaluated_at in conn.execute(
                sa.select(failures.c.incident_id, failures.c.run_id, failures.c.evaluated_at)
                .where(failures.c.incident_id.in_([r.id for r in opened]))
                .order_by(failures.c.incident_id, failures.c.id)
            ):
                first_failures.setdefault(incident_id, (run_id, evaluated_at))
    card.incidents_opened = len(opened)
    card.incidents_resolved = len(resolved)
    card.open_by_severity = {s: 0 for s in SEVERITIES}
    for severity, count in open_at:
        key = severity if severity in SEVERITIES else "unknown"
        card.open_by_severity[key] = card.open_by_severity.get(key, 0) + int(count)
    if resolved:
        card.mttr_minutes = round(sum(r.resolved_at - r.opened_at for r in resolved) / len(resolved) / 60.0, 2)
    starts = _run_starts(instance, [run for run, _ in first_failures.values() if run])
    detect = []
    for row in opened:
        run_id, evaluated_at = first_failures.get(row.id, (None, None))
        began = starts.get(run_id) or evaluated_at  # no run record: from the failure's evaluation
        if began:
            detect.append(max(0.0, row.opened_at - began))
    if detect:
        card.mttd_minutes = round(sum(detect) / len(detect) / 60.0, 2)


def _run_starts(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, float]:
    run_ids = list(dict.fromkeys(run_ids))
    if not run_ids:
        return {}
    records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    return {r.dagster_run.run_id: r.start_time or r.create_timestamp.timestamp() for r in records}


def _break_figures(card: Scorecard, warehouse) -> None:
    with warehouse.read() as conn:
        if not _table_exists(conn, "reconciliation", "recon_breaks"):
            return
        has_rates = _table_exists(conn, "books", "fx_rates_usd") and _table_exists(conn, "reconciliation", "recon_pnl")
        if has_rates:
            row = conn.execute(
                """
                SELECT count(*),
                       count(*) FILTER (WHERE b.explains_pnl),
                       sum(abs(b.impact_base) * fx.usd_per_unit),
                       sum(b.impact_base * fx.usd_per_unit) FILTER (WHERE b.explains_pnl),
                       count(*) FILTER (WHERE coalesce(b.impact_base, 0) <> 0 AND fx.usd_per_unit IS NULL)
                FROM reconciliation.recon_breaks AS b
                LEFT JOIN (SELECT DISTINCT business_date, account, base_currency FROM reconciliation.recon_pnl) AS p
                       ON p.business_date = b.business_date AND p.account = b.account
                LEFT JOIN books.fx_rates_usd AS fx
                       ON fx.business_date = b.business_date AND fx.currency = p.base_currency
                WHERE b.business_date = ?
                """, [card.date]).fetchone()
        else:
            row = conn.execute(
                """
                SELECT count(*), count(*) FILTER (WHERE explains_pnl), NULL, NULL,
                       count(*) FILTER (WHERE coalesce(impact_base, 0) <> 0)
                FROM reconciliation.recon_breaks WHERE business_date = ?
                """, [card.date]).fetchone()
    total, pnl, value, pnl_total, unvalued = row
    card.breaks, card.pnl_breaks = int(total), int(pnl)
    card.break_value_usd = float(value or 0.0)
    card.pnl_break_total_usd = float(pnl_total or 0.0)
    card.unvalued_breaks = int(unvalued or 0)


def _table_exists(conn, schema: str, table: str) -> bool:
    return bool(conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchone()[0])


def _local(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, ZoneInfo(FIRM_TIMEZONE)).strftime("%Y-%m-%d %H:%M")
