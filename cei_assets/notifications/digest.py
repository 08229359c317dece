"""The daily digest: what yesterday's trading date did, once a morning, to one channel.

Counters (checks run and failed, incidents opened and resolved, P&L breaks and their total)
are the scorecard's figures, computed by the same function as the ``data_quality_scorecard``
asset; then a section per team, the open incidents ranked by severity (the P3 and P4 that did
not alert at once are here), and a small table of failing sample rows where the message has
room. A quiet day says so in one line.

The ``daily_digest`` job sends it for one trading date; ``daily_digest_schedule`` requests it
at 07:00 New York on trading days for the previous trading date. It goes through the outbox
keyed ``digest:<date>``: a second tick, a retried run or ``cei digest --send`` for a date
already sent adds nothing.
"""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from cei_assets.incidents.store import IncidentStoreResource
from cei_assets.notifications import blocks as render
from cei_assets.notifications.config import NotificationSettings, Policy
from cei_assets.notifications.incident_view import incident_view
from cei_assets.notifications.outbox import DIGEST, Message, Outbox
from cei_assets.scorecard import FIRM_TIMEZONE, Scorecard, asset_graph_of, compute_scorecard
from cei_assets.trading_calendar import is_trading_day, parse_trading_day, previous_trading_day
from cei_assets.warehouse import WarehouseResource

DIGEST_JOB = "daily_digest"
SEVERITY_RANK = {None: 0, "P1": 1, "P2": 2, "P3": 3, "P4": 4}  # unknown first: fail closed
MAX_SAMPLE_COLUMNS = 5
MAX_CELL = 14
MAX_INCIDENTS_LISTED = 15


@dataclass
class TeamSection:
    team: str
    opened: int = 0
    resolved: int = 0
    open: list[dict] = field(default_factory=list)
    failed_checks: list[dict] = field(default_factory=list)


@dataclass
class Digest:
    date: dt.date
    card: Scorecard
    open_incidents: list[dict]  # incident views, ranked by severity then age
    teams: list[TeamSection]

    @property
    def quiet(self) -> bool:
        return self.card.quiet and not self.open_incidents

    def dedupe_key(self) -> str:
        return f"digest:{self.date.isoformat()}"


def build_digest(day: dt.date, *, instance: dg.DagsterInstance, asset_graph, store, warehouse=None,
                 now: float | None = None) -> Digest:
    card = compute_scorecard(day, instance=instance, asset_graph=asset_graph, store=store, warehouse=warehouse,
                             now=now)
    active = [incident_view(i) for i in store.active_incidents()]
    active.sort(key=lambda i: (SEVERITY_RANK.get(i["severity"], 5), i["opened_at"] or 0))

    teams: dict[str, TeamSection] = {}

    def team(name: str | None) -> TeamSection:
        name = name or "unassigned"
        return teams.setdefault(name, TeamSection(name))

    for incident in active:
        team(incident["team"]).open.append(incident)
    for incident in store.list_incidents():
        if card.window_start <= incident.opened_at < card.window_end:
            team(incident.team).opened += 1
        if incident.resolved_at is not None and card.window_start <= incident.resolved_at < card.window_end:
            team(incident.team).resolved += 1
    for failed in card.failed_checks:
        team(_owning_team(asset_graph, failed["asset"])).failed_checks.append(failed)
    ordered = sorted(teams.values(), key=lambda t: (t.team == "unassigned", t.team))
    return Digest(date=day, card=card, open_incidents=active, teams=ordered)


def _owning_team(asset_graph, asset: str) -> str | None:
    try:
        owners = asset_graph.get(dg.AssetKey.from_user_string(asset)).owners
    except Exception:
        return None
    return next((o.removeprefix("team:") for o in owners if o.startswith("team:")), None)


# ---------------------------------------------------------------------- rendering

def quiet_line(digest: Digest) -> str:
    return (f"Quiet day on {digest.date}: {digest.card.checks_run} checks passed, no incidents, no breaks, "
            "nothing open.")


def digest_text(digest: Digest) -> str:
    if digest.quiet:
        return quiet_line(digest)
    c = digest.card
    return (f"CEI daily digest {digest.date}: {c.checks_failed} of {c.checks_run} checks failed, "
            f"{c.incidents_opened} incident(s) opened, {c.incidents_resolved} resolved, "
            f"{len(digest.open_incidents)} open, {c.breaks if c.breaks is not None else 'no'} break(s)")


def digest_blocks(digest: Digest, *, policy: Policy, ui_url: str) -> list[dict]:
    if digest.quiet:
        return [_section(quiet_line(digest))]
    c = digest.card
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"CEI daily digest · {digest.date}"}},
        _section("\n".join(_counter_lines(c))),
    ]
    for team in digest.teams:
        blocks.append({"type": "divider"})
        blocks.append(_section(_team_text(team)))
    if digest.open_incidents:
        blocks.append({"type": "divider"})
        blocks.append(_section(_open_text(digest.open_incidents)))
        for table in _sample_tables(digest.open_incidents, policy.digest_sample_rows):
            if len(blocks) >= render.MAX_BLOCKS - 2:
                break  # no room left: the incident's own page has the rows
            blocks.append(_section(table))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"Figures as on the `data_quality_scorecard` asset ({ui_url}/assets/data_quality_scorecard) · "
        f"incidents counted {render.escape(_window(c))} · `cei digest --date {digest.date}`")}]})
    return blocks[: render.MAX_BLOCKS]


def _counter_lines(c: Scorecard) -> list[str]:
    checks = f"*Checks* {c.checks_run} run · {c.checks_failed} failed ({c.blocking_failed} blocking, " \
             f"{c.warnings_failed} warnings)"
    if c.pass_share is not None:
        checks += f" · {100 * c.pass_share:.1f}% passing · data-quality score {c.quality_score:.1f}"
    severities = " · ".join(f"{s} {c.open_by_severity.get(s, 0)}" for s in ("P1", "P2", "P3", "P4"))
    if c.open_by_severity.get("unknown"):
        severities += f" · unknown {c.open_by_severity['unknown']}"
    incidents = f"*Incidents* {c.incidents_opened} opened · {c.incidents_resolved} resolved · open: {severities}"
    if c.breaks is None:
        breaks = "*Breaks* no reconciliation of this date in the warehouse"
    else:
        breaks = (f"*Breaks* {c.breaks} ({c.pnl_breaks} P&L breaks, net P&L impact "
                  f"{_money(c.pnl_break_total_usd)} USD) · value {_money(c.break_value_usd)} USD")
        if c.unvalued_breaks:
            breaks += f" · {c.unvalued_breaks} not valued (no USD rate)"
    times = (f"*Time to detect* {_minutes(c.mttd_minutes)} · *to resolve* {_minutes(c.mttr_minutes)} · "
             f"*analyst hours saved* ≈ {c.analyst_hours_saved:g} h")
    lines = [checks, incidents, breaks, times]
    if c.checks_run == 0:
        lines.insert(0, f":warning: *No check ran for this date*: did the daily run happen? (`cei status --date {c.date}`)")
    return lines


def _team_text(team: TeamSection) -> str:
    lines = [f"*{render.escape(team.team)}* · {team.opened} opened · {team.resolved} resolved · "
             f"{len(team.open)} open"]
    for failed in team.failed_checks[:8]:
        kind = "blocking" if failed["blocking"] and failed.get("severity") != "WARN" else "warning"
        lines.append(f"• `{render.escape(failed['asset'])}` › `{render.escape(failed['name'])}` ({kind}): "
                     f"{render.escape(failed['description'])}")
    if len(team.failed_checks) > 8:
        lines.append(f"• and {len(team.failed_checks) - 8} more failed checks")
    return "\n".join(lines)


def _open_text(incidents: list[dict]) -> str:
    lines = ["*Open incidents, most severe first*"]
    for incident in incidents[:MAX_INCIDENTS_LISTED]:
        age = f"since {render._when(incident['opened_at'])}"
        ack = f", acknowledged by {render.escape(incident['acknowledged_by'])}" if incident["status"] == "acknowledged" else ""
        lines.append(f"• {render.severity_label(incident['severity'])} #{incident['id']} "
                     f"{render.escape(incident['title'])} — {render.escape(incident['team'] or 'no team')}, {age}{ack}")
    if len(incidents) > MAX_INCIDENTS_LISTED:
        lines.append(f"• and {len(incidents) - MAX_INCIDENTS_LISTED} more (`cei incidents list`)")
    return "\n".join(lines)


def _sample_tables(incidents: list[dict], rows_wanted: int) -> list[str]:
    """Failing sample rows of the most severe open incidents, as small monospace tables."""
    if rows_wanted <= 0:
        return []
    tables = []
    for incident in incidents[:3]:
        for failure in incident["failures"]:
            sample = failure["metadata"].get("sample_failing_rows")
            if not isinstance(sample, list) or not sample or not all(isinstance(r, dict) for r in sample):
                continue
            columns = [c for c in sample[0] if c not in ("file", "line")][:MAX_SAMPLE_COLUMNS] or list(sample[0])[:MAX_SAMPLE_COLUMNS]
            table = _table(columns, sample[:rows_wanted])
            title = (f"Failing rows of #{incident['id']}: `{render.escape(failure['check_id'])}` "
                     f"({min(rows_wanted, len(sample))} of {failure['metadata'].get('failing_count', len(sample))})")
            text = f"{title}\n```\n{render.escape(table)}\n```"
            if len(text) <= 2000:
                tables.append(text)
            break  # one table per incident
    return tables


def _table(columns: list[str], rows: list[dict]) -> str:
    def cell(value) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"

    cells = [[cell(c) for c in columns]] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:,.2f}"
    return "0.00" if text == "-0.00" else text


def _minutes(value: float | None) -> str:
    return "-" if value is None else f"{value:g} min"


def _window(c: Scorecard) -> str:
    zone = ZoneInfo(FIRM_TIMEZONE)
    start = dt.datetime.fromtimestamp(c.window_start, zone).strftime("%Y-%m-%d %H:%M")
    end = dt.datetime.fromtimestamp(c.window_end, zone).strftime("%Y-%m-%d %H:%M")
    return f"{start} to {end} New York"


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[: render.MAX_SECTION]}}


# ---------------------------------------------------------------------- sending

@dataclass
class DigestOutcome:
    digest: Digest
    enqueued: bool  # False: this date's digest was already in the outbox (sent or waiting)
    delivered: bool
    status: str  # what happened, in words


def send_digest(digest: Digest, *, store, settings: NotificationSettings | None = None) -> DigestOutcome:
    """Put the date's digest in the outbox (once per date) and try to deliver it."""
    from cei_assets.notifications.dispatch import flush_outbox

    settings = settings or NotificationSettings.from_environment()
    outbox = Outbox(store.engine)
    message = Message(
        dedupe_key=digest.dedupe_key(), kind=DIGEST, event="digest", channel=settings.policy.digest_channel,
        text=digest_text(digest), blocks=digest_blocks(digest, policy=settings.policy, ui_url=settings.dagster_ui_url),
    )
    enqueued = bool(outbox.enqueue([message]))
    flushed = flush_outbox(store_engine=store.engine, settings=settings)
    row = outbox.rows(dedupe_key=digest.dedupe_key())[0]
    delivered = row.status == "delivered"
    if not enqueued:
        status = f"the digest of {digest.date} was already {'sent' if delivered else 'queued'}: not sent again"
    elif delivered:
        status = f"the digest of {digest.date} was delivered ({row.delivered_via})"
    else:
        status = (f"the digest of {digest.date} is waiting in the outbox ({row.last_error or flushed.summary()}); "
                  "the incident sensor's next tick or `cei notify flush` delivers it")
    return DigestOutcome(digest, enqueued, delivered, status)


# ---------------------------------------------------------------------- Dagster job and schedule

class DigestConfig(dg.Config):
    date: str = Field(description="The trading date the digest reports (YYYY-MM-DD).")


@dg.op(description="Builds the daily digest of one trading date and sends it once (outbox key digest:<date>).")
def send_daily_digest(
    context: dg.OpExecutionContext, config: DigestConfig, warehouse: WarehouseResource,
    incidents: IncidentStoreResource,
) -> None:
    day = parse_trading_day(config.date)
    store = incidents.store()
    digest = build_digest(day, instance=context.instance, asset_graph=asset_graph_of(context),
                          store=store, warehouse=warehouse)
    outcome = send_digest(digest, store=store)
    if outcome.enqueued and not outcome.delivered:
        context.log.warning(outcome.status)
    else:
        context.log.info(outcome.status)


@dg.job(name=DIGEST_JOB, description="Sends the daily digest of one trading date (once per date).",
        executor_def=dg.in_process_executor)
def daily_digest_job():
    send_daily_digest()


@dg.schedule(
    job=daily_digest_job,
    cron_schedule="0 7 * * 1-5",
    execution_timezone="America/New_York",
    description="The digest of the previous trading date, each trading morning at 07:00 New York.",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_digest_schedule(context: dg.ScheduleEvaluationContext):
    return digest_request(context.scheduled_execution_time)


def digest_request(when: dt.datetime):
    """The run a tick at ``when`` asks for: the previous trading date's digest, keyed by that date."""
    today = when.astimezone(ZoneInfo("America/New_York")).date()
    if not is_trading_day(today):
        return dg.SkipReason(f"{today} is not a trading day: the digest of the day before goes the next trading morning")
    day = previous_trading_day(today)
    return dg.RunRequest(
        run_key=f"digest-{day.isoformat()}",
        run_config={"ops": {"send_daily_digest": {"config": {"date": day.isoformat()}}}},
        tags={"cei/digest_date": day.isoformat()},
    )
