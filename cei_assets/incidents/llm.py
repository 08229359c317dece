"""The LLM that words incident reports: the Anthropic Messages API through the official SDK.

It only words. The prompt holds facts gathered and redacted beforehand; the answer must be one
call of the ``write_incident_report`` tool whose input is exactly the report's prose sections,
validated (pydantic) before use. Anything else — no key, an API error, a timeout, an overload
after the SDK's retries, an answer that does not validate — is a ``LLMUnavailable`` with the
reason, and the template writes the report instead.

Configured from the environment (``LLMSettings.from_env``), or as a Dagster resource:

| variable | default |
|---|---|
| ``ANTHROPIC_API_KEY`` | none: no call is made |
| ``ANTHROPIC_BASE_URL`` | the SDK's (https://api.anthropic.com) |
| ``CEI_LLM_MODEL`` | ``claude-sonnet-4-5`` |
| ``CEI_LLM_TIMEOUT_SECONDS`` | 20 (per attempt) |
| ``CEI_LLM_MAX_RETRIES`` | 1 (the SDK retries 408, 429, 5xx and 529 with backoff) |
| ``CEI_LLM_DAILY_BUDGET_USD`` | 5 |
| ``CEI_LLM_MAX_OUTPUT_TOKENS`` | 2000 |
| ``CEI_LLM_PRICES_FILE`` | ``config/llm.yaml`` (USD per million tokens per model) |
"""

import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cei_assets.incidents.config_files import IncidentConfigError, Section, config_path, load_mapping

DEFAULT_MODEL = "claude-sonnet-4-5"
PRICES_FILE_ENV = "CEI_LLM_PRICES_FILE"
TOOL_NAME = "write_incident_report"
# Characters per token when estimating a prompt's cost before sending it: low, so the estimate
# is high (English with JSON runs at about four).
CHARS_PER_TOKEN_ESTIMATE = 3.0
# With less time than this before a caller's deadline no call is made: a useful answer takes longer.
MIN_CALL_SECONDS = 3.0


class LLMUnavailable(Exception):
    """The LLM could not word this report; ``reason`` says why (it becomes the fallback reason).

    ``input_tokens``/``output_tokens`` are what the failed call still consumed (an answer that
    did not validate was paid for).
    """

    def __init__(self, reason: str, *, input_tokens: int = 0, output_tokens: int = 0, message_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.message_id = message_id


class LLMSettings(dg.ConfigurableResource):
    """How CEI reaches the LLM. ``from_env`` reads the variables above."""

    model: str = DEFAULT_MODEL
    api_key: Optional[str] = None
    base_url: Optional[str] = None
    # Per attempt. The report is written inside the incident sensor's evaluation, which Dagster
    # stops after 60 s: 20 s x (1 + 1 retry) leaves room for reading the event log.
    timeout_seconds: float = 20.0
    max_retries: int = 1
    daily_budget_usd: float = 5.0
    max_output_tokens: int = 2000
    prices_file: Optional[str] = None

    @classmethod
    def from_env(cls) -> "LLMSettings":
        """Settings from the environment; a malformed value raises ``LLMConfigError`` naming it."""
        return cls(
            model=(os.environ.get("CEI_LLM_MODEL") or DEFAULT_MODEL).strip(),
            api_key=(os.environ.get("ANTHROPIC_API_KEY") or "").strip() or None,
            base_url=(os.environ.get("ANTHROPIC_BASE_URL") or "").strip() or None,
            timeout_seconds=_env_number("CEI_LLM_TIMEOUT_SECONDS", 20.0, minimum=0.001),
            max_retries=int(_env_number("CEI_LLM_MAX_RETRIES", 1, minimum=0, whole=True)),
            daily_budget_usd=_env_number("CEI_LLM_DAILY_BUDGET_USD", 5.0, minimum=0.0),
            max_output_tokens=int(_env_number("CEI_LLM_MAX_OUTPUT_TOKENS", 2000, minimum=256, whole=True)),
            prices_file=(os.environ.get(PRICES_FILE_ENV) or "").strip() or None,
        )


class LLMConfigError(ValueError):
    """An LLM setting that cannot be used (the report falls back to the template and says so)."""


def _env_number(name: str, default: float, *, minimum: float, whole: bool = False) -> float:
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise LLMConfigError(f"{name}={text!r} is not a number") from None
    if not math.isfinite(value) or value < minimum or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise LLMConfigError(f"{name}={text!r} must be {kind} of at least {minimum:g}")
    return value


# --------------------------------------------------------------------------------------------
# Prices


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return round(input_tokens * self.input_per_million / 1e6 + output_tokens * self.output_per_million / 1e6, 6)


def load_prices(path: Path | str | None = None) -> dict[str, Price]:
    path = Path(path) if path else config_path(PRICES_FILE_ENV, "llm.yaml")
    top = Section(path, "", load_mapping(path))
    top.only("prices_usd_per_million_tokens")
    table = top.section("prices_usd_per_million_tokens")
    prices = {}
    for model, _ in table.items():
        entry = table.section(str(model))
        entry.only("input", "output")
        prices[str(model)] = Price(entry.number("input", minimum=0.0), entry.number("output", minimum=0.0))
    return prices


def price_of(settings: LLMSettings) -> Price:
    try:
        prices = load_prices(settings.prices_file)
    except IncidentConfigError as error:
        raise LLMUnavailable(f"the LLM price file is invalid: {error}") from None
    if settings.model not in prices:
        raise LLMUnavailable(
            f"no price for model {settings.model} in {settings.prices_file or config_path(PRICES_FILE_ENV, 'llm.yaml')}: "
            "its spend could not be kept under the daily budget"
        )
    return prices[settings.model]


# --------------------------------------------------------------------------------------------
# The answer


class ReportSections(BaseModel):
    """What the model must return: the report's prose sections, nothing else.

    Routing (team, severity, on-call) is not among them: it is decided by code and worded by
    the template, so no model output can change who is told or how urgently.
    """

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=20, max_length=2000, description="Two or three sentences: what failed, for which date, what it stops.")
    root_cause: str = Field(min_length=20, max_length=3000, description="The likely root cause, reasoned from the evidence only.")
    evidence: list[str] = Field(min_length=1, max_length=15, description="The facts behind the root cause, one per item, each citing the check or metadata it comes from.")
    business_impact: str = Field(min_length=20, max_length=3000, description="What is halted, degraded and unaffected, and which business processes it endangers.")
    recommended_actions: list[str] = Field(min_length=1, max_length=10, description="Concrete next steps for the responder, in order.")
    similar_incidents: str = Field(min_length=5, max_length=2000, description="What the similar past incidents say and how they were resolved; say so when there are none.")

    @field_validator("evidence", "recommended_actions")
    @classmethod
    def _items_are_sentences(cls, items: list[str]) -> list[str]:
        cleaned = [item.strip() for item in items]
        if any(len(item) < 5 or len(item) > 1000 for item in cleaned):
            raise ValueError("every item must be a sentence of 5 to 1000 characters")
        return cleaned


def _tool_schema() -> dict:
    schema = ReportSections.model_json_schema()
    schema.pop("description", None)  # the class's docstring is for CEI's readers, not the model
    schema.pop("title", None)
    return schema


REPORT_TOOL = {
    "name": TOOL_NAME,
    "description": "Record the incident report. Call it exactly once with every section filled.",
    "input_schema": _tool_schema(),
}

SYSTEM_PROMPT = """\
You write incident reports for the data platform under a hedge fund's books. A responder reads
your report to learn what broke, what it stops and what to do first.

Rules:
- Use only the facts in the evidence JSON. Do not invent numbers, assets, people or causes; when
  the evidence does not say, say that it does not.
- Severity, routing, the on-call person and which assets are halted are already decided and are
  given in the evidence. Do not change them, do not propose other ones.
- Identifiers such as ACCOUNT_1 or BROKER_REF_1 are placeholders for redacted values. Keep them
  exactly as written.
- Answer by calling the tool write_incident_report once, with every section filled.
"""

_SEVERITY = re.compile(r"\bP[1-4]\b")


def parse_answer(message: Any, *, decided_severity: str | None) -> ReportSections:
    """The validated sections of a Messages API answer, or ``ValueError`` saying what is wrong."""
    if getattr(message, "stop_reason", None) == "max_tokens":
        raise ValueError("the answer was cut off at the output token limit")
    payload = None
    for block in getattr(message, "content", None) or []:
        if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == TOOL_NAME:
            payload = block.input
            break
    if payload is None:
        # Some answers put the JSON in text; accept it only if it validates just the same.
        text = "".join(getattr(b, "text", "") for b in getattr(message, "content", None) or []
                       if getattr(b, "type", None) == "text").strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        try:
            payload = json.loads(text) if text else None
        except json.JSONDecodeError:
            payload = None
        if payload is None:
            raise ValueError(f"the answer has no {TOOL_NAME} call and no JSON report")
    if not isinstance(payload, dict):
        raise ValueError(f"the report is a {type(payload).__name__}, not an object")
    try:
        sections = ReportSections.model_validate(payload)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'report'}: {e['msg']}" for e in error.errors()[:5])
        raise ValueError(f"the report does not validate: {problems}") from None
    if decided_severity:
        stated = {m.group(0) for m in _SEVERITY.finditer(json.dumps(sections.model_dump()))}
        if stated - {decided_severity}:
            raise ValueError(
                f"the report states severity {', '.join(sorted(stated))}, but routing decided {decided_severity}"
            )
    return sections


# --------------------------------------------------------------------------------------------
# The call


@dataclass
class LLMAnswer:
    sections: ReportSections
    input_tokens: int
    output_tokens: int
    message_id: str | None
    model: str


def estimate_input_tokens(evidence_text: str) -> int:
    size = len(SYSTEM_PROMPT) + len(evidence_text) + len(json.dumps(REPORT_TOOL))
    return int(size / CHARS_PER_TOKEN_ESTIMATE) + 1


def user_prompt(evidence_text: str) -> str:
    return (
        "Write the incident report for this evidence (gathered by CEI; identifiers redacted).\n\n"
        f"```json\n{evidence_text}\n```"
    )


def ask(settings: LLMSettings, evidence_text: str, *, decided_severity: str | None,
        deadline: float | None = None) -> LLMAnswer:
    """One Messages API call (the SDK retries by itself); ``LLMUnavailable`` on any failure.

    ``deadline`` (``time.monotonic()`` seconds): every attempt, the SDK's retries included,
    gets its share of the time left, and with too little left no call is made.
    """
    if not settings.api_key:
        raise LLMUnavailable("no API key (ANTHROPIC_API_KEY is not set)")
    import anthropic  # here, not at import: the SDK takes most of a second to import

    try:
        client = anthropic.Anthropic(
            api_key=settings.api_key,
            base_url=settings.base_url,
            timeout=settings.timeout_seconds,
            max_retries=settings.max_retries,
            open_telemetry=False,  # request and response contents stay out of any tracing backend
        )
    except Exception as error:
        raise LLMUnavailable(f"the Anthropic client could not be created: {error}") from None
    retries = f"after {settings.max_retries} retr{'y' if settings.max_retries == 1 else 'ies'}"
    timeout = settings.timeout_seconds
    if deadline is not None:
        left = deadline - time.monotonic()
        if left < MIN_CALL_SECONDS:
            client.close()
            raise LLMUnavailable(f"no time left for the LLM ({max(left, 0):.1f} s before the deadline of this evaluation)")
        timeout = min(timeout, left / (settings.max_retries + 1))
    try:
        with client:
            message = client.messages.create(
                timeout=timeout,
                model=settings.model,
                max_tokens=settings.max_output_tokens,
                system=SYSTEM_PROMPT,
                messages=[{"role": "user", "content": user_prompt(evidence_text)}],
                tools=[REPORT_TOOL],
                tool_choice={"type": "tool", "name": TOOL_NAME},
            )
    except anthropic.APITimeoutError:
        raise LLMUnavailable(f"the API timed out ({timeout:.1f} s per attempt, {retries})") from None
    except anthropic.APIStatusError as error:
        kind = _error_type(error)
        if error.status_code == 529 or kind == "overloaded_error":
            raise LLMUnavailable(f"the API is overloaded (529 {kind or 'overloaded_error'}, {retries})") from None
        raise LLMUnavailable(f"the API answered {error.status_code} {kind or ''}: {_error_message(error)}".strip()) from None
    except anthropic.APIConnectionError as error:
        raise LLMUnavailable(f"the API could not be reached ({retries}): {error}") from None
    except Exception as error:  # the SDK's own problems (an unparsable response ...) are no crash either
        raise LLMUnavailable(f"the LLM call failed: {type(error).__name__}: {error}") from None

    usage = getattr(message, "usage", None)
    input_tokens = int(getattr(usage, "input_tokens", 0) or 0)
    output_tokens = int(getattr(usage, "output_tokens", 0) or 0)
    message_id = getattr(message, "id", None)
    try:
        sections = parse_answer(message, decided_severity=decided_severity)
    except ValueError as error:
        raise LLMUnavailable(f"the model's answer is invalid: {error}", input_tokens=input_tokens,
                             output_tokens=output_tokens, message_id=message_id) from None
    return LLMAnswer(sections=sections, input_tokens=input_tokens, output_tokens=output_tokens,
                     message_id=message_id, model=getattr(message, "model", None) or settings.model)


def _error_type(error) -> str | None:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            return inner.get("type")
    return None


def _error_message(error) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))[:300]
    return str(error)[:300]
