"""Notifications: Slack alerts for incidents, the daily digest, delivered once, never lost.

The modules, by what they hold:

- ``config``         where messages go (environment) and when (``config/notifications.yaml``)
- ``incident_view``  an incident as one plain dict, whoever hands it over
- ``decisions``      what an incident event calls for: alert now, edit, thread reply, or wait
- ``blocks``         Block Kit for alerts, replies and the digest (and Markdown for files)
- ``outbox``         the outbox and each incident's Slack message, in the incident store
- ``slack``          delivery: Slack Web API (dagster-slack), incoming webhook, files
- ``dispatch``       ``notify()``, ``flush_outbox()``, ``notify_changes()``
- ``digest``         the daily digest: content, schedule and job
- ``cli``            ``cei notify ...`` and ``cei digest``

Deterministic code decides what is sent and when; report text written by the LLM is only quoted.
"""
