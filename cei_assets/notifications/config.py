"""Notification settings: where messages are delivered (environment) and when (``notifications.yaml``).

Delivery is chosen by the environment alone, so no data leaves the firm unless an operator
configures it:

- ``CEI_SLACK_BOT_TOKEN``: the Slack Web API with a bot token (``chat.postMessage``,
  ``chat.update``, threads); ``CEI_SLACK_API_URL`` is its base URL (Slack's by default).
- else ``CEI_SLACK_WEBHOOK_URL``: an incoming webhook (posts only; it cannot edit a message).
- else files under ``$CEI_HOME/notifications/`` and stdout.

``CEI_DAGSTER_UI_URL`` is the Dagster UI the messages link to (``cei ui``'s address by default).
The policy (what goes at once, quiet hours, suppression windows, mentions, the digest's
channel) is data in ``config/notifications.yaml``; ``CEI_NOTIFICATIONS_FILE`` points elsewhere.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cei_assets import settings as cei_settings
from cei_assets.incidents.config_files import IncidentConfigError, Section, load_mapping

CONFIG_FILE = Path(__file__).resolve().parent / "config" / "notifications.yaml"
CONFIG_FILE_ENV = "CEI_NOTIFICATIONS_FILE"
SEVERITIES = ("P1", "P2", "P3", "P4")
SLACK_API_URL = "https://slack.com/api/"
DAGSTER_UI_URL = "http://127.0.0.1:3000"  # where `cei ui` serves

SLACK_API = "slack_api"
WEBHOOK = "webhook"
FILES = "files"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 60.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}  # a bare number is minutes
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class NotificationConfigError(ValueError):
    """The notification settings cannot be used; the message names the variable or file and key."""


@dataclass(frozen=True)
class QuietHours:
    start: dt.time
    end: dt.time
    timezone: str
    allow: frozenset[str]

    def hold_until(self, severity: str | None, now: float) -> float | None:
        """When a message of ``severity`` may go, if ``now`` is in quiet hours and it must wait."""
        if severity is None or severity in self.allow:
            return None  # unknown severity is treated as the most severe: it never waits
        zone = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(now, zone)
        start = local.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if self.start <= self.end:  # e.g. 12:00-14:00, within one day
            quiet = start <= local < end
        else:  # across midnight, e.g. 22:00-06:30
            quiet = local >= start or local < end
            if local >= start:
                end += dt.timedelta(days=1)
        if not quiet:
            return None
        # Aware arithmetic on one zone is wall-clock arithmetic: 06:30 stays 06:30 across DST.
        return end.timestamp()


@dataclass(frozen=True)
class Policy:
    source: str
    immediate: frozenset[str] = frozenset({"P1", "P2"})
    default_channel: str = "#cei-alerts"
    digest_channel: str = "#cei-digest"
    digest_sample_rows: int = 5
    quiet_hours: QuietHours | None = None
    suppress_default_seconds: float = 4 * 3600.0
    suppress_teams: dict[str, float] = field(default_factory=dict)
    suppress_checks: dict[str, float] = field(default_factory=dict)
    mentions: dict[str, str] = field(default_factory=dict)

    def is_immediate(self, severity: str | None) -> bool:
        return severity is None or severity in self.immediate

    def suppression_seconds(self, check_id: str, team: str | None) -> float:
        if check_id in self.suppress_checks:
            return self.suppress_checks[check_id]
        if team and team in self.suppress_teams:
            return self.suppress_teams[team]
        return self.suppress_default_seconds

    def mention(self, name: str) -> str:
        """A Slack mention for an owner or person: configured id, else plain text."""
        target = self.mentions.get(name) or self.mentions.get(name.removeprefix("team:"))
        if not target:
            return f"@{name.removeprefix('team:')}"
        if re.fullmatch(r"[UW][A-Z0-9]{2,}", target):
            return f"<@{target}>"
        if re.fullmatch(r"S[A-Z0-9]{2,}", target):
            return f"<!subteam^{target}>"
        return target


@dataclass(frozen=True)
class NotificationSettings:
    """Everything notify(), the outbox and the digest need, resolved once."""

    policy: Policy
    slack_bot_token: str | None = None
    slack_webhook_url: str | None = None
    slack_api_url: str = SLACK_API_URL
    dagster_ui_url: str = DAGSTER_UI_URL
    timeout_seconds: float = 10.0
    # Retry-After up to this long is waited for in the same call; a longer one is honoured by
    # the outbox (the message is not tried again before it), so a sensor tick never stalls.
    max_retry_wait_seconds: float = 10.0
    output_dir: Path = field(default_factory=lambda: cei_settings.cei_home() / "notifications")
    echo_stdout: bool = True

    @property
    def transport(self) -> str:
        if self.slack_bot_token:
            return SLACK_API
        if self.slack_webhook_url:
            return WEBHOOK
        return FILES

    @classmethod
    def from_environment(cls, policy_file: Path | str | None = None) -> NotificationSettings:
        env = os.environ
        api_url = env.get("CEI_SLACK_API_URL", "").strip() or SLACK_API_URL
        if not api_url.startswith(("http://", "https://")):
            raise NotificationConfigError(f"CEI_SLACK_API_URL must be an http(s) URL, not {api_url!r}")
        webhook = env.get("CEI_SLACK_WEBHOOK_URL", "").strip() or None
        if webhook and not webhook.startswith(("http://", "https://")):
            raise NotificationConfigError("CEI_SLACK_WEBHOOK_URL must be an http(s) URL")  # never echo a secret URL
        ui_url = env.get("CEI_DAGSTER_UI_URL", "").strip() or DAGSTER_UI_URL
        return cls(
            policy=load_policy(policy_file),
            slack_bot_token=env.get("CEI_SLACK_BOT_TOKEN", "").strip() or None,
            slack_webhook_url=webhook,
            slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
            dagster_ui_url=ui_url.rstrip("/"),
            timeout_seconds=_seconds_env("CEI_SLACK_TIMEOUT", 10.0),
            max_retry_wait_seconds=_seconds_env("CEI_SLACK_MAX_RETRY_WAIT", 10.0),
            output_dir=cei_settings.cei_home() / "notifications",
        )


def _seconds_env(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise NotificationConfigError(f"{name} must be a number of seconds >= 0, not {text!r}")
    return value


def parse_duration(text: object) -> float:
    """Seconds from ``90s``, ``30m``, ``4h``, ``2d`` or a bare number of minutes; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration (e.g. 90s, 30m, 4h, 2d): {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def load_policy(path: Path | str | None = None) -> Policy:
    explicit = os.environ.get(CONFIG_FILE_ENV, "").strip()
    path = Path(path) if path else (Path(explicit).expanduser().resolve() if explicit else CONFIG_FILE)
    try:
        return _parse_policy(path)
    except IncidentConfigError as error:
        raise NotificationConfigError(str(error)) from None


def _parse_policy(path: Path) -> Policy:
    top = Section(path, "", load_mapping(path))
    top.only("immediate", "default_channel", "digest", "quiet_hours", "suppression", "mentions")
    immediate = _severities(top, "immediate", default=["P1", "P2"])

    digest = top.section("digest", required=False)
    digest.only("channel", "sample_rows")
    sample_rows = digest.number("sample_rows", default=5, minimum=0)

    quiet = None
    if top.data.get("quiet_hours"):
        section = top.section("quiet_hours")
        section.only("start", "end", "timezone", "allow")
        zone = section.string("timezone", required=False, default="America/New_York")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise section.error("timezone", f"{zone!r} is not a time zone (e.g. America/New_York)") from None
        quiet = QuietHours(_clock(section, "start"), _clock(section, "end"), zone,
                           frozenset(_severities(section, "allow", default=["P1"])))

    suppression = top.section("suppression", required=False)
    suppression.only("default", "teams", "checks")
    default_window = _duration(suppression, "default", suppression.data.get("default", "4h"))
    windows = {}
    for kind in ("teams", "checks"):
        entries = suppression.section(kind, required=False)
        windows[kind] = {str(name): _duration(entries, str(name), value) for name, value in entries.items()}

    mentions = top.section("mentions", required=False)
    return Policy(
        source=str(path),
        immediate=frozenset(immediate),
        default_channel=top.string("default_channel", required=False, default="#cei-alerts"),
        digest_channel=digest.string("channel", required=False, default="#cei-digest"),
        digest_sample_rows=int(sample_rows),
        quiet_hours=quiet,
        suppress_default_seconds=default_window,
        suppress_teams=windows["teams"],
        suppress_checks=windows["checks"],
        mentions={str(name): mentions.string(str(name)) for name, _ in mentions.items()},
    )


def _severities(section: Section, name: str, default: list[str]) -> list[str]:
    values = section.strings(name, required=False) if name in section.data else default
    unknown = [v for v in values if v not in SEVERITIES]
    if unknown:
        raise section.error(name, f"{unknown[0]!r} is not one of {', '.join(SEVERITIES)}")
    return values


def _clock(section: Section, name: str) -> dt.time:
    text = section.string(name)
    match = _CLOCK.match(text)
    if not match:
        raise section.error(name, f"{text!r} is not a time of day HH:MM")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _duration(section: Section, name: str, value: object) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise section.error(name, str(error)) from None
