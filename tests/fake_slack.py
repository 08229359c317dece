"""A local HTTP server that speaks the part of Slack CEI uses, for tests through the real slack_sdk.

- ``POST /api/chat.postMessage`` and ``POST /api/chat.update`` (Web API: form or JSON bodies,
  ``Authorization: Bearer <token>``), answered as Slack answers: ``{"ok": true, "channel",
  "ts", "message"}``; a channel *name* in the request comes back as a channel *id* (``C...``),
  and ``chat.update`` needs that id and an existing ``ts`` (else ``channel_not_found`` /
  ``message_not_found``), as on Slack.
- ``POST /webhook/<anything>`` (incoming webhooks): ``ok`` as text, as Slack does.
- ``rate_limit(times, retry_after)``: the next ``times`` requests get HTTP 429 with
  ``Retry-After`` (and ``{"ok": false, "error": "ratelimited"}``).
- ``stop()`` / ``start()``: down and back on the same port, to play an outage.

Every request is recorded (``requests``) with the moment it arrived.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str  # chat.postMessage, chat.update, webhook
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float  # time.monotonic() on arrival
    status: int = 200

    @property
    def blocks(self) -> list[dict]:
        blocks = self.body.get("blocks")
        if isinstance(blocks, str):  # form bodies carry blocks as JSON text
            blocks = json.loads(blocks)
        return blocks or []

    def block_text(self) -> str:
        """Every text of every block, joined, entities decoded as Slack shows them."""
        text = "\n".join(_texts(self.blocks))
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["text"]] if isinstance(value.get("text"), str) else []
        for key, item in value.items():
            if key != "text" or not isinstance(item, str):
                found += _texts(item)
        if isinstance(value.get("url"), str):
            found.append(value["url"])
        return found
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    return []


@dataclass
class _Posted:
    channel_id: str
    ts: str
    body: dict[str, Any]
    updates: list[dict[str, Any]] = field(default_factory=list)


class FakeSlack:
    def __init__(self, token: str = "xoxb-cei-test"):
        self.token = token
        self.requests: list[Received] = []
        self.messages: dict[tuple[str, str], _Posted] = {}
        self._lock = threading.Lock()
        self._rate_limited = 0
        self._retry_after = 1
        self._ts = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/T000/B000/cei"

    def rate_limit(self, times: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self._rate_limited = times
            self._retry_after = retry_after

    # ------------------------------------------------------------------ what arrived

    def calls(self, method: str | None = None, *, answered: bool = True) -> list[Received]:
        """Requests of ``method``; by default only those answered 200 (not the 429s)."""
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (not answered or r.status == 200)]

    @staticmethod
    def channel_id(name: str) -> str:
        if name.startswith(("C", "G", "D")) and name[1:].isalnum() and name.isupper():
            return name
        return "C" + hashlib.sha1(name.lstrip("#").encode()).hexdigest()[:8].upper()

    # ------------------------------------------------------------------ HTTP

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet test output
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                fake._answer(self, raw)

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler, raw: str) -> None:
        path = handler.path.split("?")[0]
        content_type = handler.headers.get("Content-Type", "")
        if "json" in content_type:
            body = json.loads(raw or "{}")
        else:
            body = {k: v[0] for k, v in parse_qs(raw).items()}
        method = "webhook" if path.startswith("/webhook/") else path.rsplit("/", 1)[-1]
        received = Received(method, path, dict(handler.headers), body, time.monotonic())
        with self._lock:
            self.requests.append(received)
            if self._rate_limited > 0:
                self._rate_limited -= 1
                received.status = 429
                return _reply(handler, 429, {"ok": False, "error": "ratelimited"},
                              {"Retry-After": str(self._retry_after)})
            if method == "webhook":
                return _reply_text(handler, 200, "ok")
            if handler.headers.get("Authorization") != f"Bearer {self.token}":
                return _reply(handler, 200, {"ok": False, "error": "invalid_auth"})
            if method == "chat.postMessage":
                return _reply(handler, 200, self._post(body))
            if method == "chat.update":
                return _reply(handler, 200, self._update(body))
            received.status = 404
            return _reply(handler, 404, {"ok": False, "error": "unknown_method"})

    def _post(self, body: dict) -> dict:
        channel = body.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not (body.get("text") or body.get("blocks")):
            return {"ok": False, "error": "no_text"}
        thread_ts = body.get("thread_ts")
        channel_id = self.channel_id(channel)
        if thread_ts and (channel_id, thread_ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        self._ts += 1
        ts = f"{1700000000 + self._ts}.{self._ts:06d}"
        self.messages[(channel_id, ts)] = _Posted(channel_id, ts, body)
        return {"ok": True, "channel": channel_id, "ts": ts,
                "message": {"type": "message", "text": body.get("text"), "ts": ts, "thread_ts": thread_ts}}

    def _update(self, body: dict) -> dict:
        channel, ts = body.get("channel"), body.get("ts")
        if channel not in {c for c, _ in self.messages}:
            return {"ok": False, "error": "channel_not_found"}
        posted = self.messages.get((channel, ts))
        if posted is None:
            return {"ok": False, "error": "message_not_found"}
        posted.updates.append(body)
        return {"ok": True, "channel": channel, "ts": ts, "text": body.get("text"),
                "message": {"type": "message", "text": body.get("text"), "ts": ts}}


def _reply(handler, status: int, payload: dict, headers: dict | None = None) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _reply_text(handler, status: int, text: str) -> None:
    data = text.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
