"""Routing: the owning team, severity P1-P4, the on-call person, runbook, Slack channel and a
suggested assignee. Deterministic and configured in YAML (``config/routing.yaml``,
``config/oncall.yaml``; ``CEI_ROUTING_FILE`` and ``CEI_ONCALL_FILE`` point elsewhere).

Nothing here reads a model's words: severity comes from a matrix of what the failures do
(halt or only degrade) and the criticality of what they touch; the team from the owners of
the root assets; the on-call person from the team's rotation at the time of the failure.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cei_assets.incidents.config_files import IncidentConfigError, Section, config_path, load_mapping
from cei_assets.incidents.facts import Failure, Impact, Routing, SimilarIncident
from cei_assets.incidents.families import FAMILIES, check_family
from cei_assets.incidents.impact import CRITICALITY, halts

ROUTING_FILE_ENV = "CEI_ROUTING_FILE"
ONCALL_FILE_ENV = "CEI_ONCALL_FILE"
SEVERITIES = ("P1", "P2", "P3", "P4")
EFFECTS = ("halts", "degrades")


# --------------------------------------------------------------------------------------------
# routing.yaml


@dataclass(frozen=True)
class RoutingConfig:
    source: str
    default_team: str
    slack_channels: dict[str, str]  # team -> channel
    runbooks: dict[str, str]  # check family (or "default") -> link
    severity: dict[str, dict[str, str]]  # effect -> criticality -> P1..P4
    assignee_min_score: float = 0.3
    assignee_ignore: frozenset[str] = frozenset({"cei"})

    def runbook_for(self, family: str) -> str | None:
        return self.runbooks.get(family) or self.runbooks.get("default")


def load_routing(path: Path | str | None = None) -> RoutingConfig:
    path = Path(path) if path else config_path(ROUTING_FILE_ENV, "routing.yaml")
    top = Section(path, "", load_mapping(path))
    top.only("default_team", "teams", "runbooks", "severity", "suggested_assignee")

    teams = top.section("teams")
    channels: dict[str, str] = {}
    for team, _ in teams.items():
        entry = teams.section(str(team))
        entry.only("slack_channel")
        channels[str(team)] = entry.string("slack_channel")
    if not channels:
        raise IncidentConfigError(path, "teams", "names no team")
    default_team = top.string("default_team")
    if default_team not in channels:
        raise top.error("default_team", f"{default_team!r} is not one of the teams ({', '.join(sorted(channels))})")

    runbooks_section = top.section("runbooks")
    runbooks: dict[str, str] = {}
    for family, _ in runbooks_section.items():
        if family != "default" and family not in FAMILIES:
            raise runbooks_section.error(str(family), f"is not a check family (one of {', '.join(FAMILIES)}, default)")
        runbooks[str(family)] = runbooks_section.string(str(family))
    if "default" not in runbooks and set(FAMILIES) - set(runbooks):
        missing = sorted(set(FAMILIES) - set(runbooks))
        raise runbooks_section.error("default", f"is missing and these families have no runbook: {', '.join(missing)}")

    severity_section = top.section("severity")
    severity_section.only(*EFFECTS)
    matrix: dict[str, dict[str, str]] = {}
    for effect in EFFECTS:
        row = severity_section.section(effect)
        row.only(*CRITICALITY)
        matrix[effect] = {}
        for level in CRITICALITY:
            value = row.data.get(level)
            if value not in SEVERITIES:
                raise row.error(level, f"{value!r} is not one of {', '.join(SEVERITIES)}" if value is not None
                                else "is missing")
            matrix[effect][level] = value

    assignee = top.section("suggested_assignee", required=False)
    assignee.only("min_score", "ignore")
    min_score = assignee.number("min_score", default=0.3, minimum=0.0)
    if min_score > 1:
        raise assignee.error("min_score", f"must be at most 1, not {min_score}")
    ignore = assignee.strings("ignore", required=False) if "ignore" in assignee.data else ["cei"]
    return RoutingConfig(
        source=str(path), default_team=default_team, slack_channels=channels, runbooks=runbooks,
        severity=matrix, assignee_min_score=min_score, assignee_ignore=frozenset(ignore),
    )


# --------------------------------------------------------------------------------------------
# oncall.yaml


@dataclass(frozen=True)
class Rotation:
    team: str
    start: dt.datetime  # aware: the first handover
    people: tuple[str, ...]
    every_days: int = 7

    def on_call(self, at: dt.datetime) -> str | None:
        # Counted on the local wall clock: the handover stays at 09:00 across daylight saving.
        local = at.astimezone(self.start.tzinfo).replace(tzinfo=None)
        start = self.start.replace(tzinfo=None)
        if local < start:
            return None
        shifts = (local - start) // dt.timedelta(days=self.every_days)
        return self.people[shifts % len(self.people)]


@dataclass(frozen=True)
class Override:
    team: str
    person: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class OnCallConfig:
    source: str
    timezone: ZoneInfo
    rotations: dict[str, Rotation]
    overrides: tuple[Override, ...] = ()

    def on_call(self, team: str, at: dt.datetime) -> str | None:
        """Who is on call for ``team`` at ``at`` (an aware datetime); None when no one is."""
        if at.tzinfo is None:
            raise ValueError("on_call needs an aware datetime")
        for override in self.overrides:
            if override.team == team and override.start <= at < override.end:
                return override.person
        rotation = self.rotations.get(team)
        return rotation.on_call(at) if rotation else None


def load_oncall(path: Path | str | None = None) -> OnCallConfig:
    path = Path(path) if path else config_path(ONCALL_FILE_ENV, "oncall.yaml")
    top = Section(path, "", load_mapping(path))
    top.only("timezone", "handover", "rotations", "overrides")
    zone_name = top.string("timezone", required=False, default="UTC")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise top.error("timezone", f"{zone_name!r} is not a known time zone") from None
    handover_text = top.string("handover", required=False, default="09:00")
    try:
        handover = dt.time.fromisoformat(handover_text)
    except ValueError:
        raise top.error("handover", f"{handover_text!r} is not a time of day (HH:MM)") from None

    rotations: dict[str, Rotation] = {}
    section = top.section("rotations")
    for team, _ in section.items():
        entry = section.section(str(team))
        entry.only("start", "every_days", "people")
        start = _date(entry, "start")
        every = entry.data.get("every_days", 7)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise entry.error("every_days", f"must be a whole number of days, at least 1, not {every!r}")
        people = entry.strings("people", allow_empty=False)
        rotations[str(team)] = Rotation(
            team=str(team), start=dt.datetime.combine(start, handover, tzinfo=zone), people=tuple(people),
            every_days=every,
        )

    overrides = []
    raw_overrides = top.data.get("overrides") or []
    if not isinstance(raw_overrides, list):
        raise top.error("overrides", "must be a list")
    for index, raw in enumerate(raw_overrides):
        entry = Section(path, f"overrides[{index}]", raw)
        entry.only("team", "person", "from", "to")
        team = entry.string("team")
        if team not in rotations:
            raise entry.error("team", f"{team!r} has no rotation")
        start, end = _moment(entry, "from", zone), _moment(entry, "to", zone)
        if end <= start:
            raise entry.error("to", "must be after from")
        overrides.append(Override(team=team, person=entry.string("person"), start=start, end=end))
    return OnCallConfig(source=str(path), timezone=zone, rotations=rotations, overrides=tuple(overrides))


def _date(entry: Section, name: str) -> dt.date:
    value = entry.data.get(name)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise entry.error(name, f"must be a date (YYYY-MM-DD), not {value!r}" if value is not None else "is missing")


def _moment(entry: Section, name: str, zone: ZoneInfo) -> dt.datetime:
    value = entry.data.get(name)
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).strip()) if value is not None else None
        except ValueError:
            moment = None
        if moment is None:
            raise entry.error(name, f"must be a date and time (YYYY-MM-DD HH:MM), not {value!r}"
                              if value is not None else "is missing")
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


# --------------------------------------------------------------------------------------------
# Decisions


def severity_for(failures: Sequence[Failure], impact: Impact, config: RoutingConfig) -> tuple[str, str]:
    """(P1..P4, why) from the matrix: what the failures do x criticality of what they touch."""
    effect = "halts" if any(halts(f) for f in failures) else "degrades"
    criticality = impact.criticality if impact.criticality in CRITICALITY else "low"
    if effect == "halts" and not impact.root_assets:
        # A run that failed before saying which assets it stopped: fail closed.
        criticality = "critical"
        why_level = "its impact on the asset graph is unknown, so it counts as critical"
    else:
        touched = [*impact.root_assets, *(impact.halted if effect == "halts" else impact.degraded)]
        why_level = f"the most critical asset it touches is {criticality}"
        if touched:
            why_level += f" (among {_few(touched)})"
    severity = config.severity[effect][criticality]
    verb = "a blocking failure halts downstream assets" if effect == "halts" else "warnings only: nothing is halted"
    return severity, f"{severity}: {verb}; {why_level}"


def suggest_assignee(similar: Sequence[SimilarIncident], config: RoutingConfig) -> tuple[str | None, str | None]:
    """Who resolved the most of the similar incidents (ties: the higher total similarity)."""
    counts: Counter[str] = Counter()
    weight: defaultdict[str, float] = defaultdict(float)
    for incident in similar:
        who = (incident.resolved_by or "").strip()
        if not who or who in config.assignee_ignore or incident.score < config.assignee_min_score:
            continue
        counts[who] += 1
        weight[who] += incident.score
    if not counts:
        return None, None
    best = sorted(counts, key=lambda who: (-counts[who], -weight[who], who))[0]
    return best, f"suggested assignee {best}: resolved {counts[best]} of the similar incidents"


def route(
    failures: Sequence[Failure],
    impact: Impact,
    similar: Sequence[SimilarIncident],
    *,
    routing_config: RoutingConfig,
    oncall_config: OnCallConfig,
    at: dt.datetime | None = None,
    asset_graph=None,
) -> Routing:
    """The routing of an incident. ``at`` (the time of its first failure) picks the on-call person."""
    reasons: list[str] = []
    owning = impact.teams[0] if impact.teams else None
    team = owning or routing_config.default_team
    if owning:
        roots = ", ".join(impact.root_assets) or "the failing assets"
        reasons.append(f"team {team}: owns {roots}")
    else:
        reasons.append(f"team {team}: the default team (no failing asset names an owning team)")

    severity, why = severity_for(failures, impact, routing_config)
    reasons.append(why)

    channel = routing_config.slack_channels.get(team)
    if channel is None:
        channel = routing_config.slack_channels[routing_config.default_team]
        reasons.append(f"team {team} has no Slack channel in {routing_config.source}; "
                       f"using the default team's {channel}")

    when = at or dt.datetime.now(dt.timezone.utc)
    oncall = oncall_config.on_call(team, when)
    if oncall is None:
        reasons.append(f"no one is on call for {team} at {when.astimezone(oncall_config.timezone):%Y-%m-%d %H:%M %Z} "
                       f"in {oncall_config.source}")

    families = sorted({check_family(f, asset_graph) for f in failures}, key=_family_order(failures, asset_graph))
    family = families[0] if families else "default"
    runbook = routing_config.runbook_for(family)

    assignee, why_assignee = suggest_assignee(similar, routing_config)
    if why_assignee:
        reasons.append(why_assignee)
    return Routing(team=team, severity=severity, oncall=oncall, runbook=runbook, slack_channel=channel,
                   suggested_assignee=assignee, reasons=reasons)


def _family_order(failures: Sequence[Failure], asset_graph):
    """The runbook follows the failure that matters most: a halting one, then the first seen."""
    rank: dict[str, tuple[int, int]] = {}
    for index, failure in enumerate(failures):
        family = check_family(failure, asset_graph)
        candidate = (0 if halts(failure) else 1, index)
        rank[family] = min(rank.get(family, candidate), candidate)
    return lambda family: rank.get(family, (2, 0))


def _few(items: Sequence[str], limit: int = 4) -> str:
    items = list(dict.fromkeys(items))
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


__all__ = [
    "IncidentConfigError", "OnCallConfig", "Override", "Rotation", "RoutingConfig", "load_oncall", "load_routing",
    "route", "severity_for", "suggest_assignee",
]
