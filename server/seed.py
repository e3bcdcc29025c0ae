"""Load a JSON fixture (format in docs/seed-format.md) in one transaction; a bad record loads nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peewee import DateTimeField, IntegrityError, Model, PeeweeException

from server import models as m
from server.core.releases import parse_semver
from server.db import is_postgres
from server.models import db, utcnow

RELATIVE = re.compile(r"^(?:now)?([+-]\d+)([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class SeedError(ValueError):
    """A fixture record is invalid; the message names it."""


def parse_time(value: Any, where: str) -> dt.datetime | None:
    """ISO 8601 (UTC when no zone) or relative to now: "-3d", "now-2h", "+10m"."""
    if value is None or isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    rel = RELATIVE.match(text)
    if rel:
        return utcnow() + dt.timedelta(**{UNITS[rel.group(2)]: int(rel.group(1))})
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SeedError(f"{where}: {text!r} is not an ISO 8601 time or a relative time like -3d") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def _row(model: type[Model], record: dict[str, Any], where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    fields = model._meta.fields
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in skip:
            continue
        name = key[:-3] if key.endswith("_id") and key[:-3] in fields else key
        if name not in fields:
            raise SeedError(f"{where}: unknown field {key!r}")
        if isinstance(fields[name], DateTimeField):
            value = parse_time(value, f"{where}.{key}")
        out[name] = value
    return out


def _insert(model: type[Model], row: dict[str, Any], where: str) -> Any:
    try:
        with db.atomic():  # a savepoint, so the error names this record
            return model.insert(**row).execute()
    except IntegrityError as exc:
        raise SeedError(f"{where}: {exc}") from exc
    except (PeeweeException, TypeError, ValueError) as exc:
        raise SeedError(f"{where}: {exc}") from exc


def _release(record: dict[str, Any], where: str) -> None:
    row = _row(m.Release, record, where, skip=("projects",))
    semver = parse_semver(str(row.get("version", "")))
    if semver and "package" not in row:
        row.update(semver)
    release_id = _insert(m.Release, row, where)
    for project in record.get("projects", []):
        _insert(m.ReleaseProject, {"release": release_id, "project": project}, f"{where}.projects")


def _member(record: dict[str, Any], where: str) -> None:
    member_id = _insert(m.OrganizationMember, _row(m.OrganizationMember, record, where, skip=("teams",)), where)
    for team in record.get("teams", []):
        _insert(m.OrganizationMemberTeam, {"member": member_id, "team": team}, f"{where}.teams")


def _commit(record: dict[str, Any], where: str) -> None:
    commit_id = _insert(m.Commit, _row(m.Commit, record, where, skip=("releases",)), where)
    for release in record.get("releases", []):
        _insert(m.ReleaseCommit, {"release": release, "commit": commit_id}, f"{where}.releases")


def _group(record: dict[str, Any], where: str) -> None:
    row = _row(m.Group, record, where, skip=("hashes", "releases", "environments"))
    row.setdefault("active_at", row.get("first_seen"))
    group_id = _insert(m.Group, row, where)
    project = row.get("project")
    for h in record.get("hashes", []):
        _insert(m.GroupHash, {"project": project, "hash": h, "group": group_id}, f"{where}.hashes")
    for i, link in enumerate(record.get("releases", [])):
        sub = f"{where}.releases[{i}]"
        _insert(m.GroupRelease, {**_row(m.GroupRelease, link, sub), "group": group_id, "project": project}, sub)
    for env_id in record.get("environments", []):
        _insert(m.GroupEnvironment, {"group": group_id, "environment": env_id}, f"{where}.environments")


def _plain(model: type[Model]) -> Callable[[dict[str, Any], str], None]:
    def load(record: dict[str, Any], where: str) -> None:
        _insert(model, _row(model, record, where), where)

    return load


def _inbox(record: dict[str, Any], where: str) -> None:
    row = _row(m.GroupInbox, record, where)
    if "project" not in row or "organization" not in row:
        group = m.Group.get_or_none(m.Group.id == row.get("group"))
        if group is None:
            raise SeedError(f"{where}: unknown group {row.get('group')!r}")
        row.setdefault("project", group.project_id)
        row.setdefault("organization", m.Project.get_by_id(group.project_id).organization_id)
    _insert(m.GroupInbox, row, where)


def _with_project(model: type[Model]) -> Callable[[dict[str, Any], str], None]:
    """Rows that repeat the group's project: filled in when the fixture leaves it out."""

    def load(record: dict[str, Any], where: str) -> None:
        row = _row(model, record, where)
        if "project" not in row and "group" in row:
            group = m.Group.get_or_none(m.Group.id == row["group"])
            if group is None:
                raise SeedError(f"{where}: unknown group {row['group']!r}")
            row["project"] = group.project_id
        _insert(model, row, where)

    return load


SECTIONS: list[tuple[str, Callable[[dict[str, Any], str], None]]] = [
    ("organizations", _plain(m.Organization)),
    ("users", _plain(m.User)),
    ("teams", _plain(m.Team)),
    ("projects", _plain(m.Project)),
    ("project_teams", _plain(m.ProjectTeam)),
    ("members", _member),
    ("user_options", _plain(m.UserOption)),
    ("environments", _plain(m.Environment)),
    ("releases", _release),
    ("repositories", _plain(m.Repository)),
    ("commits", _commit),
    ("groups", _group),
    ("assignees", _with_project(m.GroupAssignee)),
    ("snoozes", _plain(m.GroupSnooze)),
    ("resolutions", _plain(m.GroupResolution)),
    ("bookmarks", _with_project(m.GroupBookmark)),
    ("subscriptions", _with_project(m.GroupSubscription)),
    ("inbox", _inbox),
    ("activities", _with_project(m.Activity)),
]


def load(data: dict[str, Any]) -> dict[str, int]:
    """Insert every section in dependency order, inside the caller's transaction."""
    unknown = set(data) - {name for name, _ in SECTIONS}
    if unknown:
        raise SeedError(f"unknown section(s): {', '.join(sorted(unknown))}")
    counts = {}
    for name, loader in SECTIONS:
        records = data.get(name, [])
        if not isinstance(records, list):
            raise SeedError(f"{name}: expected a list")
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise SeedError(f"{name}[{i}]: expected an object")
            label = f"{name}[{i}]" + (f" (id {record['id']})" if "id" in record else "")
            loader(record, label)
        counts[name] = len(records)
    return counts


def clear() -> None:
    for model in reversed(m.ALL_MODELS):
        if model is not m.SchemaVersion:
            model.delete().execute()


def _reset_sequences() -> None:
    """Explicit ids do not advance PostgreSQL sequences; move them past the loaded rows."""
    if not is_postgres():
        return
    for model in m.ALL_MODELS:
        table = model._meta.table_name
        db.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
            f'COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'
        )


def seed_file(path: str | Path, *, replace: bool = False) -> dict[str, int]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SeedError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SeedError(f"{path}: expected a JSON object of sections")
    with db.connection_context(), db.atomic():
        if replace:
            clear()
        counts = load(data)
        _reset_sequences()
    return counts
