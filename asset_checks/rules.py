"""Check rules declared as data: ``asset_checks/rules/*.yaml``.

A rule file maps a table to a list of rules in the vocabulary ops people use::

    quotes:
      - null_tolerance: 0.0%
        columns: [ts, symbol, bid, ask]
        blocking: false
        reason: quote quality feeds market making, not EOD valuation

Each rule is one mapping whose first key is the rule type and its value the rule's parameter;
the other keys are options: ``name`` (the check's name, derived when absent), ``blocking``
(default true), ``severity`` (``error`` or ``warn``; default error when blocking, warn when
not), ``reason`` (why it blocks or only warns: shown next to the result) and the type's own
options (``columns``, ``by``, ...). An invalid file fails at load with the file and the line.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

RULES_DIR = Path(__file__).resolve().parent / "rules"
_COMMON_OPTIONS = {"name", "blocking", "severity", "reason", "description"}


class RuleFileError(ValueError):
    """A rule file that cannot be used; the message starts with ``file:line:``."""


@dataclasses.dataclass(frozen=True)
class Rule:
    table: str
    type: str
    param: Any
    options: dict[str, Any]
    name: str
    blocking: bool
    severity: str  # ERROR | WARN
    reason: str | None
    source: str  # file:line, for messages

    @property
    def as_written(self) -> str:
        return f"{self.type}: {_render(self.param)}"

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


def _render(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_render(v)}" for k, v in value.items() if k != "__line__") + "}"
    return str(value)


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping, for error messages."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_percent(value: Any, where: str) -> float:
    """``0.5%`` -> 0.005; a bare number is a fraction."""
    if isinstance(value, (int, float)):
        return float(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*%\s*", str(value))
    if not match:
        raise RuleFileError(f"{where}: expected a percentage such as 0.5%, got {value!r}")
    return float(match.group(1)) / 100


def parse_settings(value: Any, where: str) -> dict[str, Any]:
    """``max_lag_minutes=5, min=1`` or a mapping -> a dict of numbers/strings."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "__line__"}
    out = {}
    for part in str(value).split(","):
        key, sep, raw = part.partition("=")
        if not sep:
            raise RuleFileError(f"{where}: expected key=value settings, got {value!r}")
        raw = raw.strip()
        try:
            out[key.strip()] = float(raw) if "." in raw else int(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


def load_rule_file(path: Path, known_types: dict[str, Any]) -> list[Rule]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        raise RuleFileError(f"{path}:{line}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if document is None:
        return []
    if not isinstance(document, dict):
        raise RuleFileError(f"{path}:1: expected a mapping of table name to a list of rules")
    rules: list[Rule] = []
    for table, entries in document.items():
        if table == "__line__":
            continue
        if not isinstance(entries, list):
            raise RuleFileError(f"{path}:{document['__line__']}: the rules of {table!r} must be a list")
        names: set[str] = set()
        for entry in entries:
            if not isinstance(entry, dict):
                raise RuleFileError(f"{path}: a rule of {table!r} must be a mapping, got {entry!r}")
            line = entry.pop("__line__")
            where = f"{path}:{line}"
            keys = [k for k in entry if k not in _COMMON_OPTIONS]
            rule_types = [k for k in keys if k in known_types]
            if len(rule_types) != 1:
                unknown = [k for k in keys if k not in known_types]
                hint = f"unknown rule or option {', '.join(map(repr, unknown))}; " if unknown else ""
                raise RuleFileError(
                    f"{where}: {hint}each rule names exactly one rule type among: {', '.join(sorted(known_types))}"
                )
            rule_type = rule_types[0]
            options = {k: v for k, v in entry.items() if k != rule_type}
            allowed = _COMMON_OPTIONS | set(known_types[rule_type].options)
            stray = [k for k in options if k not in allowed]
            if stray:
                raise RuleFileError(
                    f"{where}: {rule_type} does not take option(s) {', '.join(stray)} "
                    f"(it takes {', '.join(sorted(allowed))})"
                )
            blocking = options.get("blocking", True)
            if not isinstance(blocking, bool):
                raise RuleFileError(f"{where}: blocking must be true or false, got {blocking!r}")
            severity = str(options.get("severity", "error" if blocking else "warn")).upper()
            if severity not in ("ERROR", "WARN"):
                raise RuleFileError(f"{where}: severity must be error or warn, got {options['severity']!r}")
            if blocking and severity == "WARN":
                raise RuleFileError(f"{where}: a blocking rule must have severity error (a warning never halts)")
            name = options.get("name") or known_types[rule_type].default_name(entry[rule_type], options)
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise RuleFileError(f"{where}: check name {name!r} may only hold letters, digits and _")
            if name in names:
                raise RuleFileError(f"{where}: {table} already has a check named {name!r}; give this rule a name:")
            names.add(name)
            rule = Rule(
                table=table, type=rule_type, param=entry[rule_type], options=options, name=name,
                blocking=blocking, severity=severity, reason=options.get("reason"), source=where,
            )
            known_types[rule_type].validate(rule)
            rules.append(rule)
    return rules


def load_rules(directory: Path = RULES_DIR, known_types: dict[str, Any] | None = None) -> dict[str, list[Rule]]:
    """Every rule file of the folder, by table."""
    if known_types is None:
        from asset_checks.vocabulary import RULE_TYPES

        known_types = RULE_TYPES
    by_table: dict[str, list[Rule]] = {}
    for path in sorted(directory.glob("*.y*ml")):
        for rule in load_rule_file(path, known_types):
            existing = {r.name for r in by_table.get(rule.table, [])}
            if rule.name in existing:
                raise RuleFileError(f"{rule.source}: {rule.table} already has a check named {rule.name!r} in another file")
            by_table.setdefault(rule.table, []).append(rule)
    return by_table
