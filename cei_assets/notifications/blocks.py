"""Block Kit: what an alert, a thread reply and the digest look like in Slack.

Rendered from data only (an incident view, the digest's figures); the same blocks become
Markdown for the file fallback. Slack's limits are respected here, not discovered in
production: 50 blocks a message, 150 characters a header, 3000 a section, 10 fields of 2000.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from cei_assets.notifications.config import Policy

SEVERITY_ICON = {"P1": ":red_circle:", "P2": ":large_orange_circle:", "P3": ":large_yellow_circle:",
                 "P4": ":white_circle:", None: ":grey_question:"}
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_LISTED = 12  # assets named in a list before "and N more"
MAX_FAILURES = 6


def escape(text: Any) -> str:
    """Slack mrkdwn needs &, < and > escaped; everything else is shown as written."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listed(items: list[str] | None, none: str = "nothing") -> str:
    if items is None:
        return "unknown (no lineage impact computed)"
    if not items:
        return none
    shown = ", ".join(f"`{escape(i)}`" for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(float(timestamp), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def severity_label(severity: str | None) -> str:
    return severity or "severity unknown"


def alert_text(incident: dict) -> str:
    """The notification text (what phones and screen readers show) of the incident's alert."""
    state = {"acknowledged": " (acknowledged)", "resolved": " (resolved)"}.get(incident["status"], "")
    return f"[{severity_label(incident['severity'])}] CEI incident #{incident['id']}: {incident['title']}{state}"


def run_url(ui_url: str, run_id: str) -> str:
    return f"{ui_url}/runs/{quote(run_id)}"


def asset_url(ui_url: str, asset_key: str, partition: str | None = None) -> str:
    url = f"{ui_url}/assets/{quote(asset_key)}"
    return url + (f"?partition={quote(partition)}" if partition else "")


def alert_blocks(incident: dict, *, policy: Policy, ui_url: str) -> list[dict]:
    """The alert of an incident, in its current state (the same blocks serve chat.update)."""
    severity, status = incident["severity"], incident["status"]
    icon = ":white_check_mark:" if status == "resolved" else SEVERITY_ICON.get(severity, ":grey_question:")
    prefix = "Resolved · " if status == "resolved" else ""
    blocks: list[dict] = [{
        "type": "header",
        "text": {"type": "plain_text", "emoji": True,
                 "text": _cut(f"{icon} {prefix}{severity_label(severity)} · {incident['title']}", MAX_HEADER)},
    }]

    facts = [f"*Incident #{incident['id']}*", status]
    if incident["team"]:
        facts.append(f"team *{escape(incident['team'])}*")
    if incident["partition"]:
        facts.append(f"partition *{escape(incident['partition'])}*")
    blocks.append(_section(" · ".join(facts)))

    blocks.append(_section("*What failed*\n" + _failures_text(incident)))

    blocks.append({"type": "section", "fields": [
        {"type": "mrkdwn", "text": _cut(f"*Halted*\n{_listed(incident['halted'])}", MAX_FIELD)},
        {"type": "mrkdwn", "text": _cut(f"*Degraded*\n{_listed(incident['degraded'])}", MAX_FIELD)},
    ]})

    people = []
    if incident["owners"]:
        people.append("*Owners* " + " ".join(policy.mention(o) for o in incident["owners"]))
    oncall = (incident["routing"] or {}).get("oncall")
    if oncall:
        people.append("*On call* " + policy.mention(oncall))
    if people:
        blocks.append(_section(" · ".join(people)))

    summary = (incident["report"] or {}).get("summary")
    if summary:
        blocks.append(_section(f"*Summary*\n{escape(summary)}"))
    elif incident.get("describe_error"):
        blocks.append(_section("*Summary*\n_Not written: describing the incident failed; the facts above "
                               "are complete. `cei incidents show " + str(incident["id"]) + "` has more._"))

    if status == "acknowledged" and incident.get("acknowledged_by"):
        blocks.append(_context(f":eyes: Acknowledged by {escape(incident['acknowledged_by'])} "
                               f"at {_when(incident.get('acknowledged_at'))}"))
    if status == "resolved":
        who = "automatically" if incident.get("auto_resolved") else f"by {escape(incident.get('resolved_by') or '?')}"
        blocks.append(_section(f":white_check_mark: *Resolved* {who} at {_when(incident.get('resolved_at'))}: "
                               f"{escape(incident.get('resolution') or '')}"))

    buttons = _link_buttons(incident, ui_url)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})

    routing = incident["routing"] or {}
    footer = [f"CEI · opened {_when(incident.get('opened_at'))}"]
    if routing.get("runbook"):
        footer.append(f"runbook: {escape(routing['runbook'])}")
    if routing.get("suggested_assignee"):
        footer.append(f"suggested assignee: {escape(routing['suggested_assignee'])}")
    report = incident["report"] or {}
    if report.get("written_by"):
        footer.append("report by " + ("LLM" if report["written_by"] == "llm" else "template"))
    footer.append(f"`cei incidents show {incident['id']}`")
    blocks.append(_context(" · ".join(footer)))
    return blocks[:MAX_BLOCKS]


def _failures_text(incident: dict) -> str:
    failures = [f for f in incident["failures"] if f["recovered_at"] is None] or incident["failures"]
    if not failures:  # the list shape carries checks only
        return "\n".join(f"• `{escape(c)}`" for c in incident["checks"][:MAX_FAILURES]) or "_no failure details_"
    lines = []
    for f in failures[:MAX_FAILURES]:
        if f["kind"] == "check":
            what = f"`{escape(f['asset_key'])}` › `{escape(f['check_name'])}`"
            kind = "crashed" if f["crashed"] else ("warning" if f["warn_only"] else
                                                   ("blocking" if f["blocking"] else "non-blocking"))
        else:
            what = f"`{escape(f['step_key'] or f['run_id'])}`"
            kind = f["kind"].replace("_", " ")
        where = f"{escape(f['partition'])}, " if f["partition"] else ""
        lines.append(f"• {what} ({where}{kind}): {escape(f['description'])}")
    if len(failures) > MAX_FAILURES:
        lines.append(f"• and {len(failures) - MAX_FAILURES} more")
    return _cut("\n".join(lines), MAX_SECTION - 20)


def _link_buttons(incident: dict, ui_url: str) -> list[dict]:
    buttons = []
    if incident["run_ids"]:
        buttons.append(_button("Open the run", run_url(ui_url, incident["run_ids"][-1]), "run"))
    asset = next(iter(incident["assets"]), None)
    if asset:
        buttons.append(_button(f"Open {asset}", asset_url(ui_url, asset, incident["partition"]), "asset"))
    runbook = (incident["routing"] or {}).get("runbook")
    if runbook and str(runbook).startswith(("http://", "https://")):
        buttons.append(_button("Runbook", str(runbook), "runbook"))
    return buttons


def _button(label: str, url: str, action: str) -> dict:
    return {"type": "button", "text": {"type": "plain_text", "text": _cut(label, 75)}, "url": url,
            "action_id": f"cei_open_{action}"}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION)}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, MAX_SECTION)}]}


# ---------------------------------------------------------------------- thread replies

def reply_text(event: str, incident: dict, *, details: dict | None = None) -> str:
    """One line in the alert's thread saying what just happened to the incident."""
    details = details or {}
    if event == "acknowledged":
        return f":eyes: Acknowledged by {escape(incident.get('acknowledged_by') or 'someone')}."
    if event == "resolved":
        who = "automatically" if incident.get("auto_resolved") else f"by {escape(incident.get('resolved_by') or '?')}"
        return f":white_check_mark: Resolved {who}: {escape(incident.get('resolution') or '')}"
    if event == "merged":
        joined = details.get("failures") or []
        what = ", ".join(f"`{escape(c)}`" for c in joined[:MAX_LISTED]) if joined else "more failures"
        open_now = [f for f in incident["failures"] if f["recovered_at"] is None]
        count = f" ({len(open_now)} failing now)" if open_now else ""
        return f":heavy_plus_sign: Joined this incident: {what}{count}. The message above shows the current state."
    if event == "opened":  # re-sent after a suppressed repeat
        return f":repeat: {escape(details.get('note') or 'Opened again.')}"
    return escape(details.get("note") or event)


def repeat_text(incident: dict, window_seconds: float) -> str:
    return (f"The same checks failed again: incident #{incident['id']} ({severity_label(incident['severity'])}, "
            f"{incident['title']}). Not alerted anew: within the suppression window of "
            f"{_duration(window_seconds)}. `cei incidents show {incident['id']}`")


def _duration(seconds: float) -> str:
    if seconds % 86400 == 0:
        return f"{int(seconds // 86400)}d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


# ---------------------------------------------------------------------- Markdown for files

def blocks_to_markdown(blocks: list[dict]) -> str:
    """The blocks as Markdown, for the file fallback and the terminal."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines += [f"# {block['text']['text']}", ""]
        elif kind == "section":
            if block.get("text"):
                lines.append(_unescape(block["text"]["text"]))
            for item in block.get("fields") or []:
                lines.append(_unescape(item["text"]).replace("\n", ": ", 1))
            lines.append("")
        elif kind == "context":
            lines += ["_" + " ".join(_unescape(e.get("text", "")) for e in block.get("elements", [])) + "_", ""]
        elif kind == "actions":
            links = [f"[{e['text']['text']}]({e['url']})" for e in block.get("elements", []) if e.get("url")]
            lines += [" · ".join(links), ""]
        elif kind == "divider":
            lines += ["---", ""]
    return "\n".join(lines).rstrip() + "\n"


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
