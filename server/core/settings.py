"""Server options and per-organization feature flags: configuration (a JSON file and the
environment), read once at start-up; the core asks `option()` and `feature_enabled()`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.storage.models import Organization

MAX_GROUP_TIMES_SEEN = "issues.merge-unmerge.max-group-times-seen"
# Every option the server reads, with its default (Sentry's option names and defaults).
OPTION_DEFAULTS: dict[str, int] = {MAX_GROUP_TIMES_SEEN: 0}
ALL_ORGANIZATIONS = "*"
ENV_FILE = "ISSUES_SETTINGS"
ENV_OPTIONS = "ISSUES_OPTIONS"
ENV_FEATURES = "ISSUES_FEATURES"


class SettingsError(ValueError):
    """The settings file or environment is malformed; the server refuses to start."""


@dataclass(frozen=True)
class Settings:
    """options: name -> value; features: name -> organization ids and slugs ("*" = all)."""

    options: Mapping[str, int] = field(default_factory=lambda: dict(OPTION_DEFAULTS))
    features: Mapping[str, frozenset[int | str]] = field(default_factory=dict)


_current = Settings()


def configure(settings: Settings) -> None:
    """Install the process's settings (at start-up; tests swap them around a case)."""
    global _current  # configuration, read-only while serving
    _current = settings


def current() -> Settings:
    return _current


def option(name: str) -> int:
    return _current.options.get(name, OPTION_DEFAULTS[name])


def feature_enabled(org: Organization, name: str) -> bool:
    """Configured for this organization (by id or slug, or for all); an organization row's own
    `features` list (seeded fixtures) still counts, so existing worlds keep their flags."""
    scope = _current.features.get(name, frozenset())
    if ALL_ORGANIZATIONS in scope or org.id in scope or org.slug in scope:
        return True
    return name in (org.features or [])


def load(*, path: str | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """The file (`path`, else $ISSUES_SETTINGS), then $ISSUES_OPTIONS and $ISSUES_FEATURES
    (JSON objects) override it key by key."""
    data = _read_file(path or environ.get(ENV_FILE))
    options = {**_object(data.get("options", {}), "options"), **_env_object(environ, ENV_OPTIONS)}
    features = {**_object(data.get("features", {}), "features"), **_env_object(environ, ENV_FEATURES)}
    unknown = set(data) - {"options", "features"}
    if unknown:
        raise SettingsError(f"unknown settings section {sorted(unknown)[0]!r} (known: options, features)")
    return Settings(
        options={**OPTION_DEFAULTS, **{k: _option_value(k, v) for k, v in options.items()}},
        features={k: _feature_scope(k, v) for k, v in features.items()},
    )


def _read_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from None
    return _object(data, path)


def _env_object(environ: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = environ.get(name)
    if not raw:
        return {}
    try:
        return _object(json.loads(raw), name)
    except ValueError as exc:
        raise SettingsError(f"${name} is not valid JSON: {exc}") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SettingsError(f"{where} must be a JSON object")
    return value


def _option_value(name: str, value: Any) -> int:
    if name not in OPTION_DEFAULTS:
        raise SettingsError(f"unknown option {name!r} (known: {', '.join(sorted(OPTION_DEFAULTS))})")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(f"option {name!r} must be a non-negative integer, not {value!r}")
    return value


def _feature_scope(name: str, value: Any) -> frozenset[int | str]:
    """true = every organization, false = none, else a list of organization ids or slugs."""
    if value is True:
        return frozenset({ALL_ORGANIZATIONS})
    if value is False:
        return frozenset()
    if isinstance(value, list) and all(isinstance(v, int | str) and not isinstance(v, bool) for v in value):
        return frozenset(value)
    raise SettingsError(f"feature {name!r} must be true, false or a list of organization ids or slugs")
