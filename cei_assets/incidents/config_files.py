"""The incident configuration files (``config/*.yaml``): where they are and how they fail.

Each file has a default next to this module and an environment variable that points elsewhere.
A file that cannot be used fails at load with the file and the key (``routing.yaml:
severity.halts.critical: 'P9' is not one of P1, P2, P3, P4``), never with a default that
quietly routes an incident nowhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "config"


class IncidentConfigError(ValueError):
    """An incident configuration file that cannot be used; says the file and the key."""

    def __init__(self, path: Path | str, key: str, message: str):
        self.path = str(path)
        self.key = key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


def config_path(env_var: str, default_name: str) -> Path:
    explicit = os.environ.get(env_var, "").strip()
    return Path(explicit).expanduser().resolve() if explicit else CONFIG_DIR / default_name


def load_mapping(path: Path) -> dict[str, Any]:
    """The file's top-level mapping, or an error naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise IncidentConfigError(path, "", f"cannot be read ({error.strerror or error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise IncidentConfigError(path, "", f"is not valid YAML{line}: {getattr(error, 'problem', error)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise IncidentConfigError(path, "", f"must be a mapping of keys, not {type(data).__name__}")
    return data


class Section:
    """A mapping read from a config file that knows its own key path, for error messages."""

    def __init__(self, path: Path, key: str, data: Any):
        if not isinstance(data, dict):
            raise IncidentConfigError(path, key or "(top level)", f"must be a mapping, not {_kind(data)}")
        self.path, self.key, self.data = path, key, data

    def _key(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str) -> IncidentConfigError:
        return IncidentConfigError(self.path, self._key(name), message)

    def only(self, *allowed: str) -> None:
        unknown = sorted(str(k) for k in self.data if k not in allowed)
        if unknown:
            raise self.error(unknown[0], f"unknown key (allowed: {', '.join(allowed)})")

    def section(self, name: str, *, required: bool = True) -> Section:
        if name not in self.data:
            if required:
                raise self.error(name, "is missing")
            return Section(self.path, self._key(name), {})
        return Section(self.path, self._key(name), self.data[name] if self.data[name] is not None else {})

    def string(self, name: str, *, required: bool = True, default: str | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(name, "is missing")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be a non-empty text, not {_kind(value)}")
        return value.strip()

    def number(self, name: str, *, default: float | None = None, minimum: float | None = None) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"must be a number, not {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be at least {minimum}, not {value}")
        return float(value)

    def strings(self, name: str, *, required: bool = True, allow_empty: bool = True) -> list[str]:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(name, "is missing")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(name, f"must be a list of texts, not {_kind(value)}")
        if not value and not allow_empty:
            raise self.error(name, "must not be empty")
        return [v.strip() for v in value]

    def items(self):
        return self.data.items()


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(value)
    return type(value).__name__ + (f" {value!r}" if isinstance(value, (int, float, bool)) else "")
