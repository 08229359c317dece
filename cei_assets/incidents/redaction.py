"""What never leaves the firm in a prompt: account identifiers and any configured field.

Before evidence goes to an LLM, every account identifier in it is replaced by a stable
placeholder (``ACCOUNT_1``, ``ACCOUNT_2``, ...): the values of the landing spec's ``account``
column wherever they sit (sample rows, ``affected`` accounts, any metadata, a dictionary's
keys), every known account (the landing root's ``reference/accounts.csv``) found in free text
such as a check's sentence, and whatever matches a configured account pattern. The values of
further configured fields (``broker_ref``, ...) are replaced the same way (``BROKER_REF_1``).

Placeholders are numbered in the sorted order of the values found, so the same evidence gives
the same redacted text (and the same cache key). ``restore`` puts the real values back into
what the model wrote: the report a responder reads inside the firm names the real accounts.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cei_assets.incidents.config_files import Section, config_path, load_mapping

REDACTION_FILE_ENV = "CEI_REDACTION_FILE"
ACCOUNT = "ACCOUNT"
# Values shorter than this are not searched for in free text (a one-letter value would match
# inside ordinary words); they are still replaced where they are a field's whole value.
MIN_TEXT_MATCH = 3


@dataclass(frozen=True)
class RedactionConfig:
    account_fields: frozenset[str]
    account_patterns: tuple[re.Pattern, ...]
    fields: frozenset[str]  # further fields, lower case
    source: str = ""


def load_redaction(path: Path | str | None = None) -> RedactionConfig:
    path = Path(path) if path else config_path(REDACTION_FILE_ENV, "redaction.yaml")
    top = Section(path, "", load_mapping(path))
    top.only("account_fields", "account_patterns", "fields")
    account_fields = top.strings("account_fields", required=False) or ["account"]
    patterns = []
    for index, text in enumerate(top.strings("account_patterns", required=False)):
        try:
            patterns.append(re.compile(text))
        except re.error as error:
            raise top.error(f"account_patterns[{index}]", f"is not a regular expression: {error}") from None
    fields = top.strings("fields", required=False)
    return RedactionConfig(
        account_fields=frozenset(f.lower() for f in account_fields),
        account_patterns=tuple(patterns),
        fields=frozenset(f.lower() for f in fields),
        source=str(path),
    )


def accounts_of_landing(landing_root: Path | str | None) -> list[str]:
    """The account identifiers of the landing root's reference/accounts.csv (none if absent)."""
    if not landing_root:
        return []
    path = Path(landing_root) / "reference" / "accounts.csv"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return sorted({row["account"].strip() for row in csv.DictReader(handle) if (row.get("account") or "").strip()})
    except (OSError, KeyError, UnicodeDecodeError, csv.Error):
        return []  # no reference file: the fields and patterns still find the accounts


@dataclass
class Redactor:
    """The placeholders of one piece of evidence: value -> placeholder, and back."""

    placeholders: dict[str, str] = field(default_factory=dict)
    _fields: frozenset[str] = frozenset()  # the redacted fields' names as they appear (any case)

    @classmethod
    def for_evidence(cls, evidence: Any, config: RedactionConfig, known_accounts: Iterable[str] = ()) -> Redactor:
        found: dict[str, set[str]] = {}  # placeholder prefix -> values
        strings: list[str] = []

        def note(prefix: str, value: Any) -> None:
            if isinstance(value, (list, tuple, set)):
                for item in value:
                    note(prefix, item)
            elif isinstance(value, dict):
                for item in value.values():
                    note(prefix, item)
            elif value is not None and not isinstance(value, bool) and str(value).strip():
                found.setdefault(prefix, set()).add(str(value).strip())

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    strings.append(str(key))
                    prefix = _prefix_for(str(key), config)
                    if prefix:
                        note(prefix, item)
                    walk(item)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
            elif isinstance(value, str):
                strings.append(value)

        walk(evidence)
        field_names = {key for key in set(strings) if _prefix_for(key, config)}
        text = "\n".join(strings)
        for pattern in config.account_patterns:
            for match in pattern.finditer(text):
                found.setdefault(ACCOUNT, set()).add(match.group(0))
        for account in known_accounts:
            account = str(account).strip()
            if len(account) >= MIN_TEXT_MATCH and _word(account).search(text):
                found.setdefault(ACCOUNT, set()).add(account)

        placeholders: dict[str, str] = {}
        for prefix in sorted(found):
            for number, value in enumerate(sorted(found[prefix]), start=1):
                placeholders.setdefault(value, f"{prefix}_{number}")
        return cls(placeholders, frozenset(field_names))

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with every redacted value replaced by its placeholder."""
        if not self.placeholders:
            return value
        searchable = {v: p for v, p in self.placeholders.items() if len(v) >= MIN_TEXT_MATCH}
        pattern = self._pattern(searchable) if searchable else None

        def text(s: str) -> str:
            whole = self.placeholders.get(s.strip())
            if whole is not None:
                return whole
            return pattern.sub(lambda m: searchable[m.group(0)], s) if pattern else s

        def walk(item: Any, under_field: bool) -> Any:
            if isinstance(item, dict):
                return {text(str(k)) if isinstance(k, str) else k: walk(v, under_field or str(k) in self._fields)
                        for k, v in item.items()}
            if isinstance(item, (list, tuple)):
                return [walk(v, under_field) for v in item]
            if isinstance(item, str):
                return text(item)
            if under_field and item is not None and not isinstance(item, bool) and str(item) in self.placeholders:
                return self.placeholders[str(item)]  # a numeric identifier (an account number)
            return item

        return walk(value, False)

    def restore(self, value: Any) -> Any:
        """The real values back in place of the placeholders (for the report kept in the firm)."""
        if not self.placeholders:
            return value
        back = {placeholder: real for real, placeholder in self.placeholders.items()}
        pattern = self._pattern(back)

        def walk(item: Any) -> Any:
            if isinstance(item, dict):
                return {walk(k): walk(v) for k, v in item.items()}
            if isinstance(item, (list, tuple)):
                return [walk(v) for v in item]
            if isinstance(item, str):
                return pattern.sub(lambda m: back[m.group(0)], item)
            return item

        return walk(value)

    @staticmethod
    def _pattern(mapping: dict[str, str]) -> re.Pattern:
        # Longest first, so ACC-EQ-LS-2 is not redacted as ACC-EQ-LS followed by -2.
        alternatives = sorted(mapping, key=lambda v: (-len(v), v))
        return re.compile("|".join(_bounded(v) for v in alternatives))


def _prefix_for(key: str, config: RedactionConfig) -> str | None:
    name = key.strip().lower()
    if name in config.account_fields:
        return ACCOUNT
    if name in config.fields:
        return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "FIELD"
    return None


def _bounded(value: str) -> str:
    # An identifier is matched whole: not inside a longer identifier (letters, digits, - and _).
    return rf"(?<![A-Za-z0-9_-]){re.escape(value)}(?![A-Za-z0-9_-])"


def _word(value: str) -> re.Pattern:
    return re.compile(_bounded(value))
