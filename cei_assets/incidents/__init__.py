"""Incidents: from failed checks to a routed, explained, audited incident.

The modules, by what they hold:

- ``facts``      the shapes every part agrees on (a failure, its impact, its routing, a report)
- ``db``         the incident store's engine and URL (SQLite next to the Dagster instance by
                 default, PostgreSQL by ``CEI_INCIDENTS_URL``); migrations with Alembic
- ``store``      incidents and their lifecycle (open, acknowledged, resolved), the audit log,
                 the LLM response cache and spend ledger
- ``grouping``   which failures are one incident (same run, same root asset, cascades)
- ``impact``     halted / degraded / unaffected assets from the Dagster asset graph
- ``routing``    team, severity P1-P4, on-call, runbook, Slack channel, suggested assignee
- ``similar``    similar past incidents, ranked, offline
- ``compose``    ``describe_incident``: impact, routing, similar incidents and the report of a group
- ``reports``    the evidence and the incident report: LLM or template, same sections
- ``llm``        the Anthropic Messages API settings and the validation of its answer
- ``redaction``  what never leaves the firm in a prompt
- ``families``   the check family of a failure (landing file, row rules, market data, ...)
- ``config``     routing, on-call rotation, redaction and LLM prices as YAML (``config_files`` loads them)

Deterministic code decides (grouping, impact, severity, routing); the LLM only words the
report, and the template words it whenever the LLM cannot.
"""
