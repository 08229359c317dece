"""A local HTTP server that speaks the Anthropic Messages API, for tests of the report writer.

The official ``anthropic`` SDK is pointed at it with ``base_url``; nothing in the SDK is patched.
``POST /v1/messages`` answers in Anthropic's shapes: a ``message`` with ``tool_use`` or ``text``
content blocks, ``stop_reason`` and ``usage``; errors as ``{"type": "error", "error": {"type",
"message"}}`` with the API's status codes (529 ``overloaded_error``). Every request is recorded
(path, headers, JSON body) so tests can assert on exactly what was sent.

Modes (``server.mode``, or one per request from ``server.script``):

- ``good``: one ``write_incident_report`` tool call with every section;
- ``text_json``: the same report as JSON in a text block;
- ``delay``: waits ``server.delay_seconds`` before a good answer (for timeouts);
- ``overloaded``: 529 ``overloaded_error``;
- ``server_error``: 500 ``api_error``;
- ``malformed``: a tool call whose input lacks sections and has a wrong type;
- ``garbage``: a text block that is not JSON;
- ``cut_off``: a good-looking answer with ``stop_reason: max_tokens``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOOL_NAME = "write_incident_report"
OUTPUT_TOKENS = 420
_ids = itertools.count(1)


def good_report(prompt: str) -> dict[str, Any]:
    """A report that uses the prompt's facts the way a model would, placeholders included."""
    placeholders = sorted(set(re.findall(r"\bACCOUNT_\d+\b", prompt)))
    severity = re.search(r'"severity":\s*"(P[1-4])"', prompt)
    accounts = f" for {', '.join(placeholders)}" if placeholders else ""
    return {
        "summary": f"A blocking check failed{accounts}; the books for the date are halted "
                   f"(severity {severity.group(1) if severity else 'as routed'}).",
        "root_cause": "The landing data itself is wrong: the failing rows listed in the evidence break the rule "
                      "the check enforces, so everything downstream was held back.",
        "evidence": [f"The check's sample rows show the failing values{accounts}.",
                     "Lineage shows the halted assets are all downstream of the failing asset."],
        "business_impact": "EOD valuation and the P&L report cannot be published for the date until the data is fixed.",
        "recommended_actions": ["Correct the failing rows at the source and have the file resent.",
                                "Rerun the date once the file is corrected."],
        "similar_incidents": "The similar incidents listed were resolved by correcting the feed.",
    }


class FakeAnthropic:
    def __init__(self, mode: str = "good", *, delay_seconds: float = 2.0, answer: dict | None = None):
        self.mode = mode
        self.script: list[str] = []  # modes for the next requests, first used first; then ``mode``
        self.delay_seconds = delay_seconds
        self.answer = answer  # a fixed tool input instead of ``good_report``
        self.requests: list[dict[str, Any]] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-anthropic", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()  # delayed answers return now
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def bodies(self) -> list[str]:
        """Each request body as sent (raw text), to search for what must not be there."""
        return [r["raw"] for r in self.requests]

    def _next_mode(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: pytest shows what matters
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = None
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw, "body": body})
                if self.path.split("?")[0] != "/v1/messages":
                    return self._error(404, "not_found_error", f"no route {self.path}")
                # The SDK sends the key as x-api-key or as a bearer token, depending on its version.
                bearer = (self.headers.get("authorization") or "").startswith("Bearer ")
                if not (self.headers.get("x-api-key") or bearer):
                    return self._error(401, "authentication_error", "x-api-key header is required")
                if not isinstance(body, dict) or "messages" not in body or "max_tokens" not in body:
                    return self._error(400, "invalid_request_error", "messages and max_tokens are required")
                mode = fake._next_mode()
                if mode == "overloaded":
                    return self._error(529, "overloaded_error", "Overloaded")
                if mode == "server_error":
                    return self._error(500, "api_error", "Internal server error")
                if mode == "delay":
                    fake._release.wait(fake.delay_seconds)
                prompt = "\n".join(m["content"] if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
                                    for m in body["messages"] if isinstance(m, dict))
                report = fake.answer if fake.answer is not None else good_report(prompt)
                if mode == "malformed":
                    content = [self._tool_use({"summary": 42, "recommended_actions": "do something"})]
                    stop = "tool_use"
                elif mode == "garbage":
                    content = [{"type": "text", "text": "Sorry, here is the report: it is bad.", "citations": None}]
                    stop = "end_turn"
                elif mode == "text_json":
                    content = [{"type": "text", "text": json.dumps(report), "citations": None}]
                    stop = "end_turn"
                elif mode == "cut_off":
                    content = [self._tool_use(report)]
                    stop = "max_tokens"
                else:
                    content = [self._tool_use(report)]
                    stop = "tool_use"
                self._send(200, {
                    "id": f"msg_fake{next(_ids):08d}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model"),
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": max(1, len(raw) // 4), "output_tokens": OUTPUT_TOKENS,
                              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
                })

            def _tool_use(self, tool_input) -> dict:
                return {"type": "tool_use", "id": f"toolu_fake{next(_ids):08d}", "name": TOOL_NAME, "input": tool_input}

            def _error(self, status: int, kind: str, message: str) -> None:
                # retry-after-ms: the SDK honours it, so its retries take milliseconds in tests.
                self._send(status, {"type": "error", "error": {"type": kind, "message": message},
                                    "request_id": f"req_fake{next(_ids):08d}"},
                           headers={"retry-after-ms": "10"} if status in (429, 500, 529) else None)

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.send_header("request-id", f"req_fake{next(_ids):08d}")
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): nothing to answer

        return Handler
