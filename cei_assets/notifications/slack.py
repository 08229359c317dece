"""How a message reaches people: the Slack Web API, an incoming webhook, or files and stdout.

Each transport answers with a ``Delivery``: delivered (with Slack's channel id and ``ts``), or
not, with why and whether to wait (Slack's ``Retry-After``) or stop trying for now (Slack is
unreachable). Transports never raise for a delivery problem; the outbox decides what to do.

Rate limits: a 429 is retried in the same call after exactly the server's ``Retry-After``
when that is short (``max_retry_wait_seconds``); slack_sdk's own ``RateLimitErrorRetryHandler``
adds up to a second of random jitter, which this handler does not. A longer ``Retry-After`` is
handed back to the outbox, which does not try the message again before it.
"""

import json
import logging
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.error import URLError

from dagster_slack import SlackResource
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from cei_assets.notifications.config import FILES, SLACK_API, SLACK_API_URL, WEBHOOK, NotificationSettings

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    ok: bool
    channel_id: str | None = None
    ts: str | None = None
    error: str | None = None
    retry_after: float | None = None  # Slack asked to wait this long (seconds)
    unreachable: bool = False  # no answer at all: stop this flush, try again next time
    location: str | None = None  # files: where it was written


class RetryAfterHandler(RetryHandler):
    """Retry a 429 after exactly the ``Retry-After`` the server sent, if it is short enough."""

    def __init__(self, max_retry_count: int = 3, max_wait_seconds: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                   error: Optional[Exception] = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        return retry_after_seconds(response.headers) <= self.max_wait_seconds

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: Optional[HttpResponse] = None, error: Optional[Exception] = None) -> None:
        state.next_attempt_requested = True
        wait = retry_after_seconds(response.headers if response is not None else {})
        log.info("Slack rate limit: waiting %.1f s (Retry-After) before retrying %s", wait, request.url)
        self.sleep(wait)
        state.increment_current_attempt()


def retry_after_seconds(headers: Any) -> float:
    """The ``Retry-After`` of a response's headers (values may be lists), 1 s when absent."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return 1.0
    return 1.0


class CeiSlackResource(SlackResource):
    """dagster-slack's ``SlackResource`` with what CEI needs of it: a configurable API base URL
    (a local server in tests, a proxy in a locked-down network), a timeout and exact rate-limit
    waits. ``get_client()`` is still the official ``slack_sdk`` WebClient."""

    token: str = Field(description="Slack bot token (xoxb-...): CEI_SLACK_BOT_TOKEN.")
    base_url: str = Field(default=SLACK_API_URL, description="Slack Web API base URL: CEI_SLACK_API_URL.")
    timeout_seconds: float = Field(default=10.0, description="Per-request timeout.")
    max_retry_wait_seconds: float = Field(
        default=10.0, description="Longest Retry-After waited for in the call; longer ones are left to the outbox.")

    def get_client(self) -> WebClient:
        return WebClient(
            token=self.token,
            base_url=self.base_url,
            timeout=max(1, int(round(self.timeout_seconds))),
            # Only rate limits are retried in the call; an unreachable Slack is the outbox's job.
            retry_handlers=[RetryAfterHandler(max_wait_seconds=self.max_retry_wait_seconds)],
        )


class SlackApiTransport:
    name = SLACK_API
    can_update = True

    def __init__(self, settings: NotificationSettings):
        self.client = CeiSlackResource(
            token=settings.slack_bot_token or "", base_url=settings.slack_api_url,
            timeout_seconds=settings.timeout_seconds, max_retry_wait_seconds=settings.max_retry_wait_seconds,
        ).get_client()

    def post(self, channel: str, text: str, blocks: list | None, thread_ts: str | None = None) -> Delivery:
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks:
            kwargs["blocks"] = blocks
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        return self._call(self.client.chat_postMessage, **kwargs)

    def update(self, channel_id: str, ts: str, text: str, blocks: list | None) -> Delivery:
        kwargs: dict[str, Any] = {"channel": channel_id, "ts": ts, "text": text}
        if blocks:
            kwargs["blocks"] = blocks
        return self._call(self.client.chat_update, **kwargs)

    @staticmethod
    def _call(method, **kwargs) -> Delivery:
        try:
            response = method(**kwargs)
        except SlackApiError as error:
            status = getattr(error.response, "status_code", None)
            code = _error_code(error.response)
            if status == 429:
                wait = retry_after_seconds(getattr(error.response, "headers", {}))
                return Delivery(False, error=f"rate limited by Slack (Retry-After {wait:g} s)", retry_after=wait)
            return Delivery(False, error=f"Slack refused it: {code} (HTTP {status})")
        except (URLError, OSError, socket.timeout, TimeoutError) as error:
            return Delivery(False, error=f"Slack is unreachable: {_reason(error)}", unreachable=True)
        return Delivery(True, channel_id=response.get("channel"), ts=response.get("ts"))


class WebhookTransport:
    """An incoming webhook posts to the channel it was made for; it cannot edit or thread."""

    name = WEBHOOK
    can_update = False

    def __init__(self, settings: NotificationSettings):
        self.client = WebhookClient(
            url=settings.slack_webhook_url or "",
            timeout=max(1, int(round(settings.timeout_seconds))),
            retry_handlers=[RetryAfterHandler(max_wait_seconds=settings.max_retry_wait_seconds)],
        )

    def post(self, channel: str, text: str, blocks: list | None, thread_ts: str | None = None) -> Delivery:
        try:
            response = self.client.send(text=text, blocks=blocks or None, unfurl_links=False)
        except (URLError, OSError, socket.timeout, TimeoutError) as error:
            return Delivery(False, error=f"the Slack webhook is unreachable: {_reason(error)}", unreachable=True)
        if response.status_code == 429:
            wait = retry_after_seconds(response.headers)
            return Delivery(False, error=f"rate limited by Slack (Retry-After {wait:g} s)", retry_after=wait)
        if response.status_code != 200:
            # The body is Slack's error code (invalid_payload, no_service, ...), never the URL.
            return Delivery(False, error=f"the Slack webhook refused it: {str(response.body)[:200]} "
                                         f"(HTTP {response.status_code})")
        return Delivery(True)

    def update(self, channel_id: str, ts: str, text: str, blocks: list | None) -> Delivery:
        raise NotImplementedError("an incoming webhook cannot edit a message")


class FileTransport:
    """No Slack configured: each message becomes a Markdown file under ``notifications/`` and is
    printed, so nothing is lost and nothing leaves the machine."""

    name = FILES
    can_update = True

    def __init__(self, settings: NotificationSettings, *, echo: bool | None = None):
        self.root = Path(settings.output_dir)
        self.echo = settings.echo_stdout if echo is None else echo

    def write(self, name: str, text: str, blocks: list | None) -> Delivery:
        from cei_assets.notifications.blocks import blocks_to_markdown

        body = blocks_to_markdown(blocks) if blocks else text
        path = self.root / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(body + "\n", encoding="utf-8")
            partial.replace(path)  # whole or not at all
        except OSError as error:
            return Delivery(False, error=f"cannot write {path}: {error.strerror or error}")
        if self.echo:
            sys.stdout.write(f"--- CEI notification ({path}) ---\n{body}\n")
            sys.stdout.flush()
        return Delivery(True, channel_id=None, ts=path.name, location=str(path))

    def post(self, channel: str, text: str, blocks: list | None, thread_ts: str | None = None) -> Delivery:
        raise NotImplementedError("files are written with write(name, ...)")

    def update(self, channel_id: str, ts: str, text: str, blocks: list | None) -> Delivery:
        raise NotImplementedError("files are written with write(name, ...)")


def transport_for(settings: NotificationSettings):
    if settings.transport == SLACK_API:
        return SlackApiTransport(settings)
    if settings.transport == WEBHOOK:
        return WebhookTransport(settings)
    return FileTransport(settings)


def _error_code(response) -> str:
    try:
        data = response.data if isinstance(response.data, dict) else json.loads(response.data or "{}")
    except (TypeError, ValueError, AttributeError):
        data = {}
    return str(data.get("error") or "unknown_error")


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error) or type(error).__name__
    # Never echo a URL with a secret in it (webhook URLs are credentials).
    return re.sub(r"https?://\S+", "<url>", str(reason))
